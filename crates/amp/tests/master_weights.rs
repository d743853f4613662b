//! Master weights (O2) against pure f16 (O3) on the paper's first
//! phenomenon in miniature: an update below half an f16 ulp of the weight
//! rounds away in f16 and accumulates in the FP32 master. Also: conversion
//! keeps the parameters norm layers declare FP32, gradients reach the masters unscaled, a
//! non-finite gradient skips the step, bf16 copies without a scaler.

mod common;

use common::{RecordingSgd, konst};
use mixprec_amp::scaler::ScalerConfig;
use mixprec_amp::{
    AmpError, AmpOptimizer, GradScaler, MasterWeights, Precision, StepOutcome, autocast, convert_params,
};
use mixprec_autograd::nn::{BatchNorm2d, LayerNorm, Linear, Module, Relu, Sequential};
use mixprec_autograd::optim::{Sgd, SgdConfig};
use mixprec_autograd::tensor::random::Generator;
use mixprec_autograd::tensor::{DType, Tensor};
use mixprec_autograd::{CrossEntropy, Var};

fn named(v: &[(&str, &[f32])]) -> Vec<(String, Var)> {
    v.iter().map(|(n, x)| (n.to_string(), Var::parameter(Tensor::from_vec(x.to_vec(), &[x.len()]).unwrap()))).collect()
}

fn build(lr: f32) -> impl FnOnce(Vec<Var>) -> mixprec_amp::Result<RecordingSgd> {
    move |m| Ok(RecordingSgd::new(m, lr))
}

#[test]
fn conversion_keeps_fp32_masters() {
    let params = named(&[("fc1.weight", &[0.1, 1.0 / 3.0]), ("fc2.bias", &[0.3])]);
    let orig: Vec<Vec<f32>> = params.iter().map(|(_, v)| v.value().to_vec_f32().unwrap()).collect();
    let mw = MasterWeights::new(params.clone(), DType::F16, build(0.1)).unwrap();
    assert!(params.iter().all(|(_, v)| v.dtype() == DType::F16), "the model's own parameters are now f16");
    for (m, o) in mw.masters().iter().zip(&orig) {
        assert_eq!(m.dtype(), DType::F32);
        assert_eq!(&m.value().to_vec_f32().unwrap(), o, "masters hold the FP32 values, not the rounded ones");
    }
    assert_ne!(params[0].1.value().to_vec_f32().unwrap(), orig[0], "0.1 and 1/3 round in f16");
}

/// Norm layers stay FP32 because they declare their parameters so
/// (`Param::set_norm`), not because of their names: a linear layer named
/// like a norm layer is converted, norm layers under neutral names are not,
/// and a user-defined norm parameter is kept too. The model then trains.
#[test]
fn norm_layers_declare_their_parameters_and_stay_fp32() {
    let mut rng = Generator::new(5);
    let model = Sequential::new()
        .push_named("bn_like_name", Linear::new(6, 8, &mut rng).unwrap())
        .push_named("a", BatchNorm2d::new(8).unwrap())
        .push(Relu)
        .push_named("b", LayerNorm::new(&[8]).unwrap())
        .push_named("norm_head", Linear::new(8, 3, &mut rng).unwrap());
    let scale = Var::parameter(Tensor::from_vec(vec![1.0f32; 3], &[3]).unwrap());
    scale.param().unwrap().set_norm(true);
    let mut params = model.named_parameters();
    params.push(("custom.gain".to_string(), scale.clone()));
    let names: Vec<(String, bool)> = params.iter().map(|(n, v)| (n.clone(), v.param().unwrap().is_norm())).collect();
    let sgd = |m: Vec<Var>| Ok(Sgd::new(m, SgdConfig { lr: 0.05, ..SgdConfig::default() })?);
    let mut mw = MasterWeights::new(params.clone(), DType::F16, sgd).unwrap();
    for ((name, norm), (_, v)) in names.iter().zip(&params) {
        let want = if *norm { DType::F32 } else { DType::F16 };
        assert_eq!(v.dtype(), want, "{name}");
    }
    let kept: Vec<&str> = names.iter().filter(|(_, n)| *n).map(|(n, _)| n.as_str()).collect();
    assert_eq!(kept, ["a.weight", "a.bias", "b.weight", "b.bias", "custom.gain"]);
    // Norm parameters are their own masters.
    for ((_, v), m) in params.iter().zip(mw.masters()) {
        let same = v.param().unwrap().id() == m.param().unwrap().id();
        assert_eq!(same, v.param().unwrap().is_norm());
    }
    let mut x = vec![0.0f32; 16 * 6];
    rng.fill_normal_f32(&mut x, 0.0, 1.0);
    let x = Var::new(Tensor::from_vec(x, &[16, 6]).unwrap());
    let targets: Vec<usize> = (0..16).map(|i| i % 3).collect();
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    let mut losses = Vec::new();
    for _ in 0..20 {
        mw.zero_grad();
        let loss = autocast(Precision::MasterWeights, || {
            model.forward(&x).unwrap().mul(&scale).unwrap().cross_entropy(&targets, CrossEntropy::default()).unwrap()
        });
        losses.push(loss.item().unwrap());
        scaler.scale(&loss).unwrap().backward().unwrap();
        assert_eq!(scaler.step(&mut mw).unwrap(), StepOutcome::Applied);
        scaler.update().unwrap();
    }
    assert!(losses[19] < losses[0] * 0.8, "the mixed model trains: {losses:?}");
    assert_eq!(model.named_parameters()[2].1.dtype(), DType::F32, "batch norm's γ is still FP32 after steps");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let p = named(&[("w", &[1.0])]);
    assert!(matches!(MasterWeights::new(p.clone(), DType::F32, build(0.1)), Err(AmpError::BadWorkingDType { .. })));
    convert_params(&p, DType::F16, |_| false).unwrap();
    assert!(matches!(MasterWeights::new(p, DType::F16, build(0.1)), Err(AmpError::NotFp32 { .. })));
    let c = vec![("x".to_string(), konst(&[1.0]))];
    assert!(matches!(MasterWeights::new(c, DType::F16, build(0.1)), Err(AmpError::NotAParameter { .. })));
}

/// 100 SGD steps with lr·g = 2^-13 on weights equal to 1 (half an f16 ulp
/// of 1 is 2^-11): returns the final weights the model computes with and
/// how many updates left a weight unchanged.
fn small_updates(master: bool) -> (Vec<f32>, usize) {
    let params = named(&[("w", &[1.0; 8])]);
    let w = params[0].1.clone();
    let x = konst(&[2f32.powi(-13); 8]);
    let mut unchanged = 0;
    let mut step = |old: Vec<f32>, new: Vec<f32>| unchanged += old.iter().zip(&new).filter(|(a, b)| a == b).count();
    if master {
        let mut opt = MasterWeights::new(params, DType::F16, build(1.0)).unwrap();
        for _ in 0..100 {
            opt.zero_grad();
            w.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
            let old = w.value().to_vec_f32().unwrap();
            assert_eq!(opt.step().unwrap(), None);
            step(old, w.value().to_vec_f32().unwrap());
        }
        let m = opt.masters()[0].value().to_vec_f32().unwrap();
        assert!(
            m.iter().all(|&v| v == 1.0 - 100.0 * 2f32.powi(-13)),
            "the FP32 master accumulates every update: {m:?}"
        );
    } else {
        convert_params(&params, DType::F16, |_| false).unwrap();
        let mut opt = RecordingSgd::new(vec![w.clone()], 1.0);
        for _ in 0..100 {
            opt.zero_grad();
            w.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
            let old = w.value().to_vec_f32().unwrap();
            opt.amp_step().unwrap();
            step(old, w.value().to_vec_f32().unwrap());
        }
    }
    (w.value().to_vec_f32().unwrap(), unchanged)
}

#[test]
fn updates_below_half_an_ulp_vanish_in_f16_and_accumulate_in_the_master() {
    let (pure, pure_unchanged) = small_updates(false);
    assert_eq!(pure, vec![1.0; 8], "pure f16: every update rounded away");
    assert_eq!(pure_unchanged, 800);
    let (mw, mw_unchanged) = small_updates(true);
    // 1 − 100·2^-13 = 0.98779…, whose nearest f16 is 0.98779296875.
    let want = half::f16::from_f32(1.0 - 100.0 * 2f32.powi(-13)).to_f32();
    assert_eq!(mw, vec![want; 8]);
    assert!(mw_unchanged < 800, "the working copy moves whenever the master crosses a rounding boundary");
}

#[test]
fn scaled_f16_gradients_reach_the_masters_unscaled_and_inf_skips() {
    let params = named(&[("fc.weight", &[0.5, -0.25, 2.0]), ("norm.weight", &[1.0])]);
    params[1].1.param().unwrap().set_norm(true);
    let (w, g) = (params[0].1.clone(), params[1].1.clone());
    let mut opt = MasterWeights::new(params, DType::F16, build(0.5)).unwrap();
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    // Gradients 2^-20, 3·2^-26, 0.5 (w) and 2 (g): the first two are f16
    // subnormal or below without scaling; scaled by 2^16 they are normal.
    let x = konst(&[2f32.powi(-20), 3.0 * 2f32.powi(-26), 0.5]);
    let loss = w.mul(&x).unwrap().sum_all().unwrap().add(&g.mul_scalar(2.0).unwrap().sum_all().unwrap()).unwrap();
    scaler.scale(&loss).unwrap().backward().unwrap();
    assert_eq!(w.grad().unwrap().dtype(), DType::F16);
    assert_eq!(scaler.step(&mut opt).unwrap(), StepOutcome::Applied);
    scaler.update().unwrap();
    let seen = &opt.inner().seen;
    assert_eq!(seen[0], vec![2f32.powi(-20), 3.0 * 2f32.powi(-26), 0.5], "exact: scaled values are normal f16");
    assert_eq!(seen[1], vec![2.0]);
    let m = opt.masters()[0].value().to_vec_f32().unwrap();
    assert_eq!(m, vec![0.5 - 0.5 * 2f32.powi(-20), -0.25 - 1.5 * 2f32.powi(-26), 1.75]);
    let want: Vec<f32> = m.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    assert_eq!(w.value().to_vec_f32().unwrap(), want, "the working copy is the rounded master");

    // Same with an Inf in the f16 gradient: nothing moves, the scale halves.
    opt.zero_grad();
    let before: Vec<Vec<f32>> = opt.masters().iter().map(|m| m.value().to_vec_f32().unwrap()).collect();
    let wv = w.value().to_vec_f32().unwrap();
    let loss = w.mul(&x).unwrap().sum_all().unwrap().mul_scalar(1e6).unwrap();
    scaler.scale(&loss).unwrap().backward().unwrap(); // 1e6·2^16 overflows f16
    let out = scaler.step(&mut opt).unwrap();
    assert!(matches!(out, StepOutcome::Skipped { optimizer: 0, found } if found.param == 0), "{out:?}");
    scaler.update().unwrap();
    assert_eq!(scaler.scale_factor(), 32768.0);
    let after: Vec<Vec<f32>> = opt.masters().iter().map(|m| m.value().to_vec_f32().unwrap()).collect();
    assert_eq!(after, before);
    assert_eq!(w.value().to_vec_f32().unwrap(), wv);
}

#[test]
fn bf16_working_copies_step_without_a_scaler() {
    let params = named(&[("w", &[1.0, 3.0])]);
    let w = params[0].1.clone();
    let mut opt = MasterWeights::new(params, DType::BF16, build(0.25)).unwrap();
    assert_eq!(w.dtype(), DType::BF16);
    w.mul(&konst(&[1.0, -1.0])).unwrap().sum_all().unwrap().backward().unwrap();
    opt.step().unwrap();
    assert_eq!(opt.masters()[0].value().to_vec_f32().unwrap(), vec![0.75, 3.25]);
    assert_eq!(w.value().to_vec_f32().unwrap(), vec![0.75, 3.25]);
    assert_eq!(opt.amp_params().len(), 1);
}

#[test]
fn a_disabled_scaler_steps_master_weights_too() {
    let params = named(&[("w", &[1.0, 3.0])]);
    let w = params[0].1.clone();
    let mut opt = MasterWeights::new(params, DType::BF16, build(0.25)).unwrap();
    let mut scaler = GradScaler::disabled();
    scaler.scale(&w.mul(&konst(&[1.0, -1.0])).unwrap().sum_all().unwrap()).unwrap().backward().unwrap();
    assert_eq!(scaler.step(&mut opt).unwrap(), StepOutcome::Applied);
    scaler.update().unwrap();
    assert_eq!(opt.masters()[0].value().to_vec_f32().unwrap(), vec![0.75, 3.25]);
    assert_eq!(w.value().to_vec_f32().unwrap(), vec![0.75, 3.25]);
}
