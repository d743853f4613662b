//! Underflow telemetry on DESIGN.md's MNIST MLP (784-512-512-10, batch 128,
//! the shipped MNIST), after 20 steps of O2 training: without a loss scale
//! a share of the activation gradients flushes to zero in f16, at 2^16
//! almost none; the histograms account for every value counted; the
//! sampled mode agrees with the full count; the step's gradients are left
//! untouched.

use mixprec::amp::scaler::ScalerConfig;
use mixprec::amp::{GradScaler, MasterWeights, Precision, autocast, measure_underflow};
use mixprec::autograd::nn::{Linear, Module, Relu, Sequential};
use mixprec::autograd::optim::{Sgd, SgdConfig};
use mixprec::autograd::{CrossEntropy, Var};
use mixprec::data::{BatchConfig, Mnist, Normalize};
use mixprec::tensor::DType;
use mixprec::tensor::random::Generator;

#[test]
fn telemetry_counts_what_the_f16_cast_loses() {
    let mnist = Mnist::shipped().expect("the shipped MNIST (data/mnist or $MIXPREC_DATA_DIR)");
    let mut rng = Generator::new(3);
    let model = Sequential::new()
        .push(Linear::new(784, 512, &mut rng).unwrap())
        .push(Relu)
        .push(Linear::new(512, 512, &mut rng).unwrap())
        .push(Relu)
        .push(Linear::new(512, 10, &mut rng).unwrap());
    let sgd = |m: Vec<Var>| Ok(Sgd::new(m, SgdConfig { lr: 0.05, momentum: 0.9, ..SgdConfig::default() })?);
    let mut opt = MasterWeights::new(model.named_parameters(), DType::F16, sgd).unwrap();
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    let params = model.parameters();
    let n_weights: u64 = params.iter().map(|p| p.numel() as u64).sum();
    let batches = mnist.train.batches(&BatchConfig::new(128).shuffle(true), &mut rng, DType::F32, Normalize::MNIST);
    for (step, b) in batches.unwrap().take(21).enumerate() {
        let x = Var::new(b.inputs.reshape(&[b.targets.len(), 784]).unwrap());
        let forward = || Ok(model.forward(&x)?.cross_entropy(&b.targets, CrossEntropy::default())?);
        opt.zero_grad();
        let loss = autocast(Precision::MasterWeights, forward).unwrap();
        scaler.scale(&loss).unwrap().backward().unwrap();
        if step == 20 {
            let before: Vec<Vec<f32>> = params.iter().map(|p| p.grad().unwrap().to_vec_f32().unwrap()).collect();
            let unscaled = measure_underflow(&params, 1.0, 1, forward).unwrap();
            let scaled = measure_underflow(&params, 65536.0, 1, forward).unwrap();
            let sampled = measure_underflow(&params, 1.0, 16, forward).unwrap();
            let after: Vec<Vec<f32>> = params.iter().map(|p| p.grad().unwrap().to_vec_f32().unwrap()).collect();
            assert_eq!(before, after, "the step's own gradients are untouched");
            let (a0, a16) = (unscaled.activations.zero_fraction(), scaled.activations.zero_fraction());
            let (w0, w16) = (unscaled.weights.zero_fraction(), scaled.weights.zero_fraction());
            eprintln!(
                "activation gradients flushed to zero: {a0:.4} unscaled, {a16:.6} at 2^16 ({} subnormal at 1, {} at 2^16 of {}); weight gradients: {w0:.4} / {w16:.6}; sampled 1/16: {:.4}",
                unscaled.activations.subnormal,
                scaled.activations.subnormal,
                unscaled.activations.nonzero,
                sampled.activations.zero_fraction()
            );
            eprintln!("activation log2 histogram: {:?}", unscaled.activation_log2.buckets().collect::<Vec<_>>());
            assert!(a0 > 0.01, "without scaling some activation gradients flush to zero: {a0}");
            assert!(a16 < a0 / 10.0, "scaling by 2^16 recovers them: {a16} vs {a0}");
            assert!(scaled.activations.subnormal < unscaled.activations.subnormal);
            assert_eq!(unscaled.weights.total, n_weights, "each weight gradient once, through its FP32 cast");
            assert!(w16 <= w0);
            for r in [&unscaled, &scaled] {
                assert_eq!(r.activation_log2.total(), r.activations.total);
                assert_eq!(r.weight_log2.total(), r.weights.total);
                assert_eq!(r.activation_log2, unscaled.activation_log2, "the histogram is of unscaled values");
            }
            // Values below 2^-25 always flush to zero; those in [2^-25, 2^-24) flush or round up to 2^-24.
            let h = &unscaled.activation_log2;
            let (sure, maybe) = (h.below(-25), h.below(-24));
            assert!(sure <= unscaled.activations.flushed_to_zero && unscaled.activations.flushed_to_zero <= maybe);
            assert_eq!(sampled.sample_stride, 16);
            assert!(sampled.activations.total * 14 < unscaled.activations.total);
            assert!((sampled.activations.zero_fraction() - a0).abs() < 0.02 + 0.1 * a0, "sampled ≈ full");
        }
        scaler.step(&mut opt).unwrap();
        scaler.update().unwrap();
    }
}
