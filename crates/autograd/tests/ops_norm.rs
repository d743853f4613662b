//! batch_norm and layer_norm: literal cases, running statistics against
//! PyTorch's update formula, eval mode on running statistics, f16 inputs
//! (FP32 statistics, f16 saved), the fused `batch_norm_relu` against
//! `batch_norm` then `relu` (bit for bit), and finite-difference gradchecks.

mod common;

use common::*;
use mixprec_autograd::ops::RunningStats;
use mixprec_autograd::{Var, saved};
use mixprec_tensor::{DType, Tensor};
use proptest::prelude::*;

const EPS: f64 = 1e-5;

#[test]
fn batch_norm_training_literal_and_running_statistics() {
    // Channel 0 holds 1, 3, 5, 7 (mean 4, biased variance 5); channel 1 holds 2, 2, 4, 4 (mean 3, variance 1).
    let x = param(&[1.0, 3.0, 2.0, 2.0, 5.0, 7.0, 4.0, 4.0], &[2, 2, 2], DType::F32);
    let gamma = param(&[2.0, 1.0], &[2], DType::F32);
    let beta = param(&[0.5, -1.0], &[2], DType::F32);
    let mut running = RunningStats::new(2).unwrap();
    let y = x.batch_norm(Some(&gamma), Some(&beta), Some(&mut running), true, 0.1, EPS).unwrap();
    let (s0, s1) = ((5.0 + EPS).sqrt(), (1.0 + EPS).sqrt());
    let want = [
        2.0 * -3.0 / s0 + 0.5,
        -2.0 / s0 + 0.5,
        -1.0 / s1 - 1.0,
        -1.0 / s1 - 1.0,
        2.0 * 1.0 / s0 + 0.5,
        2.0 * 3.0 / s0 + 0.5,
        1.0 / s1 - 1.0,
        1.0 / s1 - 1.0,
    ];
    close(&val64(&y), &want, 1e-6);
    // r_μ = 0.9·0 + 0.1·μ, r_var = 0.9·1 + 0.1·var·M/(M−1) with M = 4.
    close(&running.mean.to_vec_f64().unwrap(), &[0.4, 0.3], 1e-7);
    close(&running.var.to_vec_f64().unwrap(), &[0.9 + 0.1 * 5.0 * 4.0 / 3.0, 0.9 + 0.1 * 4.0 / 3.0], 1e-6);
    // A second step moves them again by the same rule.
    x.batch_norm(Some(&gamma), Some(&beta), Some(&mut running), true, 0.1, EPS).unwrap();
    close(&running.mean.to_vec_f64().unwrap(), &[0.9 * 0.4 + 0.4, 0.9 * 0.3 + 0.3], 1e-6);

    // dβ = Σ g = 4 per channel; dγ = Σ x̂ = 0; dx = 0 for a sum (it is invariant to shifts).
    y.sum_all().unwrap().backward().unwrap();
    close(&grad64(&beta), &[4.0, 4.0], 1e-6);
    close(&grad64(&gamma), &[0.0, 0.0], 1e-6);
    close(&grad64(&x), &[0.0; 8], 1e-6);
}

#[test]
fn batch_norm_eval_uses_running_statistics() {
    let x = param(&[1.0, 3.0, 5.0, 7.0], &[4, 1], DType::F32);
    let gamma = param(&[3.0], &[1], DType::F32);
    let mut running = RunningStats { mean: t32(&[2.0], &[1]), var: t32(&[4.0], &[1]) };
    let y = x.batch_norm(Some(&gamma), None, Some(&mut running), false, 0.1, EPS).unwrap();
    let s = (4.0 + EPS).sqrt();
    close(&val64(&y), &[-3.0 / s, 3.0 / s, 9.0 / s, 15.0 / s], 1e-6);
    // Eval leaves the statistics alone; dx = γ·σ⁻¹·g.
    assert_eq!(running.mean.to_vec_f64().unwrap(), vec![2.0]);
    y.sum_all().unwrap().backward().unwrap();
    close(&grad64(&x), &[3.0 / s; 4], 1e-6);
    assert!(x.batch_norm(None, None, None, false, 0.1, EPS).is_err());
}

#[test]
fn batch_norm_rejects_bad_arguments() {
    let x = Var::constant(Tensor::zeros(&[2, 3, 2], DType::F32).unwrap());
    let w = Var::constant(Tensor::ones(&[2], DType::F32).unwrap());
    assert!(x.batch_norm(Some(&w), None, None, true, 0.1, EPS).is_err());
    assert!(x.batch_norm(None, None, Some(&mut RunningStats::new(2).unwrap()), true, 0.1, EPS).is_err());
    assert!(x.batch_norm(None, None, None, true, 0.1, 0.0).is_err());
    let one = Var::constant(Tensor::zeros(&[1, 3], DType::F32).unwrap());
    assert!(one.batch_norm(None, None, None, true, 0.1, EPS).is_err());
    assert!(x.layer_norm(&[3], None, None, EPS).is_err());
    assert!(x.layer_norm(&[2], Some(&Var::constant(Tensor::ones(&[3], DType::F32).unwrap())), None, EPS).is_err());
}

#[test]
fn batch_norm_f16_keeps_statistics_in_fp32_and_saves_f16() {
    // Values around 1000 with a spread of 1: f16 sums of squares would lose it, FP32 does not.
    let v: Vec<f64> = (0..64).map(|i| 1000.0 + f64::from(i % 8) * 0.25).collect();
    let x16 = Var::parameter(t64(&v, &[8, 2, 4]).to_dtype(DType::F16).unwrap());
    let x32 = Var::constant(x16.value().to_dtype(DType::F32).unwrap());
    let y16 = x16.batch_norm(None, None, None, true, 0.1, EPS).unwrap();
    let y32 = x32.batch_norm(None, None, None, true, 0.1, EPS).unwrap();
    assert_eq!(y16.dtype(), DType::F16);
    let want: Vec<f64> = val64(&y32).iter().map(|&v| DType::F16.round(v)).collect();
    close(&val64(&y16), &want, 2e-3);
    assert!(saved::saved_bytes().current >= 64 * 2);
    y16.mul(&y16).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(x16.grad().unwrap().dtype(), DType::F16);
}

#[test]
fn layer_norm_literal() {
    let x = param(&[1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0], &[2, 4], DType::F32);
    let w = param(&[1.0, 2.0, 1.0, 1.0], &[4], DType::F32);
    let b = param(&[0.0, 0.0, 1.0, 0.0], &[4], DType::F32);
    let y = x.layer_norm(&[4], Some(&w), Some(&b), EPS).unwrap();
    // Row 0: mean 2.5, var 1.25; row 1: mean 11, var 3.
    let (s0, s1) = ((1.25 + EPS).sqrt(), (3.0 + EPS).sqrt());
    let want = [-1.5 / s0, -1.0 / s0, 0.5 / s0 + 1.0, 1.5 / s0, -1.0 / s1, -2.0 / s1, -1.0 / s1 + 1.0, 3.0 / s1];
    close(&val64(&y), &want, 1e-6);
    y.sum_all().unwrap().backward().unwrap();
    close(&grad64(&b), &[2.0; 4], 1e-6);
    close(&grad64(&w), &[-1.5 / s0 - 1.0 / s1, -0.5 / s0 - 1.0 / s1, 0.5 / s0 - 1.0 / s1, 1.5 / s0 + 3.0 / s1], 1e-6);
}

fn nchw() -> impl Strategy<Value = Vec<usize>> {
    (1usize..4, 1usize..4, 0usize..3, 1usize..4).prop_map(|(n, c, r, s)| match r {
        0 => vec![n + 1, c],
        1 => vec![n, c, s + 1],
        _ => vec![n, c, s, 2],
    })
}

/// Output values, the gradients of x, γ and β, and the running statistics.
type Run = (Vec<f64>, Vec<Vec<f64>>, Vec<f64>);

/// [`Run`] of `batch_norm_relu` and of `batch_norm` then `relu` (the
/// gradients through a random projection of the output).
fn fused_and_composed(shape: &[usize], dtype: DType, seed: u64) -> [Run; 2] {
    let c = shape[1];
    let x = uniform(shape, -2.0, 2.0, seed).to_dtype(dtype).unwrap();
    let w = uniform(&[c], 0.5, 2.0, seed ^ 1).to_dtype(dtype).unwrap();
    // β around 0 puts about half the outputs below the kink.
    let b = uniform(&[c], -0.5, 0.5, seed ^ 2).to_dtype(dtype).unwrap();
    let proj = Var::constant(uniform(shape, -1.0, 1.0, seed ^ 3).to_dtype(dtype).unwrap());
    [true, false].map(|fused| {
        let (xv, wv, bv) = (Var::parameter(x.clone()), Var::parameter(w.clone()), Var::parameter(b.clone()));
        let mut running = RunningStats::new(c).unwrap();
        let y = if fused {
            xv.batch_norm_relu(Some(&wv), Some(&bv), Some(&mut running), true, 0.1, EPS).unwrap()
        } else {
            xv.batch_norm(Some(&wv), Some(&bv), Some(&mut running), true, 0.1, EPS).unwrap().relu().unwrap()
        };
        assert_eq!(y.op(), Some(if fused { "batch_norm_relu" } else { "relu" }));
        y.mul(&proj).unwrap().sum_all().unwrap().backward().unwrap();
        let mut stats = running.mean.to_vec_f64().unwrap();
        stats.extend(running.var.to_vec_f64().unwrap());
        (val64(&y), vec![grad64(&xv), grad64(&wv), grad64(&bv)], stats)
    })
}

#[test]
fn batch_norm_relu_is_batch_norm_then_relu_bit_for_bit() {
    for (shape, dtype) in [
        (vec![4, 3, 5, 6], DType::F32),
        (vec![3, 2, 7], DType::F64),
        (vec![2, 4, 3, 3], DType::F16),
        (vec![2, 4, 3, 3], DType::BF16),
        (vec![5, 3], DType::F32),
    ] {
        for seed in 0..4 {
            let [fused, composed] = fused_and_composed(&shape, dtype, seed);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fused.0), bits(&composed.0), "values, {shape:?} {dtype:?} seed {seed}");
            assert!(fused.0.contains(&0.0) && fused.0.iter().any(|&v| v > 0.0));
            for (i, (a, b)) in fused.1.iter().zip(&composed.1).enumerate() {
                assert_eq!(bits(a), bits(b), "gradient of input {i}, {shape:?} {dtype:?} seed {seed}");
            }
            assert_eq!(bits(&fused.2), bits(&composed.2), "running statistics, {shape:?} {dtype:?}");
        }
    }
}

#[test]
fn batch_norm_relu_eval_and_nan() {
    // Eval on running statistics; a NaN input stays NaN through the ReLU, as `relu` keeps it.
    let x = param(&[1.0, 3.0, f64::NAN, 7.0], &[4, 1], DType::F32);
    let mut running = RunningStats { mean: t32(&[4.0], &[1]), var: t32(&[4.0], &[1]) };
    let y = x.batch_norm_relu(None, None, Some(&mut running), false, 0.1, EPS).unwrap();
    let v = val64(&y);
    let s = (4.0 + EPS).sqrt();
    assert_eq!((v[0], v[1]), (0.0, 0.0));
    assert!(v[2].is_nan());
    close(&v[3..], &[3.0 / s], 1e-6);
    assert!(x.batch_norm_relu(None, None, None, false, 0.1, EPS).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_batch_norm_relu(shape in nchw(), seed in any::<u64>()) {
        let c = shape[1];
        let x = uniform(&shape, -2.0, 2.0, seed);
        let w = uniform(&[c], 0.5, 2.0, seed ^ 1);
        // β of either sign, at least 0.3 from 0: some units on, some off, none at the kink
        // for most draws; a draw with an output within 1e-3 of 0 is skipped.
        let b = away_from_zero(&[c], 0.3, 1.0, seed ^ 2);
        let y = Var::constant(x.clone()).batch_norm(Some(&Var::constant(w.clone())), Some(&Var::constant(b.clone())), None, true, 0.1, EPS).unwrap();
        prop_assume!(val64(&y).iter().all(|v| v.abs() > 1e-3));
        check(|v| v[0].batch_norm_relu(Some(&v[1]), Some(&v[2]), None, true, 0.1, EPS), &[x, w, b]);
    }

    #[test]
    fn gradcheck_batch_norm(shape in nchw(), seed in any::<u64>(), affine in any::<bool>()) {
        let c = shape[1];
        let x = uniform(&shape, -2.0, 2.0, seed);
        let w = uniform(&[c], 0.5, 2.0, seed ^ 1);
        let b = uniform(&[c], -1.0, 1.0, seed ^ 2);
        if affine {
            check(|v| v[0].batch_norm(Some(&v[1]), Some(&v[2]), None, true, 0.1, EPS), &[x.clone(), w.clone(), b.clone()]);
        } else {
            check(|v| v[0].batch_norm(None, None, None, true, 0.1, EPS), std::slice::from_ref(&x));
        }
        let running = RunningStats { mean: uniform(&[c], -1.0, 1.0, seed ^ 3), var: uniform(&[c], 0.5, 2.0, seed ^ 4) };
        check(|v| v[0].batch_norm(Some(&v[1]), Some(&v[2]), Some(&mut running.clone()), false, 0.1, EPS), &[x, w, b]);
    }

    #[test]
    fn gradcheck_layer_norm(rows in 1usize..4, d in 2usize..6, two in any::<bool>(), seed in any::<u64>()) {
        let (shape, norm) = if two { (vec![rows, 2, d], vec![2, d]) } else { (vec![rows, d], vec![d]) };
        let x = uniform(&shape, -2.0, 2.0, seed);
        let w = uniform(&norm, 0.5, 2.0, seed ^ 1);
        let b = uniform(&norm, -1.0, 1.0, seed ^ 2);
        check(|v| v[0].layer_norm(&norm, Some(&v[1]), Some(&v[2]), EPS), &[x.clone(), w, b]);
        check(|v| v[0].layer_norm(&norm, None, None, EPS), &[x]);
    }
}
