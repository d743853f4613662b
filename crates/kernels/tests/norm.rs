//! The batch-norm kernels (`norm::affine_rows`, `grad_sums_rows`,
//! `grad_rows`) on every path the host can run, for f32, f16, bf16 and f64
//! rows of every length across the vector tails, at unaligned starts, with
//! values mixing ±0, subnormals, ±Inf, NaN and near-overflow magnitudes:
//! the elementwise passes bit-identical to the scalar reference, the sums
//! within `(2n + 2)·u·Σ|term|` of the exact sums (u = 2^-24 for FP32
//! accumulation, 2^-53 for f64; docs/numerics.md), and the ReLU mask
//! recomputed from `x` equal to `1[y > 0]` of the forward's rounded output.

mod common;

use common::{Buf, ELEMS, SplitMix, mixed_values, paths};
use mixprec_kernels::scalar::norm::{BF16_ROUNDS_TO_ZERO, F16_ROUNDS_TO_ZERO};
use mixprec_kernels::scalar::norm::{affine_rows_scalar, grad_rows_scalar, grad_sums_rows_scalar};
use mixprec_kernels::slice::{Dst, Elem, Src};
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
    let (k, fk) = (constants(&mut rng, rows), constants(&mut rng, rows));
    let mask = with_mask.then_some(&fk[..]);
    for elem in ELEMS {
        let (x, g) = (buffer(elem, &mut rng, off, rows * n), buffer(elem, &mut rng, off, rows * n));
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

/// Whether the forward's output at `x` (`affine_rows` with `k`, ReLU,
/// rounded to `elem`) is positive: computed here the long way, by rounding.
fn forward_positive(elem: Elem, x: f64, k: &[f64; 4]) -> bool {
    let t = if elem == Elem::F64 {
        (x - k[0]) * k[1] * k[2] + k[3]
    } else {
        let [mu, is, ga, be] = k.map(|v| v as f32);
        ((x as f32 - mu) * is * ga + be) as f64
    };
    common::round_to(elem, t) > 0.0
}

/// The exact sums `[Σ m, Σ m·(x − μ)]` with `μ` rounded as the kernel
/// rounds it, and `Σ|term|` of each over its finite terms.
#[allow(clippy::too_many_arguments)]
fn oracle(
    elem: Elem,
    g: &Buf,
    fk: Option<&[f64; 4]>,
    x: &Buf,
    off: usize,
    n: usize,
    r: usize,
    mu: f64,
) -> [(f64, f64); 2] {
    let mu = if elem == Elem::F64 { mu } else { mu as f32 as f64 };
    let wide = elem == Elem::F64;
    let (mut s, mut a) = ([0.0f64; 2], [0.0f64; 2]);
    for p in off + r * n..off + (r + 1) * n {
        let m = if fk.is_some_and(|k| !forward_positive(elem, x.get(p), k)) { 0.0 } else { g.get(p) };
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
    let fk = constants(&mut rng, rows);
    let mask = with_mask.then_some(&fk[..]);
    for elem in ELEMS {
        let (x, g) = (buffer(elem, &mut rng, off, rows * n), buffer(elem, &mut rng, off, rows * n));
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
                let exact = oracle(elem, &g, mask.map(|f| &f[r]), &x, off, n, r, mu[r]);
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
    let g = h(&[f32::INFINITY, f32::NAN, 2.0, 4.0, f32::NAN, -0.0, 7.0, 3.0, 9.0]);
    let id = [[0.0, 1.0, 1.0, -0.0]];
    for p in paths() {
        // μ = 0, σ⁻¹ = 1, γ = 1, β = −0: the ReLU of x; −0 never comes out, NaN does.
        let mut out = vec![f16::ONE; 9];
        (p.norm.affine_rows.f)(Src::F16(&x), 1, 9, &id, true, Dst::F16(&mut out));
        let want = [0.0, 0.0, 1.0, f32::INFINITY, f32::NAN, 2.0, 0.0, 5.0, 6.0];
        for (i, (&o, &w)) in out.iter().zip(&want).enumerate() {
            let o = o.to_f32();
            assert!(o.to_bits() == w.to_bits() || (o.is_nan() && w.is_nan()), "{} relu[{i}] = {o}", p.label());
        }
        // The mask y > 0 keeps g at 2, 3, 5, 7, 8 (±0, negative and NaN outputs mask, so
        // the masked Inf and NaN of g add nothing to Σ m); a masked lane still adds
        // +0·(x − μ), NaN at the NaN x, and without it 4·(Inf − 0) makes the sum +Inf.
        let mut sums = [[0.0; 2]];
        (p.norm.grad_sums_rows.f)(Src::F16(&g), Some(&id), Src::F16(&x), 1, 9, &[0.0], &mut sums);
        assert_eq!(sums[0][0], 2.0 + 4.0 - 0.0 + 3.0 + 9.0, "{}", p.label());
        assert!(sums[0][1].is_nan(), "{}", p.label());
        (p.norm.grad_sums_rows.f)(Src::F16(&g[..4]), Some(&id), Src::F16(&x[..4]), 1, 4, &[0.0], &mut sums);
        assert_eq!(sums[0], [2.0 + 4.0, f64::INFINITY], "{}", p.label());
        // μ = +Inf in the tail lanes adds nothing.
        let mut sums = [[0.0; 2]];
        (p.norm.grad_sums_rows.f)(Src::F16(&g[2..3]), None, Src::F16(&x[..1]), 1, 1, &[f64::INFINITY], &mut sums);
        assert_eq!(sums[0], [2.0, f64::NEG_INFINITY], "{}", p.label());
    }
}

/// The recomputed mask at the rounding threshold: outputs that round to +0
/// (the f16 tie 2^-25, the bf16 tie 2^-134) mask, the next values up do
/// not; `grad_rows` with the forward constants equals `grad_rows` of the
/// gradient masked by the stored output, bit for bit.
#[test]
fn relu_mask_is_the_rounded_output() {
    assert_eq!(F16_ROUNDS_TO_ZERO, 2f32.powi(-25));
    assert_eq!(BF16_ROUNDS_TO_ZERO, 2f32.powi(-134));
    let mut rng = SplitMix(7);
    for elem in [Elem::F32, Elem::F16, Elem::Bf16, Elem::F64] {
        let tiny = match elem {
            Elem::F16 => 2f64.powi(-24),
            Elem::Bf16 => 2f64.powi(-133),
            Elem::F32 => 2f64.powi(-149),
            Elem::F64 => 2f64.powi(-1074),
        };
        // x = j·tiny for j in −3..=5 and random values; γ scales them across the ties.
        let n = 40;
        let xs: Vec<f64> =
            (0..n).map(|i| if i < 9 { (i as f64 - 3.0) * tiny } else { mixed_values(&mut rng, 1)[0] }).collect();
        let fk: Vec<[f64; 4]> = [0.5, 0.75, 0.25, 1.5, 1.0]
            .iter()
            .flat_map(|&ga| [[0.0, 1.0, ga, 0.0], [0.0, 2.0, ga, -tiny / 2.0]])
            .collect();
        let rows = fk.len();
        let x = Buf::from_f64(elem, &xs.iter().cycle().take(rows * n).copied().collect::<Vec<_>>());
        let g = Buf::from_f64(elem, &mixed_values(&mut rng, rows * n));
        let k = vec![[1.25, -0.5, 0.125, 0.25]; rows];
        for p in paths() {
            let mut y = Buf::zeros(elem, rows * n);
            (p.norm.affine_rows.f)(x.src(), rows, n, &fk, true, y.dst());
            let gm: Vec<f64> = (0..rows * n).map(|i| if y.get(i) > 0.0 { g.get(i) } else { 0.0 }).collect();
            let gm = Buf::from_f64(elem, &gm);
            let (mut a, mut b) = (Buf::zeros(elem, rows * n), Buf::zeros(elem, rows * n));
            (p.norm.grad_rows.f)(g.src(), Some(&fk), x.src(), rows, n, &k, a.dst());
            (p.norm.grad_rows.f)(gm.src(), None, x.src(), rows, n, &k, b.dst());
            assert!(a.same(&b), "{} {elem:?}: grad_rows with the recomputed mask", p.label());
            let (mut sa, mut sb) = (vec![[0.0; 2]; rows], vec![[0.0; 2]; rows]);
            let mu = vec![0.25; rows];
            (p.norm.grad_sums_rows.f)(g.src(), Some(&fk), x.src(), rows, n, &mu, &mut sa);
            (p.norm.grad_sums_rows.f)(gm.src(), None, x.src(), rows, n, &mu, &mut sb);
            let bits = |v: &[[f64; 2]]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&sa), bits(&sb), "{} {elem:?}: grad_sums_rows with the recomputed mask", p.label());
            // The ties themselves: γ = 0.5 takes x = tiny to the tie (masked), γ = 0.75 above it.
            if elem != Elem::F64 {
                assert_eq!(y.get(4), 0.0, "{} {elem:?}: the tie rounds to +0", p.label());
                assert_eq!(y.get(2 * n + 4), tiny, "{} {elem:?}: above the tie", p.label());
            }
        }
    }
}
