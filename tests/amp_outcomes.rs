//! Step outcomes, schedules and the collapse diagnosis on DESIGN.md's MNIST
//! MLP (784-512-512-10, ReLU, batch 128, the shipped MNIST): a learning-rate
//! schedule driven by the scaler advances only on applied steps; an
//! overflow injected into the middle layer `fc2` makes the scale collapse,
//! and the typed error names `fc2`'s op and says the loss was non-finite.

use mixprec::amp::scaler::ScalerConfig;
use mixprec::amp::{AmpError, CollapseReason, GradScaler, MasterWeights, Precision, StepOutcome, autocast};
use mixprec::autograd::nn::{Linear, Module, Relu, Sequential};
use mixprec::autograd::optim::schedule::{CosineLr, LrSchedule};
use mixprec::autograd::optim::{Optimizer, Sgd, SgdConfig};
use mixprec::autograd::scan::Phase;
use mixprec::autograd::{CrossEntropy, Var};
use mixprec::data::{BatchConfig, Mnist, Normalize};
use mixprec::tensor::random::Generator;
use mixprec::tensor::{DType, Tensor};

fn mlp(seed: u64) -> Sequential {
    let mut rng = Generator::new(seed);
    Sequential::new()
        .push_named("fc1", Linear::new(784, 512, &mut rng).unwrap())
        .push_named("relu1", Relu)
        .push_named("fc2", Linear::new(512, 512, &mut rng).unwrap())
        .push_named("relu2", Relu)
        .push_named("fc3", Linear::new(512, 10, &mut rng).unwrap())
}

/// The first `n` shuffled training batches as (inputs `[B, 784]`, targets).
fn batches(n: usize, seed: u64) -> Vec<(Var, Vec<usize>)> {
    let mnist = Mnist::shipped().expect("the shipped MNIST (data/mnist or $MIXPREC_DATA_DIR)");
    let mut rng = Generator::new(seed);
    let cfg = BatchConfig::new(128).shuffle(true);
    mnist
        .train
        .batches(&cfg, &mut rng, DType::F32, Normalize::MNIST)
        .unwrap()
        .take(n)
        .map(|b| (Var::new(b.inputs.reshape(&[b.targets.len(), 784]).unwrap()), b.targets))
        .collect()
}

/// Started at 2^24, the scaler skips the first steps (the f16 gradients
/// overflow); the cosine schedule is then indexed by applied steps, so the
/// optimizer sees exactly `schedule.lr(0), lr(1), …` on the steps that
/// change the weights — none is lost to a skipped step.
#[test]
fn the_schedule_advances_only_on_applied_steps() {
    let model = mlp(1);
    let data = batches(60, 1);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.0, momentum: 0.9, ..SgdConfig::default() }).unwrap();
    let mut scaler = GradScaler::new(ScalerConfig { init_scale: 2f32.powi(24), ..ScalerConfig::default() }).unwrap();
    let schedule = CosineLr { base: 0.1, min: 0.001, total: 50 };
    let mut used = Vec::new();
    let mut outcomes = Vec::new();
    for (x, t) in &data {
        opt.zero_grad();
        let loss =
            autocast(Precision::Autocast, || model.forward(x).unwrap().cross_entropy(t, CrossEntropy::default()))
                .unwrap();
        scaler.scale(&loss).unwrap().backward().unwrap();
        let out = scaler.step_scheduled(&mut opt, &schedule).unwrap();
        if out.applied() {
            used.push(opt.lr());
        }
        outcomes.push(out);
        scaler.update().unwrap();
    }
    let skipped = outcomes.iter().filter(|o| !o.applied()).count();
    eprintln!("skipped {skipped} of {} steps; final scale {}", data.len(), scaler.scale_factor());
    assert!(skipped >= 3, "a start at 2^24 overflows f16 for several steps: {skipped}");
    assert!(outcomes[0] != StepOutcome::Applied, "the first step overflows");
    assert_eq!(scaler.skipped_steps() as usize, skipped);
    assert_eq!(scaler.applied_steps() as usize, data.len() - skipped);
    let want: Vec<f64> = (0..used.len()).map(|i| schedule.lr(i)).collect();
    assert_eq!(used, want, "the applied steps used the schedule's learning rates in order");
    for o in &outcomes {
        if let StepOutcome::Skipped { optimizer, found } = o {
            assert_eq!(*optimizer, 0);
            assert!(found.param < model.parameters().len());
        }
    }
}

/// O2 training runs cleanly for 10 steps; then `fc2`'s f16 weights are set
/// to 60000 (an injected overflow: its outputs exceed 65504). Every step
/// from then on skips; the scaler turns autograd's scan on after the first
/// skip, and the floor or the skip limit stops training with an error that
/// names `fc2`'s op, in forward, and a non-finite loss.
#[test]
fn an_overflow_in_a_middle_layer_is_named_when_the_scale_collapses() {
    let data = batches(30, 2);
    for (limits, reason) in [((0.0, 5), CollapseReason::SkipLimit), ((64.0, 0), CollapseReason::ScaleFloor)] {
        let model = mlp(2);
        let sgd = |m: Vec<Var>| Ok(Sgd::new(m, SgdConfig { lr: 0.05, momentum: 0.9, ..SgdConfig::default() })?);
        let mut opt = MasterWeights::new(model.named_parameters(), DType::F16, sgd).unwrap();
        let config = ScalerConfig { init_scale: 1024.0, ..ScalerConfig::default() };
        let mut scaler = GradScaler::new(config.with_limits(limits.0, limits.1)).unwrap();
        let fc2 = model.named_parameters()[2].clone();
        assert_eq!(fc2.0, "fc2.weight");
        let mut err = None;
        for (step, (x, t)) in data.iter().enumerate() {
            if step == 10 {
                let w =
                    Tensor::from_vec(vec![60000.0f32; 512 * 512], &[512, 512]).unwrap().to_dtype(DType::F16).unwrap();
                fc2.1.param().unwrap().set_value(w).unwrap();
            }
            opt.zero_grad();
            let loss = autocast(Precision::MasterWeights, || {
                model.forward(x).unwrap().cross_entropy(t, CrossEntropy::default())
            })
            .unwrap();
            scaler.scale(&loss).unwrap().backward().unwrap();
            let out = scaler.step(&mut opt).unwrap();
            assert_eq!(out.applied(), step < 10, "step {step}: {out:?}");
            if let Err(e) = scaler.update() {
                err = Some((step, e));
                break;
            }
        }
        let (step, err) = err.expect("the collapse stops training");
        let msg = err.to_string();
        eprintln!("{reason:?} at step {step}: {msg}");
        let AmpError::ScaleCollapsed(d) = err else { panic!("not a collapse: {err:?}") };
        assert_eq!(d.reason, reason);
        assert_eq!(d.loss_non_finite, Some(true));
        let op = d.first_op.as_ref().expect("the scan named an op");
        assert_eq!((op.phase, op.scope.as_str()), (Phase::Forward, "fc2"), "{op:?}");
        assert!(op.op.starts_with("linear"), "{op:?}");
        assert!(msg.contains("fc2") && msg.contains("non-finite"), "{msg}");
        match reason {
            CollapseReason::SkipLimit => assert_eq!((step, d.consecutive_skips), (15, 6)),
            CollapseReason::ScaleFloor => assert_eq!((step, d.scale), (14, 32.0)),
        }
        assert_eq!(d.skipped.map(|(o, _)| o), Some(0));
    }
}
