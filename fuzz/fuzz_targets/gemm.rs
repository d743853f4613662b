//! GEMM on small arbitrary shapes, leading dimensions, transposes, alpha and
//! beta, f32/f16/bf16, on every path, against an f64 oracle with the bound of
//! docs/numerics.md (`|C − C*| ≤ 2k·u·|α|·Σ|a·b| + 2u·|β·c|`); non-finite
//! inputs must give the oracle's NaN / ±Inf exactly. C outside the m×n
//! window (the `ldc` gaps and guards past the end) is never written, and with
//! `beta == 0` a NaN in C never survives.
#![no_main]

use arbitrary::Arbitrary;
use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;
use mixprec_fuzz::paths;
use mixprec_kernels::gemm::{self, Element, Epilogue, Output, Path, Transpose};

#[derive(Arbitrary, Debug)]
struct Case {
    dtype: u8,
    ta: bool,
    tb: bool,
    m: u8,
    n: u8,
    k: u8,
    pads: [u8; 3],
    alpha: u8,
    beta: u8,
    specials: bool,
    values: Vec<u8>,
}

/// A value from one byte: ±0, small multiples of powers of two across the
/// f16 normal and subnormal ranges, and (with `specials`) ±Inf, NaN and a
/// subnormal of the element type. Every value is exact in f16 and bf16, and
/// no product or sum of `k ≤ 80` of them overflows f32.
fn value(b: u8, specials: bool, sub: f32) -> f32 {
    let mant = f32::from((b >> 2) as i8 - 32) / 8.0;
    let v = match b & 3 {
        0 => mant,
        1 => mant * 2f32.powi(-20),
        2 => mant * 64.0,
        _ => mant * 2f32.powi(-8),
    };
    if !specials {
        return v;
    }
    match b {
        0x03 => f32::INFINITY,
        0x07 => f32::NEG_INFINITY,
        0x0B => f32::NAN,
        0x0F => sub,
        0x13 => -0.0,
        _ => v,
    }
}

fn alpha_of(b: u8) -> f32 {
    [1.0, -0.75, 0.0, 2.0, 0.5, -1.0, 3.0e-5, 1024.0][usize::from(b % 8)]
}

fn beta_of(b: u8) -> f32 {
    [0.0, 1.0, 1.5, -1.0, 0.0, 0.25, -2.0, 0.0][usize::from(b % 8)]
}

struct Problem {
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    alpha: f32,
    beta: f32,
    a: Vec<f32>,
    b: Vec<f32>,
    c0: Vec<f32>,
}

/// The expected C (f64) and its error bound at (i, j); `flush` treats
/// subnormal inputs as zero (bgemm's `vdpbf16ps` paths document this).
fn oracle(p: &Problem, i: usize, j: usize, flush: bool) -> (f64, f64) {
    let u = 2f64.powi(-24);
    let fl = |x: f32| if flush && x.is_subnormal() { 0.0 } else { f64::from(x) };
    let c = if p.beta == 0.0 { 0.0 } else { f64::from(p.c0[i * p.ldc + j]) };
    let bc = f64::from(p.beta) * c;
    // Underflow is absolute, not relative: each of the k products, the sums
    // and beta·c may lose up to half an f32 subnormal step (2^-150), or
    // everything below 2^-126 where vdpbf16ps flushes, and alpha scales the
    // losses of the products.
    let step = if flush { 2f64.powi(-126) } else { 2f64.powi(-149) };
    if p.alpha == 0.0 || p.k == 0 {
        return (bc, 2.0 * u * bc.abs() + step);
    }
    let (mut dot, mut abs) = (0.0f64, 0.0f64);
    for q in 0..p.k {
        let a = fl(if p.ta == Transpose::No { p.a[i * p.lda + q] } else { p.a[q * p.lda + i] });
        let b = fl(if p.tb == Transpose::No { p.b[q * p.ldb + j] } else { p.b[j * p.ldb + q] });
        dot += a * b;
        abs += (a * b).abs();
    }
    let alpha = f64::from(p.alpha);
    let tiny = step * (p.k as f64 + 2.0) * f64::from(p.alpha).abs().max(1.0);
    (alpha * dot + bc, 2.0 * p.k as f64 * u * alpha.abs() * abs + 2.0 * u * bc.abs() + tiny)
}

const GUARD: usize = 8;

fn run<T: Element>(label: &str, path: &Path<T>, p: &Problem, conv: impl Fn(f32) -> T) {
    let a: Vec<T> = p.a.iter().map(|&x| conv(x)).collect();
    let b: Vec<T> = p.b.iter().map(|&x| conv(x)).collect();
    let sentinel = f32::from_bits(0x7FA5_A5A5);
    let mut c = vec![sentinel; p.c0.len() + GUARD];
    for (i, row) in c.chunks_mut(p.ldc).enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            if i < p.m && j < p.n {
                *x = if p.beta == 0.0 { f32::NAN } else { p.c0[i * p.ldc + j] };
            }
        }
    }
    let len = p.c0.len();
    gemm::gemm_on(
        path,
        p.ta,
        p.tb,
        p.m,
        p.n,
        p.k,
        p.alpha,
        &a,
        p.lda,
        &b,
        p.ldb,
        p.beta,
        Output::F32(&mut c[..len]),
        p.ldc,
        Epilogue::default(),
    );
    let flush = matches!(path, Path::Pairs(_));
    for (idx, &got) in c.iter().enumerate() {
        let (i, j) = (idx / p.ldc, idx % p.ldc);
        if i >= p.m || j >= p.n {
            assert_eq!(
                got.to_bits(),
                sentinel.to_bits(),
                "{label}: C[{idx}] outside the {}x{} window written",
                p.m,
                p.n
            );
            continue;
        }
        let (want, bound) = oracle(p, i, j, flush);
        let g = f64::from(got);
        let ok = if want.is_nan() {
            got.is_nan()
        } else if want.is_infinite() {
            g == want
        } else {
            (g - want).abs() <= bound
        };
        assert!(
            ok,
            "{label} {:?}{:?} {}x{}x{} lda {} ldb {} ldc {} alpha {} beta {}: C[{i},{j}] = {got:e}, want {want:e} ± {bound:e}",
            p.ta, p.tb, p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.alpha, p.beta
        );
    }
}

fuzz_target!(|case: Case| {
    let (m, n, k) = (usize::from(case.m % 40), usize::from(case.n % 40), usize::from(case.k % 80));
    let ta = if case.ta { Transpose::Yes } else { Transpose::No };
    let tb = if case.tb { Transpose::Yes } else { Transpose::No };
    let (ar, ac) = if case.ta { (k, m) } else { (m, k) };
    let (br, bc) = if case.tb { (n, k) } else { (k, n) };
    let pad = |i: usize| usize::from(case.pads[i] % 5);
    let (lda, ldb, ldc) = (ac.max(1) + pad(0), bc.max(1) + pad(1), n.max(1) + pad(2));
    let dtype = case.dtype % 3;
    let sub = [1.0e-40f32, 2f32.powi(-24), 1.0e-39][usize::from(dtype)];
    let mut bytes = case.values.iter().copied().cycle();
    let mut take = |len: usize| -> Vec<f32> {
        if case.values.is_empty() {
            return vec![1.0; len];
        }
        (0..len).map(|_| value(bytes.next().unwrap_or(0), case.specials, sub)).collect()
    };
    // A and B as the kernels will see them (exact for every generated value
    // but the bf16 subnormal special, which rounds).
    let exact = |v: Vec<f32>| -> Vec<f32> {
        match dtype {
            0 => v,
            1 => v.into_iter().map(|x| f16::from_f32(x).to_f32()).collect(),
            _ => v.into_iter().map(|x| bf16::from_f32(x).to_f32()).collect(),
        }
    };
    let a = exact(take(gemm::required_len(ar, ac, lda)));
    let b = exact(take(gemm::required_len(br, bc, ldb)));
    let c0 = take(gemm::required_len(m, n, ldc));
    let p = Problem { ta, tb, m, n, k, lda, ldb, ldc, alpha: alpha_of(case.alpha), beta: beta_of(case.beta), a, b, c0 };
    for kt in paths() {
        let label = kt.label();
        match dtype {
            0 => run(&format!("{label} sgemm"), &kt.gemm.sgemm, &p, |x| x),
            1 => run(&format!("{label} hgemm"), &kt.gemm.hgemm, &p, f16::from_f32),
            _ => run(&format!("{label} bgemm"), &kt.gemm.bgemm, &p, bf16::from_f32),
        }
    }
});
