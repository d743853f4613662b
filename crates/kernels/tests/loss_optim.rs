//! Cross-entropy and the optimizer updates on every path the host can run:
//! cross-entropy against an f64 oracle with the bounds of docs/numerics.md
//! (every input type, short and long rows, tails, specials); SGD and
//! Adam/AdamW bit-identical to the scalar reference on every path (every
//! option, every working-copy type, tails and unaligned starts) and within
//! a few FP32 roundings of the f64 formula.

mod common;

use common::{Buf, SplitMix, paths, round_to, ulp_at};
use half::{bf16, f16};
use mixprec_kernels::optim::{Adam, Sgd};
use mixprec_kernels::slice::{Dst, Elem, Src};
use proptest::prelude::*;

const U: f64 = 1.0 / (1u64 << 24) as f64;

fn logits(rng: &mut SplitMix, len: usize, scale: f64) -> Vec<f64> {
    (0..len).map(|_| rng.next_f32() as f64 * scale).collect()
}

/// The f64 oracle: `(loss, lse, p)` of one row.
fn ce_oracle(x: &[f64], t: usize) -> (f64, f64, Vec<f64>) {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = x.iter().map(|v| (v - m).exp()).sum();
    let lse = m + s.ln();
    (lse - x[t], lse, x.iter().map(|v| (v - lse).exp()).collect())
}

fn check_ce(label: &str, ei: Elem, rows: usize, n: usize, seed: u64) {
    let mut rng = SplitMix(seed);
    let x = Buf::from_f64(ei, &logits(&mut rng, rows * n, 20.0));
    let xs = x.to_f64();
    let targets: Vec<usize> = (0..rows).map(|_| rng.next_u32() as usize % n.max(1)).collect();
    let gs: Vec<f64> = (0..rows).map(|_| rng.next_f32() as f64).collect();
    for k in paths().into_iter().filter(|k| k.label() == label) {
        for eo in [Elem::F32, ei] {
            let (mut loss, mut lse) = (Buf::zeros(eo, rows), Buf::zeros(eo, rows));
            (k.loss.cross_entropy.f)(x.src(), rows, n, &targets, loss.dst(), lse.dst());
            let wide = ei == Elem::F64 || eo == Elem::F64;
            let u = if wide { 2f64.powi(-53) } else { U };
            let g = Buf::from_f64(eo, &gs);
            let mut grad = Buf::zeros(eo, rows * n);
            (k.loss.cross_entropy_grad.f)(x.src(), rows, n, &targets, lse.src(), g.src(), grad.dst());
            for i in 0..rows {
                let row = &xs[i * n..(i + 1) * n];
                let (want, want_lse, _) = ce_oracle(row, targets[i]);
                let spread = row.iter().map(|v| (v - want_lse).abs()).fold(0.0, f64::max);
                // lse: n·u from the sum, the logarithm, |lse|·u from the add.
                let bound = (2.0 * n as f64 + 4.0 + 2.0 * want_lse.abs()) * u;
                let got = lse.get(i);
                assert!((got - want_lse).abs() <= bound + ulp_at(eo, want_lse), "{label}: lse {ei:?}->{eo:?} row {i}");
                let got = loss.get(i);
                let bl = bound + 2.0 * u * row[targets[i]].abs() + ulp_at(eo, want);
                assert!((got - want).abs() <= bl, "{label}: loss {ei:?}->{eo:?} n {n}: {got:e} vs {want:e} ± {bl:e}");
                // The gradient, from the lse the kernel produced (as autograd would).
                let l = lse.get(i);
                let gi = g.get(i);
                let others: f64 = (0..n).filter(|&j| j != targets[i]).map(|j| (row[j] - l).exp()).sum();
                for (j, &xj) in row.iter().enumerate() {
                    let pj = (xj - l).exp();
                    let (want, scale) =
                        if j == targets[i] { (-gi * others, gi.abs() * others) } else { (gi * pj, gi.abs() * pj) };
                    let b = (2.0 * n as f64 + 8.0 + 2.0 * spread) * u * scale + ulp_at(eo, want);
                    let got = grad.get(i * n + j);
                    assert!(
                        (got - want).abs() <= b,
                        "{label}: grad {ei:?}->{eo:?} ({i},{j}) {got:e} vs {want:e} ± {b:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn cross_entropy_is_within_its_bound_on_every_path() {
    for k in paths() {
        let label = k.label();
        for ei in [Elem::F32, Elem::F16, Elem::Bf16, Elem::F64] {
            for (rows, n) in [(0, 10), (1, 1), (3, 10), (5, 17), (2, 1000), (1, 5003)] {
                check_ce(&label, ei, rows, n, (rows * 131 + n) as u64);
            }
        }
    }
}

#[test]
fn cross_entropy_target_gradient_keeps_its_accuracy_near_certainty() {
    // p_t = 1 − 1e-6: p_t − 1 computed directly would keep ~2 digits.
    let x: Vec<f32> = vec![0.0, -15.0, -16.0, -14.5];
    for k in paths() {
        let (mut loss, mut lse) = ([0.0f32; 1], [0.0f32; 1]);
        (k.loss.cross_entropy.f)(Src::F32(&x), 1, 4, &[0], Dst::F32(&mut loss), Dst::F32(&mut lse));
        let mut grad = [0.0f32; 4];
        (k.loss.cross_entropy_grad.f)(Src::F32(&x), 1, 4, &[0], Src::F32(&lse), Src::F32(&[1.0]), Dst::F32(&mut grad));
        let want: f64 = x[1..].iter().map(|&v| (v as f64).exp()).sum::<f64>()
            / (1.0 + x[1..].iter().map(|&v| (v as f64).exp()).sum::<f64>());
        assert!(((grad[0] as f64 + want) / want).abs() < 1e-5, "{}: {} vs {}", k.label(), grad[0], -want);
        // The loss, ln(1 + 1e-6), is bounded absolutely: (2n + 4)·u (docs/numerics.md).
        assert!((loss[0] as f64 - want).abs() <= 12.0 * U, "{}: loss {}", k.label(), loss[0]);
    }
}

#[test]
fn cross_entropy_special_values() {
    let x = [1.0f32, f32::NAN, 0.0, 0.0, f32::NEG_INFINITY, 2.0, 1.0, f32::INFINITY, 0.0];
    for k in paths() {
        let (mut loss, mut lse) = ([0.0f32; 3], [0.0f32; 3]);
        (k.loss.cross_entropy.f)(Src::F32(&x), 3, 3, &[0, 1, 0], Dst::F32(&mut loss), Dst::F32(&mut lse));
        assert!(loss[0].is_nan() && lse[0].is_nan(), "{}: NaN row", k.label());
        assert_eq!(loss[1], f32::INFINITY, "{}: −Inf target", k.label());
        assert!(loss[2].is_nan(), "{}: +Inf row", k.label());
    }
}

#[test]
#[should_panic(expected = "target 4 of row 1 is not a class index below 4")]
fn cross_entropy_rejects_bad_targets() {
    let x = [0.0f32; 8];
    let (mut l, mut e) = ([0.0f32; 2], [0.0f32; 2]);
    mixprec_kernels::loss::cross_entropy(Src::F32(&x), 2, 4, &[0, 4], Dst::F32(&mut l), Dst::F32(&mut e));
}

#[derive(Clone, Copy, Debug)]
enum CopyKind {
    None,
    F32,
    F16,
    Bf16,
}

/// The working copy a kernel wrote, as f64 (empty for none).
struct Copy {
    kind: CopyKind,
    f32: Vec<f32>,
    f16: Vec<f16>,
    bf16: Vec<bf16>,
}

impl Copy {
    fn new(kind: CopyKind, n: usize) -> Copy {
        Copy { kind, f32: vec![0.0; n], f16: vec![f16::ZERO; n], bf16: vec![bf16::ZERO; n] }
    }
    fn dst(&mut self, off: usize) -> Option<Dst<'_>> {
        match self.kind {
            CopyKind::None => None,
            CopyKind::F32 => Some(Dst::F32(&mut self.f32[off..])),
            CopyKind::F16 => Some(Dst::F16(&mut self.f16[off..])),
            CopyKind::Bf16 => Some(Dst::Bf16(&mut self.bf16[off..])),
        }
    }
    /// Whether the copy is the weights rounded once.
    fn matches(&self, w: &[f32], off: usize) -> bool {
        (0..w.len()).all(|i| {
            let want = w[i] as f64;
            let got = match self.kind {
                CopyKind::None => return true,
                CopyKind::F32 => self.f32[off + i] as f64,
                CopyKind::F16 => self.f16[off + i].to_f64(),
                CopyKind::Bf16 => self.bf16[off + i].to_f64(),
            };
            let e = match self.kind {
                CopyKind::F16 => Elem::F16,
                CopyKind::Bf16 => Elem::Bf16,
                _ => Elem::F32,
            };
            let r = round_to(e, want);
            got.to_bits() == r.to_bits() || (got.is_nan() && r.is_nan())
        })
    }
}

fn copy_kind() -> impl Strategy<Value = CopyKind> {
    prop_oneof![Just(CopyKind::None), Just(CopyKind::F32), Just(CopyKind::F16), Just(CopyKind::Bf16)]
}

/// Lengths that stress SIMD bodies and tails: primes, vector widths ±1, up to 5000.
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..70,
        prop::sample::select(vec![
            7usize, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 97, 255, 256, 257, 997, 4093, 4999
        ]),
        0usize..5000,
    ]
}

/// Special values put into weights and gradients: ±0, f32 and f16
/// subnormals, values near 65504 (the f16 copy's overflow), ±Inf, NaN.
const SPECIAL: [f32; 11] =
    [0.0, -0.0, 1e-40, -3e-42, 6.0e-8, 65504.0, 65519.0, -65520.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];

/// `v` with one element in `every` replaced by a special value (none for 0).
fn with_specials(rng: &mut SplitMix, mut v: Vec<f32>, every: u32) -> Vec<f32> {
    if every > 0 {
        for x in &mut v {
            let r = rng.next_u32();
            if r.is_multiple_of(every) {
                *x = SPECIAL[(r >> 8) as usize % SPECIAL.len()];
            }
        }
    }
    v
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every SGD variant: each path bit-identical to the reference, the
    /// copy the rounded weights, and the weights within a few roundings of
    /// PyTorch's formula in f64.
    #[test]
    fn sgd_is_bit_identical_on_every_path(len in length(), off in 0usize..17, seed: u64, momentum in prop_oneof![Just(0.0f32), Just(0.9)],
                                          dampening in prop_oneof![Just(0.0f32), Just(0.1)], wd in prop_oneof![Just(0.0f32), Just(1e-4)],
                                          nesterov: bool, first: bool, kind in copy_kind(), every in prop_oneof![Just(0u32), 2u32..50]) {
        let mut rng = SplitMix(seed);
        let p = Sgd { lr: 0.05, momentum, dampening, weight_decay: wd, nesterov: nesterov && momentum != 0.0 };
        let w0: Vec<f32> = (0..len + off).map(|_| rng.next_f32()).collect();
        let w0 = with_specials(&mut rng, w0, every);
        let g: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 0.1).collect();
        let g = with_specials(&mut rng, g, every);
        let b0: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 0.01).collect();
        let b0 = with_specials(&mut rng, b0, every);
        let mut reference: Option<(Vec<f32>, Vec<f32>)> = None;
        for k in paths() {
            let (mut w, mut b) = (w0.clone(), b0.clone());
            let mut c = Copy::new(kind, len + off);
            let buf = if momentum != 0.0 { Some(&mut b[off..]) } else { None };
            (k.optim.sgd.f)(&p, &mut w[off..], &g[off..], buf, first, c.dst(off));
            prop_assert!(c.matches(&w[off..], off), "{}: copy", k.label());
            prop_assert!(same_bits(&w[..off], &w0[..off]), "{}: wrote before the start", k.label());
            match &reference {
                None => reference = Some((w, b)),
                Some((rw, rb)) => {
                    prop_assert!(same_bits(&w, rw) && same_bits(&b, rb), "{}: differs from {}", k.label(), paths()[0].label());
                }
            }
        }
        let (w, _) = reference.unwrap();
        for i in off..len + off {
            let (wi, gi, bi) = (w0[i] as f64, g[i] as f64, b0[i] as f64);
            if !(wi.abs() + gi.abs() + bi.abs()).is_finite() {
                continue; // Specials: the paths agree bit for bit with the reference (above).
            }
            // `d` and, for the bound, the same formula on absolute values (cancellation).
            let (mut d, mut da) = (gi + wd as f64 * wi, gi.abs() + wd as f64 * wi.abs());
            if momentum != 0.0 {
                let (mo, keep) = (momentum as f64, 1.0 - dampening as f64);
                let (nb, nba) = if first { (d, da) } else { (mo * bi + keep * d, mo * bi.abs() + keep * da) };
                (d, da) = if p.nesterov { (d + mo * nb, da + mo * nba) } else { (nb, nba) };
            }
            let want = wi - 0.05 * d;
            prop_assert!((w[i] as f64 - want).abs() <= 8.0 * U * (wi.abs() + 0.05 * da + 1e-30), "w[{i}] = {:e}, want {want:e} (w {wi:e} g {gi:e} buf {bi:e})", w[i]);
        }
    }

    /// Adam and AdamW over several steps: bit-identical paths, the copy the
    /// rounded weights, and close to the f64 formula.
    #[test]
    fn adam_is_bit_identical_on_every_path(len in length(), off in 0usize..17, seed: u64, decoupled: bool,
                                           wd in prop_oneof![Just(0.0f32), Just(0.01)], kind in copy_kind(), every in prop_oneof![Just(0u32), 2u32..50]) {
        let mut rng = SplitMix(seed);
        let a = Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: wd, decoupled };
        let w0: Vec<f32> = (0..len + off).map(|_| rng.next_f32()).collect();
        let w0 = with_specials(&mut rng, w0, every);
        let mut grads = Vec::new();
        for _ in 0..3 {
            let g: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 0.1).collect();
            grads.push(with_specials(&mut rng, g, every));
        }
        let mut reference: Option<Vec<f32>> = None;
        for k in paths() {
            let (mut w, mut m, mut v) = (w0.clone(), vec![0.0f32; len + off], vec![0.0f32; len + off]);
            let mut c = Copy::new(kind, len + off);
            for (t, g) in grads.iter().enumerate() {
                let st = a.step(t as u64 + 1);
                (k.optim.adam.f)(&st, &mut w[off..], &g[off..], &mut m[off..], &mut v[off..], c.dst(off));
            }
            prop_assert!(c.matches(&w[off..], off), "{}: copy", k.label());
            let all: Vec<f32> = w.iter().chain(&m).chain(&v).copied().collect();
            match &reference {
                None => reference = Some(all),
                Some(r) => prop_assert!(same_bits(&all, r), "{}: differs from {}", k.label(), paths()[0].label()),
            }
        }
        let r = reference.unwrap();
        for i in off..len + off {
            if !grads.iter().map(|g| g[i]).chain([w0[i]]).all(|x| x.is_finite() && x.abs() < 1.0) {
                continue; // Specials: the paths agree bit for bit with the reference (above).
            }
            let (mut w, mut m, mut v) = (w0[i] as f64, 0.0f64, 0.0f64);
            for (t, g) in grads.iter().enumerate() {
                let t = t as i32 + 1;
                if decoupled { w *= 1.0 - 1e-3 * wd as f64; }
                let g = g[i] as f64 + if decoupled { 0.0 } else { wd as f64 * w };
                m = 0.9 * m + 0.1 * g;
                v = 0.999 * v + 0.001 * g * g;
                let den = (v / (1.0 - 0.999f64.powi(t))).sqrt() + 1e-8;
                w -= 1e-3 / (1.0 - 0.9f64.powi(t)) * m / den;
            }
            // Three steps of ~10 roundings each, relative to the step sizes (≤ lr·few).
            prop_assert!((r[i] as f64 - w).abs() <= 64.0 * U * (w.abs() + 1e-2), "w[{i}] {} vs {w}", r[i]);
        }
    }
}

/// A gradient of `elem` from `vals`, and the FP32 values unscaling it by
/// `inv` gives (`f32(g) · inv`, one rounding: `amp::unscale_and_check_f16`'s).
fn scaled_grad(elem: Elem, vals: &[f32], inv: f32) -> (Buf, Vec<f32>) {
    let g = Buf::from_f64(elem, &vals.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let unscaled = (0..g.len()).map(|i| g.get(i) as f32 * inv).collect();
    (g, unscaled)
}

fn grad_elem() -> impl Strategy<Value = Elem> {
    prop_oneof![Just(Elem::F32), Just(Elem::F16), Just(Elem::Bf16)]
}

fn inv_scale() -> impl Strategy<Value = f32> {
    prop_oneof![Just(1.0f32), Just(1.0 / 65536.0), Just((1.0f64 / 3.0) as f32), Just(1024.0), Just(1e-30)]
}

impl Copy {
    fn same(&self, other: &Copy) -> bool {
        let h = |a: &[f16], b: &[f16]| {
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
        };
        let b = |a: &[bf16], b: &[bf16]| {
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
        };
        same_bits(&self.f32, &other.f32) && h(&self.f16, &other.f16) && b(&self.bf16, &other.bf16)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `sgd_scaled` on an f32/f16/bf16 gradient with the unscale folded in
    /// is bit-identical, on every path, to unscaling into an f32 buffer
    /// and running `sgd` (weights, momentum and copy), specials included.
    #[test]
    fn sgd_scaled_is_unscale_then_sgd(len in length(), off in 0usize..17, seed: u64, momentum in prop_oneof![Just(0.0f32), Just(0.9)],
                                      wd in prop_oneof![Just(0.0f32), Just(1e-4)], nesterov: bool, first: bool, kind in copy_kind(),
                                      elem in grad_elem(), inv in inv_scale(), every in prop_oneof![Just(0u32), 2u32..50]) {
        let mut rng = SplitMix(seed);
        let p = Sgd { lr: 0.05, momentum, dampening: 0.0, weight_decay: wd, nesterov: nesterov && momentum != 0.0 };
        let w0: Vec<f32> = (0..len + off).map(|_| rng.next_f32()).collect();
        let w0 = with_specials(&mut rng, w0, every);
        let g: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 1000.0).collect();
        let g = with_specials(&mut rng, g, every);
        let (g, unscaled) = scaled_grad(elem, &g, inv);
        let b0: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 0.01).collect();
        for k in paths() {
            let (mut w, mut b, mut c) = (w0.clone(), b0.clone(), Copy::new(kind, len + off));
            let buf = if momentum != 0.0 { Some(&mut b[off..]) } else { None };
            (k.optim.sgd.f)(&p, &mut w[off..], &unscaled[off..], buf, first, c.dst(off));
            let (mut w2, mut b2, mut c2) = (w0.clone(), b0.clone(), Copy::new(kind, len + off));
            let buf = if momentum != 0.0 { Some(&mut b2[off..]) } else { None };
            let src = match &g { Buf::F32(v) => Src::F32(&v[off..]), Buf::F16(v) => Src::F16(&v[off..]), Buf::Bf16(v) => Src::Bf16(&v[off..]), Buf::F64(_) => unreachable!() };
            (k.optim.sgd_scaled.f)(&p, &mut w2[off..], src, inv, buf, first, c2.dst(off));
            prop_assert!(same_bits(&w, &w2) && same_bits(&b, &b2) && c.same(&c2), "{}: {elem:?} × {inv:e}", k.label());
        }
    }

    /// `adam_scaled` against unscaling then `adam`, over two steps: bit-identical on every path.
    #[test]
    fn adam_scaled_is_unscale_then_adam(len in length(), off in 0usize..17, seed: u64, decoupled: bool, wd in prop_oneof![Just(0.0f32), Just(0.01)],
                                        kind in copy_kind(), elem in grad_elem(), inv in inv_scale(), every in prop_oneof![Just(0u32), 2u32..50]) {
        let mut rng = SplitMix(seed);
        let a = Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: wd, decoupled };
        let w0: Vec<f32> = (0..len + off).map(|_| rng.next_f32()).collect();
        let w0 = with_specials(&mut rng, w0, every);
        let grads: Vec<(Buf, Vec<f32>)> = (0..2)
            .map(|_| {
                let g: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 1000.0).collect();
                let g = with_specials(&mut rng, g, every);
                scaled_grad(elem, &g, inv)
            })
            .collect();
        for k in paths() {
            let n = len + off;
            let (mut w, mut m, mut v, mut c) = (w0.clone(), vec![0.0f32; n], vec![0.0f32; n], Copy::new(kind, n));
            let (mut w2, mut m2, mut v2, mut c2) = (w0.clone(), vec![0.0f32; n], vec![0.0f32; n], Copy::new(kind, n));
            for (t, (g, unscaled)) in grads.iter().enumerate() {
                let st = a.step(t as u64 + 1);
                (k.optim.adam.f)(&st, &mut w[off..], &unscaled[off..], &mut m[off..], &mut v[off..], c.dst(off));
                let src = match g { Buf::F32(x) => Src::F32(&x[off..]), Buf::F16(x) => Src::F16(&x[off..]), Buf::Bf16(x) => Src::Bf16(&x[off..]), Buf::F64(_) => unreachable!() };
                (k.optim.adam_scaled.f)(&st, &mut w2[off..], src, inv, &mut m2[off..], &mut v2[off..], c2.dst(off));
            }
            prop_assert!(same_bits(&w, &w2) && same_bits(&m, &m2) && same_bits(&v, &v2) && c.same(&c2), "{}: {elem:?} × {inv:e}", k.label());
        }
    }
}

#[test]
#[should_panic(expected = "f64 gradients")]
fn sgd_scaled_refuses_f64_gradients() {
    let p = Sgd { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false };
    mixprec_kernels::optim::sgd_scaled(&p, &mut [0.0f32; 3], Src::F64(&[1.0; 3]), 1.0, None, true, None);
}

/// Logits for the cross-entropy properties: `scale·[-1, 1)`, with special
/// values (±0, subnormals, ±65504, ±Inf, NaN) one in `every` (none for 0).
fn logits_with_specials(rng: &mut SplitMix, len: usize, scale: f64, every: u32) -> Vec<f64> {
    const S: [f64; 9] = [0.0, -0.0, 1e-40, -6.0e-8, 65504.0, -65504.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
    (0..len)
        .map(|_| {
            let r = rng.next_u32();
            if every > 0 && r.is_multiple_of(every) {
                S[(r >> 8) as usize % S.len()]
            } else {
                rng.next_f32() as f64 * scale
            }
        })
        .collect()
}

/// `b[o..o + len]` as a destination.
fn window(b: &mut Buf, o: usize, len: usize) -> Dst<'_> {
    match b {
        Buf::F32(v) => Dst::F32(&mut v[o..o + len]),
        Buf::F16(v) => Dst::F16(&mut v[o..o + len]),
        Buf::Bf16(v) => Dst::Bf16(&mut v[o..o + len]),
        Buf::F64(v) => Dst::F64(&mut v[o..o + len]),
    }
}

/// `|got − want| ≤ bound`, or `got` is the infinity that `want` moved by
/// the bound rounds to in `eo` (an output beyond the type's range).
fn close(eo: Elem, got: f64, want: f64, bound: f64) -> bool {
    (got - want).abs() <= bound || (got.is_infinite() && round_to(eo, want + want.signum() * bound) == got)
}

fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Cross-entropy forward and backward on every path, any row length
    /// 1..5000, unaligned starts of every buffer, every input and output
    /// type: rows of finite logits within the bounds of docs/numerics.md
    /// (as `check_ce`), rows with NaN or ±Inf exactly as the reference;
    /// nothing written outside the outputs.
    #[test]
    fn cross_entropy_properties(ei in prop::sample::select(vec![Elem::F32, Elem::F16, Elem::Bf16]),
                                eo in prop::sample::select(vec![Elem::F32, Elem::F16, Elem::Bf16]),
                                rows in 0usize..4, n in prop_oneof![1usize..70, prop::sample::select(vec![7usize, 8, 9, 15, 16, 17, 31, 33, 255, 256, 257, 4095, 4096, 4097]), 1usize..5000],
                                off in 0usize..17, seed: u64, every in prop_oneof![Just(0u32), 5u32..200]) {
        let mut rng = SplitMix(seed);
        let xs = logits_with_specials(&mut rng, rows * n + off, 20.0, every);
        let x = Buf::from_f64(ei, &xs);
        let xv = x.to_f64();
        let xsrc = || x.src().slice(off, off + rows * n);
        let targets: Vec<usize> = (0..rows).map(|_| rng.next_u32() as usize % n).collect();
        let gs: Vec<f64> = (0..rows + off).map(|_| rng.next_f32() as f64).collect();
        let g = Buf::from_f64(eo, &gs);
        let gsrc = || g.src().slice(off, off + rows);
        let reference = mixprec_kernels::table(mixprec_kernels::Isa::Scalar).unwrap();
        let (mut rl, mut re) = (Buf::zeros(eo, rows), Buf::zeros(eo, rows));
        (reference.loss.cross_entropy.f)(xsrc(), rows, n, &targets, rl.dst(), re.dst());
        let mut rg = Buf::zeros(eo, rows * n);
        (reference.loss.cross_entropy_grad.f)(xsrc(), rows, n, &targets, re.src(), gsrc(), rg.dst());
        const PAD: f64 = 12288.0;
        for k in paths() {
            let o = (off * 3) % 11;
            let (mut loss, mut lse) = (Buf::from_f64(eo, &vec![PAD; rows + o + 5]), Buf::from_f64(eo, &vec![PAD; rows + o + 5]));
            (k.loss.cross_entropy.f)(xsrc(), rows, n, &targets, window(&mut loss, o, rows), window(&mut lse, o, rows));
            let mut grad = Buf::from_f64(eo, &vec![PAD; rows * n + o + 5]);
            let gdst = window(&mut grad, o, rows * n);
            (k.loss.cross_entropy_grad.f)(xsrc(), rows, n, &targets, lse.src().slice(o, o + rows), gsrc(), gdst);
            for b in [&loss, &lse] {
                prop_assert!((0..o).chain(o + rows..b.len()).all(|i| b.get(i) == PAD), "{}: wrote outside loss/lse", k.label());
            }
            prop_assert!((0..o).chain(o + rows * n..grad.len()).all(|i| grad.get(i) == PAD), "{}: wrote outside grad", k.label());
            let u = U;
            for i in 0..rows {
                let row = &xv[off + i * n..off + (i + 1) * n];
                let t = targets[i];
                if row.iter().any(|v| v.is_nan() || *v == f64::INFINITY) || row.iter().all(|v| *v == f64::NEG_INFINITY) {
                    prop_assert!(same_value(loss.get(o + i), rl.get(i)) && same_value(lse.get(o + i), re.get(i)),
                        "{}: special row {i}: loss {:e} lse {:e} vs {:e} {:e}", k.label(), loss.get(o + i), lse.get(o + i), rl.get(i), re.get(i));
                    for j in 0..n {
                        let (a, b) = (grad.get(o + i * n + j), rg.get(i * n + j));
                        prop_assert!(same_value(a, b) || (b.is_finite() && (a - b).abs() <= 1e-5 * b.abs() + ulp_at(eo, b)),
                            "{}: special row {i} grad {j}: {a:e} vs {b:e}", k.label());
                    }
                    continue;
                }
                // −Inf logits (probability 0) are ordinary here: their terms vanish.
                let (want, want_lse, _) = ce_oracle(row, t);
                let spread = row.iter().filter(|v| v.is_finite()).map(|v| (v - want_lse).abs()).fold(0.0, f64::max);
                let bound = (2.0 * n as f64 + 4.0 + 2.0 * want_lse.abs()) * u;
                let got = lse.get(o + i);
                prop_assert!(close(eo, got, want_lse, bound + ulp_at(eo, want_lse)), "{}: lse {ei:?}->{eo:?} row {i}: {got:e} vs {want_lse:e}", k.label());
                let got = loss.get(o + i);
                let bl = bound + 2.0 * u * row[t].abs() + ulp_at(eo, want);
                prop_assert!(close(eo, got, want, bl), "{}: loss {ei:?}->{eo:?} n {n}: {got:e} vs {want:e} ± {bl:e}", k.label());
                let l = lse.get(o + i);
                let gi = g.get(off + i);
                let others: f64 = (0..n).filter(|&j| j != t).map(|j| (row[j] - l).exp()).sum();
                for (j, &xj) in row.iter().enumerate() {
                    let pj = (xj - l).exp();
                    let (want, scale) = if j == t { (-gi * others, gi.abs() * others) } else { (gi * pj, gi.abs() * pj) };
                    let b = (2.0 * n as f64 + 8.0 + 2.0 * spread) * u * scale + ulp_at(eo, want);
                    let got = grad.get(o + i * n + j);
                    prop_assert!(close(eo, got, want, b), "{}: grad {ei:?}->{eo:?} ({i},{j}) of {n}: {got:e} vs {want:e} ± {b:e}", k.label());
                }
            }
        }
    }
}
