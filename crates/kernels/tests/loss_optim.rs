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

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every SGD variant: each path bit-identical to the reference, the
    /// copy the rounded weights, and the weights within a few roundings of
    /// PyTorch's formula in f64.
    #[test]
    fn sgd_is_bit_identical_on_every_path(len in 0usize..700, off in 0usize..17, seed: u64, momentum in prop_oneof![Just(0.0f32), Just(0.9)],
                                          dampening in prop_oneof![Just(0.0f32), Just(0.1)], wd in prop_oneof![Just(0.0f32), Just(1e-4)],
                                          nesterov: bool, first: bool, kind in copy_kind()) {
        let mut rng = SplitMix(seed);
        let p = Sgd { lr: 0.05, momentum, dampening, weight_decay: wd, nesterov: nesterov && momentum != 0.0 };
        let w0: Vec<f32> = (0..len + off).map(|_| rng.next_f32()).collect();
        let g: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 0.1).collect();
        let b0: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 0.01).collect();
        let mut reference: Option<(Vec<f32>, Vec<f32>)> = None;
        for k in paths() {
            let (mut w, mut b) = (w0.clone(), b0.clone());
            let mut c = Copy::new(kind, len + off);
            let buf = if momentum != 0.0 { Some(&mut b[off..]) } else { None };
            (k.optim.sgd.f)(&p, &mut w[off..], &g[off..], buf, first, c.dst(off));
            prop_assert!(c.matches(&w[off..], off), "{}: copy", k.label());
            prop_assert_eq!(&w[..off], &w0[..off]);
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
            let mut d = gi + wd as f64 * wi;
            if momentum != 0.0 {
                let nb = if first { d } else { momentum as f64 * bi + (1.0 - dampening as f64) * d };
                d = if p.nesterov { d + momentum as f64 * nb } else { nb };
            }
            let want = wi - 0.05 * d;
            prop_assert!((w[i] as f64 - want).abs() <= 8.0 * U * (wi.abs() + 0.05 * d.abs() + 1e-30), "w[{i}]");
        }
    }

    /// Adam and AdamW over several steps: bit-identical paths, the copy the
    /// rounded weights, and close to the f64 formula.
    #[test]
    fn adam_is_bit_identical_on_every_path(len in 0usize..700, off in 0usize..17, seed: u64, decoupled: bool,
                                           wd in prop_oneof![Just(0.0f32), Just(0.01)], kind in copy_kind()) {
        let mut rng = SplitMix(seed);
        let a = Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: wd, decoupled };
        let w0: Vec<f32> = (0..len + off).map(|_| rng.next_f32()).collect();
        let grads: Vec<Vec<f32>> = (0..3).map(|_| (0..len + off).map(|_| rng.next_f32() * 0.1).collect()).collect();
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
