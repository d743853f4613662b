//! The batch-norm kernels (`norm::affine_rows`, `grad_sums_rows`,
//! `grad_rows`) on every path the host can run, for f32, f16, bf16 and f64
//! rows of every length across the vector tails, at unaligned starts, with
//! values mixing ±0, subnormals, ±Inf, NaN and near-overflow magnitudes:
//! the elementwise passes bit-identical to the scalar reference, the sums
//! within `(2n + 2)·u·Σ|term|` of the exact sums (u = 2^-24 for FP32
//! accumulation, 2^-53 for f64; docs/numerics.md).

mod common;

use common::{Buf, ELEMS, SplitMix, mixed_values, paths};
use mixprec_kernels::scalar::norm::{affine_rows_scalar, grad_rows_scalar, grad_sums_rows_scalar};
use mixprec_kernels::slice::{Elem, Src};
use proptest::prelude::*;

/// `len` values starting at `off` of a buffer of `off + len` (an unaligned start).
fn buffer(elem: Elem, rng: &mut SplitMix, off: usize, len: usize) -> Buf {
    Buf::from_f64(elem, &mixed_values(rng, off + len))
}

fn tail(b: &Buf, off: usize) -> Src<'_> {
    let s = b.src();
    s.slice(off, s.len())
}

/// Row constants: ordinary values, with ±0, ±Inf and NaN now and then.
fn constants(rng: &mut SplitMix, rows: usize) -> Vec<[f64; 4]> {
    let special = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-40];
    (0..rows)
        .map(|_| {
            let mut k = [0.0; 4];
            for (i, v) in k.iter_mut().enumerate() {
                let r = rng.next_u64();
                *v = if r.is_multiple_of(11) {
                    special[(r >> 8) as usize % special.len()]
                } else {
                    rng.next_f32() as f64 * [2.0, 4.0, 2.0, 1.0][i]
                };
            }
            k
        })
        .collect()
}

fn check_elementwise(rows: usize, n: usize, off: usize, relu: bool, with_mask: bool, seed: u64) {
    let mut rng = SplitMix(seed);
    let k = constants(&mut rng, rows);
    for elem in ELEMS {
        let (x, g, y) = (
            buffer(elem, &mut rng, off, rows * n),
            buffer(elem, &mut rng, off, rows * n),
            buffer(elem, &mut rng, off, rows * n),
        );
        let mask = with_mask.then(|| tail(&y, off));
        let mut want_y = Buf::zeros(elem, off + rows * n);
        affine_rows_scalar(tail(&x, off), rows, n, &k, relu, want_y.dst().slice(off, off + rows * n));
        let mut want_d = Buf::zeros(elem, off + rows * n);
        grad_rows_scalar(tail(&g, off), mask, tail(&x, off), rows, n, &k, want_d.dst().slice(off, off + rows * n));
        for p in paths() {
            let mut got = Buf::zeros(elem, off + rows * n);
            (p.norm.affine_rows.f)(tail(&x, off), rows, n, &k, relu, got.dst().slice(off, off + rows * n));
            assert!(got.same(&want_y), "{} affine_rows {elem:?} rows {rows} n {n} off {off} relu {relu}", p.label());
            let mut got = Buf::zeros(elem, off + rows * n);
            (p.norm.grad_rows.f)(tail(&g, off), mask, tail(&x, off), rows, n, &k, got.dst().slice(off, off + rows * n));
            assert!(got.same(&want_d), "{} grad_rows {elem:?} rows {rows} n {n} off {off} mask {with_mask}", p.label());
        }
        if relu {
            // The ReLU leaves no −0 and no negative value behind; NaN stays.
            for i in off..off + rows * n {
                let v = want_y.get(i);
                assert!(v.is_nan() || (v >= 0.0 && v.to_bits() != (-0.0f64).to_bits()), "relu output {v}");
            }
        }
    }
}

/// The exact sums `[Σ m, Σ m·(x − μ)]` with `μ` rounded as the kernel
/// rounds it, and `Σ|term|` of each over its finite terms.
#[allow(clippy::too_many_arguments)]
fn oracle(elem: Elem, g: &Buf, y: Option<&Buf>, x: &Buf, off: usize, n: usize, r: usize, mu: f64) -> [(f64, f64); 2] {
    let mu = if elem == Elem::F64 { mu } else { mu as f32 as f64 };
    let wide = elem == Elem::F64;
    let (mut s, mut a) = ([0.0f64; 2], [0.0f64; 2]);
    for p in off + r * n..off + (r + 1) * n {
        let m = if y.is_some_and(|y| y.get(p) <= 0.0 || y.get(p).is_nan()) { 0.0 } else { g.get(p) };
        // x − μ is rounded once to the compute type.
        let d = if wide { x.get(p) - mu } else { (x.get(p) - mu) as f32 as f64 };
        for (q, t) in [m, m * d].into_iter().enumerate() {
            s[q] += t;
            if t.is_finite() {
                a[q] += t.abs();
            }
        }
    }
    [(s[0], a[0]), (s[1], a[1])]
}

fn within(got: f64, want: f64, abs: f64, n: usize, wide: bool) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    // Partial sums of finite terms may overflow FP32 where the exact sums do
    // not (and meet an infinite term of the other sign: NaN).
    let overflows = !wide && abs >= 1e38;
    if want.is_infinite() {
        return got == want || overflows && got.is_nan();
    }
    if overflows {
        return true;
    }
    let u = if wide { 2f64.powi(-53) } else { 2f64.powi(-24) };
    let tiny = if wide { 2f64.powi(-1074) } else { 2f64.powi(-149) };
    (got - want).abs() <= (2 * n + 2) as f64 * u * abs + n as f64 * tiny
}

fn check_sums(rows: usize, n: usize, off: usize, with_mask: bool, seed: u64) {
    let mut rng = SplitMix(seed);
    let mu: Vec<f64> = constants(&mut rng, rows).iter().map(|k| k[0]).collect();
    for elem in ELEMS {
        let (x, g, y) = (
            buffer(elem, &mut rng, off, rows * n),
            buffer(elem, &mut rng, off, rows * n),
            buffer(elem, &mut rng, off, rows * n),
        );
        let mask = with_mask.then(|| tail(&y, off));
        let mut want = vec![[0.0; 2]; rows];
        grad_sums_rows_scalar(tail(&g, off), mask, tail(&x, off), rows, n, &mu, &mut want);
        let mut runs = vec![("scalar reference".to_string(), want)];
        for p in paths() {
            let mut got = vec![[f64::NAN; 2]; rows];
            (p.norm.grad_sums_rows.f)(tail(&g, off), mask, tail(&x, off), rows, n, &mu, &mut got);
            runs.push((p.label(), got));
        }
        for (who, got) in runs {
            for r in 0..rows {
                let exact = oracle(elem, &g, with_mask.then_some(&y), &x, off, n, r, mu[r]);
                for (q, (want, abs)) in exact.into_iter().enumerate() {
                    assert!(
                        within(got[r][q], want, abs, n, elem == Elem::F64),
                        "{who} {elem:?} row {r} sum {q}: {} vs exact {want} (Σ|term| {abs}, n {n}, μ {})",
                        got[r][q],
                        mu[r]
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn elementwise_passes_are_bit_identical_to_the_reference(
        rows in 0usize..4, n in 0usize..70, off in 0usize..3, relu in any::<bool>(), mask in any::<bool>(), seed in any::<u64>()
    ) {
        check_elementwise(rows, n, off, relu, mask, seed);
    }

    #[test]
    fn grad_sums_are_within_the_bound(
        rows in 0usize..4, n in 0usize..70, off in 0usize..3, mask in any::<bool>(), seed in any::<u64>()
    ) {
        check_sums(rows, n, off, mask, seed);
    }
}

#[test]
fn batch_norm_shapes() {
    // The CNN's rows (28·28 and 14·14) and a long row through every block.
    for (n, seed) in [(784, 1), (196, 2), (4099, 3)] {
        check_elementwise(2, n, 1, true, true, seed);
        check_sums(2, n, 1, true, seed);
    }
}

#[test]
fn special_values() {
    use half::f16;
    let h = |v: &[f32]| v.iter().map(|&x| f16::from_f32(x)).collect::<Vec<_>>();
    let x = h(&[-1.0, 0.0, 1.0, f32::INFINITY, f32::NAN, 2.0, -3.0e-7, 5.0, 6.0]);
    let y = h(&[1.0, f32::NAN, -0.0, 0.0, 2.0, 6.0e-8, 1.0, -1.0, 3.0]);
    let g = h(&[2.0, f32::INFINITY, f32::NAN, 4.0, 5.0, -0.0, 7.0, f32::NAN, 9.0]);
    for p in paths() {
        // μ = 0, σ⁻¹ = 1, γ = 1, β = 0: the ReLU of x; −0 never comes out, NaN does.
        let mut out = vec![f16::ONE; 9];
        (p.norm.affine_rows.f)(
            Src::F16(&x),
            1,
            9,
            &[[0.0, 1.0, 1.0, -0.0]],
            true,
            mixprec_kernels::slice::Dst::F16(&mut out),
        );
        let want = [0.0, 0.0, 1.0, f32::INFINITY, f32::NAN, 2.0, 0.0, 5.0, 6.0];
        for (i, (&o, &w)) in out.iter().zip(&want).enumerate() {
            let o = o.to_f32();
            assert!(o.to_bits() == w.to_bits() || (o.is_nan() && w.is_nan()), "{} relu[{i}] = {o}", p.label());
        }
        // The mask y > 0 keeps g at 0, 4, 5, 6, 8 (NaN, ±0 and negative y mask, and so the
        // masked Inf and NaN of g add nothing); μ = +Inf in the tail lanes adds nothing either.
        let mut sums = [[0.0; 2]];
        (p.norm.grad_sums_rows.f)(Src::F16(&g), Some(Src::F16(&y)), Src::F16(&x), 1, 9, &[0.0], &mut sums);
        assert_eq!(sums[0][0], 2.0 + 5.0 - 0.0 + 7.0 + 9.0, "{}", p.label());
        assert!(sums[0][1].is_nan(), "{}: 5·NaN is NaN", p.label());
        let mut sums = [[0.0; 2]];
        (p.norm.grad_sums_rows.f)(Src::F16(&g[..1]), None, Src::F16(&x[..1]), 1, 1, &[f64::INFINITY], &mut sums);
        assert_eq!(sums[0], [2.0, f64::NEG_INFINITY], "{}", p.label());
    }
}
