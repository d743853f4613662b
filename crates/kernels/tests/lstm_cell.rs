//! The fused LSTM step kernels (`ew::lstm_cell`, `ew::lstm_cell_grad`) on
//! every path the host can run, on random shapes (hidden sizes across the
//! vector tails) and values mixing ±0, subnormals, ±Inf, NaN and large
//! magnitudes: gate activations and `tanh(c)` within the unary-math bound of
//! the exact values, the cell and `h` exactly the f32 operations on them,
//! and the backward bit-identical to the scalar reference for every input
//! and output type.

mod common;

use common::{Buf, SplitMix, mixed_values, paths, round_to, same_or_both_nan, within_ulps};
use mixprec_kernels::Isa;
use mixprec_kernels::ew::{LstmSaved, UnaryOp};
use mixprec_kernels::scalar::ew::{lstm_cell_grad_scalar, unary_f64};
use mixprec_kernels::slice::Elem;
use proptest::prelude::*;

const OUT: [Elem; 4] = [Elem::F32, Elem::F16, Elem::Bf16, Elem::F64];

/// ulps of f32 allowed for `σ` and `tanh`: 1 on the reference, 4 on SIMD paths.
fn math_ulps(isa: Isa) -> f64 {
    if isa == Isa::Scalar { 1.0 } else { 4.0 }
}

fn f32s(rng: &mut SplitMix, n: usize) -> Vec<f32> {
    mixed_values(rng, n).into_iter().map(|v| v as f32).collect()
}

fn check_forward(rows: usize, hs: usize, seed: u64) {
    let mut rng = SplitMix(seed);
    let pre = f32s(&mut rng, rows * 4 * hs);
    let c_prev = f32s(&mut rng, rows * hs);
    for k in paths() {
        for out in OUT {
            let mut gates = pre.clone();
            let (mut c, mut tc) = (vec![f32::NAN; rows * hs], vec![f32::NAN; rows * hs]);
            let mut h = Buf::zeros(out, rows * hs);
            (k.ew.lstm_cell.f)(hs, &mut gates, &c_prev, &mut c, &mut tc, h.dst());
            let ulps = math_ulps(k.isa);
            for r in 0..rows {
                for j in 0..4 * hs {
                    let x = pre[r * 4 * hs + j] as f64;
                    let op = if (2 * hs..3 * hs).contains(&j) { UnaryOp::Tanh } else { UnaryOp::Sigmoid };
                    let got = gates[r * 4 * hs + j] as f64;
                    assert!(
                        within_ulps(Elem::F32, got, unary_f64(op, x), ulps),
                        "{} {op:?}({x:e}) = {got:e} (hs {hs}, row {r}, lane {j})",
                        k.isa
                    );
                }
                for j in 0..hs {
                    let a = &gates[r * 4 * hs..(r + 1) * 4 * hs];
                    let (i, f, g, o) = (a[j], a[hs + j], a[2 * hs + j], a[3 * hs + j]);
                    let at = r * hs + j;
                    let want_c = f * c_prev[at] + i * g;
                    assert!(same_or_both_nan(c[at], want_c), "{} c = {} want {want_c} at {at}", k.isa, c[at]);
                    let want_t = unary_f64(UnaryOp::Tanh, c[at] as f64);
                    assert!(within_ulps(Elem::F32, tc[at] as f64, want_t, ulps), "{} tanh({})", k.isa, c[at]);
                    let want_h = round_to(out, (o * tc[at]) as f64);
                    let got_h = h.get(at);
                    assert!(
                        got_h.to_bits() == want_h.to_bits() || (got_h.is_nan() && want_h.is_nan()),
                        "{} h {out:?} = {got_h:e}, want {want_h:e} at {at}",
                        k.isa
                    );
                }
            }
        }
    }
}

fn check_backward(rows: usize, hs: usize, seed: u64) {
    let mut rng = SplitMix(seed);
    let act = f32s(&mut rng, rows * 4 * hs);
    let c_prev = f32s(&mut rng, rows * hs);
    let tanh_c = f32s(&mut rng, rows * hs);
    let dh_next = f32s(&mut rng, rows * hs);
    let dc0 = f32s(&mut rng, rows * hs);
    let dy_vals = mixed_values(&mut rng, rows * hs);
    let saved = LstmSaved { act: &act, c_prev: &c_prev, tanh_c: &tanh_c };
    for dy_t in OUT {
        let dy = Buf::from_f64(dy_t, &dy_vals);
        for out in OUT {
            let (mut want_dc, mut want) = (dc0.clone(), Buf::zeros(out, rows * 4 * hs));
            lstm_cell_grad_scalar(hs, saved, dy.src(), &dh_next, &mut want_dc, want.dst());
            for k in paths() {
                let (mut dc, mut got) = (dc0.clone(), Buf::zeros(out, rows * 4 * hs));
                (k.ew.lstm_cell_grad.f)(hs, saved, dy.src(), &dh_next, &mut dc, got.dst());
                assert!(got.same(&want), "{} dgates, dy {dy_t:?}, out {out:?}, hs {hs}", k.isa);
                assert!(
                    dc.iter().zip(&want_dc).all(|(&a, &b)| same_or_both_nan(a, b)),
                    "{} dc, dy {dy_t:?}, hs {hs}",
                    k.isa
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lstm_cell_matches_the_exact_functions(rows in 1usize..4, hs in 1usize..41, seed in any::<u64>()) {
        check_forward(rows, hs, seed);
    }

    #[test]
    fn lstm_cell_grad_is_bit_identical_to_the_reference(rows in 1usize..4, hs in 1usize..41, seed in any::<u64>()) {
        check_backward(rows, hs, seed);
    }
}

/// The char-LM's shape (hidden 256, batch 32): one whole step.
#[test]
fn lstm_cell_at_the_char_lm_shape() {
    check_forward(32, 256, 7);
    check_backward(32, 256, 8);
}

/// Saturated gates: `σ(±Inf)` is 1/0 and `tanh(±Inf)` ±1, so the cell and
/// `h` stay finite; a NaN pre-activation reaches `c` and `h`.
#[test]
fn lstm_cell_special_values() {
    for k in paths() {
        let hs = 1;
        let mut gates = vec![f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::INFINITY];
        let (mut c, mut tc, mut h) = (vec![0.0f32], vec![0.0f32], Buf::zeros(Elem::F32, 1));
        (k.ew.lstm_cell.f)(hs, &mut gates, &[5.0], &mut c, &mut tc, h.dst());
        assert_eq!(gates, [1.0, 0.0, 1.0, 1.0], "{}", k.isa);
        assert_eq!(c, [1.0], "{}", k.isa);
        assert_eq!(h.get(0), (1.0f64).tanh() as f32 as f64, "{}", k.isa);
        let mut gates = vec![f32::NAN, 0.0, 0.0, 0.0];
        (k.ew.lstm_cell.f)(hs, &mut gates, &[1.0], &mut c, &mut tc, h.dst());
        assert!(c[0].is_nan() && h.get(0).is_nan(), "{}", k.isa);
    }
}

#[test]
#[should_panic(expected = "gate values")]
fn lstm_cell_checks_the_gates() {
    let (mut c, mut t) = (vec![0.0f32; 2], vec![0.0f32; 2]);
    let mut h = vec![0.0f32; 2];
    mixprec_kernels::ew::lstm_cell(
        2,
        &mut [0.0; 7],
        &[0.0; 2],
        &mut c,
        &mut t,
        mixprec_kernels::slice::Dst::F32(&mut h),
    );
}
