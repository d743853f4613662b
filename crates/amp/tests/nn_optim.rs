//! amp with autograd's layers and optimizers: a module forced to FP32
//! inside an O1 model, SGD and Adam driven by the scaler (with clipping
//! after unscale), Adam over FP32 masters, pure f16 with the library SGD.

use mixprec_amp::scaler::ScalerConfig;
use mixprec_amp::{GradScaler, MasterWeights, Precision, StepOutcome, WithPrecision, autocast, convert_params};
use mixprec_autograd::nn::{Linear, Module, Relu, Sequential};
use mixprec_autograd::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig, clip_grad_norm};
use mixprec_autograd::tensor::random::Generator;
use mixprec_autograd::tensor::{DType, Tensor};
use mixprec_autograd::{CrossEntropy, Var};

fn input(rng: &mut Generator) -> Var {
    let mut v = vec![0.0f32; 8 * 16];
    rng.fill_normal_f32(&mut v, 0.0, 1.0);
    Var::new(Tensor::from_vec(v, &[8, 16]).unwrap())
}

#[test]
fn a_module_forced_to_fp32_inside_an_autocast_model() {
    let mut rng = Generator::new(7);
    let model = Sequential::new()
        .push(Linear::new(16, 32, &mut rng).unwrap())
        .push(Relu)
        .push(WithPrecision::new(Linear::new(32, 10, &mut rng).unwrap(), Precision::F32));
    let plain = Sequential::new()
        .push(Linear::new(16, 32, &mut rng).unwrap())
        .push(Relu)
        .push(Linear::new(32, 10, &mut rng).unwrap());
    let x = input(&mut rng);
    let (y, y_plain) = autocast(Precision::Autocast, || (model.forward(&x).unwrap(), plain.forward(&x).unwrap()));
    assert_eq!(y.dtype(), DType::F32, "the head runs in FP32");
    assert_eq!(y_plain.dtype(), DType::F16, "without the override it runs in f16");
    assert_eq!(model.parameters().len(), 4);
    y.cross_entropy(&[1, 2, 3, 4, 5, 6, 7, 8], CrossEntropy::default()).unwrap().backward().unwrap();
    assert!(model.parameters().iter().all(|p| p.grad().is_some_and(|g| g.dtype() == DType::F32)));
}

#[test]
fn library_optimizers_are_driven_by_the_scaler_with_clipping() {
    let mut rng = Generator::new(3);
    let model = Sequential::new()
        .push(Linear::new(16, 32, &mut rng).unwrap())
        .push(Relu)
        .push(Linear::new(32, 10, &mut rng).unwrap());
    let mut sgd = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() }).unwrap();
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    let targets = [0, 1, 2, 3, 4, 5, 6, 7];
    let x = input(&mut rng);
    let mut losses = Vec::new();
    for step in 0..30 {
        sgd.zero_grad();
        let loss = autocast(Precision::Autocast, || {
            model.forward(&x).unwrap().cross_entropy(&targets, CrossEntropy::default()).unwrap()
        });
        losses.push(loss.item().unwrap());
        scaler.scale(&loss).unwrap().backward().unwrap();
        if step == 5 {
            model.parameters()[0].param().unwrap().update_grad(|g| g.data_mut::<f32>().unwrap()[3] = f32::INFINITY);
        }
        scaler.unscale(&mut sgd).unwrap();
        let norm = clip_grad_norm(sgd.params(), 1.0).unwrap();
        assert_eq!(norm.is_finite(), step != 5);
        let before: Vec<Vec<f32>> = model.parameters().iter().map(|p| p.value().to_vec_f32().unwrap()).collect();
        let out = scaler.step(&mut sgd).unwrap();
        assert_eq!(out.applied(), step != 5);
        if step == 5 {
            let after: Vec<Vec<f32>> = model.parameters().iter().map(|p| p.value().to_vec_f32().unwrap()).collect();
            assert_eq!(after, before, "a skipped step leaves the model as it was");
        }
        scaler.update().unwrap();
    }
    assert_eq!(scaler.scale_factor(), 32768.0);
    assert!(losses[29] < 0.5 * losses[0], "{losses:?}");
}

#[test]
fn adam_over_fp32_masters_and_pure_f16_with_the_library_sgd() {
    let mut rng = Generator::new(5);
    let model = Sequential::new()
        .push(Linear::new(16, 32, &mut rng).unwrap())
        .push(Relu)
        .push(Linear::new(32, 10, &mut rng).unwrap());
    let mut opt = MasterWeights::new(model.named_parameters(), DType::F16, |m| {
        Ok(Adam::new(m, AdamConfig { lr: 0.01, ..AdamConfig::adam() })?)
    })
    .unwrap();
    assert!(model.parameters().iter().all(|p| p.dtype() == DType::F16));
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    let x = input(&mut rng);
    let targets = [0, 1, 2, 3, 4, 5, 6, 7];
    let mut losses = Vec::new();
    for _ in 0..30 {
        opt.zero_grad();
        let loss = autocast(Precision::MasterWeights, || {
            model.forward(&x).unwrap().cross_entropy(&targets, CrossEntropy::default()).unwrap()
        });
        losses.push(loss.item().unwrap());
        scaler.scale(&loss).unwrap().backward().unwrap();
        assert_eq!(scaler.step(&mut opt).unwrap(), StepOutcome::Applied);
        scaler.update().unwrap();
    }
    assert!(losses[29] < 0.5 * losses[0], "{losses:?}");
    assert_eq!(opt.inner().state().steps, vec![30; 4]);

    let pure = Sequential::new().push(Linear::new(16, 10, &mut rng).unwrap());
    convert_params(&pure.named_parameters(), DType::F16, |_| false).unwrap();
    let mut sgd = Sgd::new(pure.parameters(), SgdConfig { lr: 0.5, ..SgdConfig::default() }).unwrap();
    let mut off = GradScaler::disabled();
    let w0 = pure.parameters()[0].value().to_vec_f32().unwrap();
    let loss = autocast(Precision::PureF16, || {
        pure.forward(&x).unwrap().cross_entropy(&targets, CrossEntropy::default()).unwrap()
    });
    off.scale(&loss).unwrap().backward().unwrap();
    off.step(&mut sgd).unwrap();
    assert_eq!(pure.parameters()[0].dtype(), DType::F16);
    assert_ne!(pure.parameters()[0].value().to_vec_f32().unwrap(), w0);
}
