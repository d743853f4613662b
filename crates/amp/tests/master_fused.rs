//! The fused master-weights update (`GradScaler::step` alone: the working
//! f16/bf16 gradients checked in place, unscaled inside the optimizer's
//! update, the working copies written in the same pass) against the unfused
//! one (`GradScaler::unscale` first: FP32 master gradients, update, then
//! the copy-out): bit-identical weights, masters and optimizer state after
//! every step, the same outcomes, skipped steps included, with SGD, Adam and
//! AdamW, f16 with a dynamic scaler and bf16 without one. A skipped fused
//! step touches neither the weights nor the optimizer's state.

use mixprec_amp::checkpoint::{CheckpointOptimizer, OptimizerState};
use mixprec_amp::scaler::ScalerConfig;
use mixprec_amp::{
    AmpOptimizer, GradScaler, MasterWeights, NonFinite, NonFiniteKind, Precision, StepOutcome, autocast,
};
use mixprec_autograd::nn::{LayerNorm, Linear, Module, Relu, Sequential};
use mixprec_autograd::optim::{Adam, AdamConfig, AdamW, Sgd, SgdConfig};
use mixprec_autograd::tensor::random::Generator;
use mixprec_autograd::tensor::{DType, Tensor};
use mixprec_autograd::{CrossEntropy, Var};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Sgd,
    Adam,
    AdamW,
}

trait Opt: AmpOptimizer + CheckpointOptimizer {}
impl<T: AmpOptimizer + CheckpointOptimizer> Opt for T {}

fn build(kind: Kind) -> impl FnOnce(Vec<Var>) -> mixprec_amp::Result<Box<dyn Opt>> {
    move |m| {
        Ok(match kind {
            Kind::Sgd => {
                let c =
                    SgdConfig { lr: 0.05, momentum: 0.9, weight_decay: 1e-4, nesterov: true, ..SgdConfig::default() };
                Box::new(Sgd::new(m, c)?) as Box<dyn Opt>
            }
            Kind::Adam => Box::new(Adam::new(m, AdamConfig { lr: 1e-2, weight_decay: 1e-4, ..AdamConfig::adam() })?),
            Kind::AdamW => Box::new(AdamW::new(m, AdamConfig { lr: 1e-2, ..AdamConfig::adamw() })?),
        })
    }
}

impl AmpOptimizer for Box<dyn Opt> {
    fn amp_params(&self) -> &[Var] {
        (**self).amp_params()
    }
    fn amp_step(&mut self) -> mixprec_amp::Result<()> {
        (**self).amp_step()
    }
    fn amp_set_lr(&mut self, lr: f64) -> mixprec_amp::Result<()> {
        (**self).amp_set_lr(lr)
    }
    fn amp_steps_scaled(&self) -> bool {
        (**self).amp_steps_scaled()
    }
    fn amp_step_param_scaled(
        &mut self,
        i: usize,
        grad: mixprec_autograd::tensor::kernels::slice::Src<'_>,
        inv_scale: f32,
        copy: Option<mixprec_autograd::tensor::kernels::slice::Dst<'_>>,
    ) -> mixprec_amp::Result<()> {
        (**self).amp_step_param_scaled(i, grad, inv_scale, copy)
    }
}

struct Model {
    net: Sequential,
    mw: MasterWeights<Box<dyn Opt>>,
    x: Var,
    targets: Vec<usize>,
}

impl Model {
    /// A small MLP with a layer norm (an FP32 pair beside the low ones).
    fn new(precision: Precision, kind: Kind) -> Model {
        let mut rng = Generator::new(3);
        let net = Sequential::new()
            .push(Linear::new(24, 40, &mut rng).unwrap())
            .push(Relu)
            .push(LayerNorm::new(&[40]).unwrap())
            .push(Linear::new(40, 7, &mut rng).unwrap());
        let mw = MasterWeights::new(net.named_parameters(), precision.low_dtype().unwrap(), build(kind)).unwrap();
        let mut x = vec![0.0f32; 16 * 24];
        rng.fill_normal_f32(&mut x, 0.0, 1.5);
        let x = Var::new(Tensor::from_vec(x, &[16, 24]).unwrap());
        Model { net, mw, x, targets: (0..16).map(|i| (i * 5) % 7).collect() }
    }

    fn backward(&self, precision: Precision, scaler: &GradScaler) {
        self.mw.zero_grad();
        let loss = autocast(precision, || {
            self.net.forward(&self.x).unwrap().cross_entropy(&self.targets, CrossEntropy::default()).unwrap()
        });
        scaler.scale(&loss).unwrap().backward().unwrap();
    }

    /// Bits of every working copy and master, and the optimizer's state.
    fn snapshot(&self) -> (Vec<Vec<u64>>, OptimizerState) {
        let bits = |v: &Var| v.value().to_vec_f64().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        let vals = self.mw.working().iter().chain(self.mw.masters()).map(bits).collect();
        (vals, self.mw.inner().export_state())
    }

    /// Whether any low-precision master holds an FP32 gradient.
    fn master_grads(&self) -> bool {
        self.mw.masters().iter().zip(self.mw.working()).any(|(m, w)| w.dtype() != DType::F32 && m.grad().is_some())
    }
}

/// Trains the fused and the unfused model side by side; returns the outcomes.
fn compare(precision: Precision, kind: Kind, init_scale: Option<f32>, steps: usize) -> Vec<StepOutcome> {
    let (mut a, mut b) = (Model::new(precision, kind), Model::new(precision, kind));
    let scaler = || match init_scale {
        Some(s) => {
            GradScaler::new(ScalerConfig { init_scale: s, growth_interval: 3, ..ScalerConfig::default() }).unwrap()
        }
        None => GradScaler::disabled(),
    };
    let (mut sa, mut sb) = (scaler(), scaler());
    let mut outcomes = Vec::new();
    for step in 0..steps {
        let before = a.snapshot();
        a.backward(precision, &sa);
        b.backward(precision, &sb);
        let fused = sa.step(&mut a.mw).unwrap();
        assert!(!a.master_grads(), "{kind:?} {precision:?} step {step}: the fused step wrote FP32 master gradients");
        sb.unscale(&mut b.mw).unwrap();
        assert!(init_scale.is_none() || b.master_grads(), "the unfused step unscales into the masters");
        let unfused = sb.step(&mut b.mw).unwrap();
        sa.update().unwrap();
        sb.update().unwrap();
        assert_eq!(fused, unfused, "{kind:?} {precision:?} step {step}");
        let after = a.snapshot();
        assert!(after == b.snapshot(), "{kind:?} {precision:?} step {step}: fused and unfused differ");
        if fused.applied() {
            assert!(after.0 != before.0, "an applied step moves the weights");
        } else {
            assert!(after == before, "a skipped step touches neither weights nor optimizer state");
        }
        assert_eq!(sa.scale_factor(), sb.scale_factor());
        outcomes.push(fused);
    }
    outcomes
}

#[test]
fn fused_f16_steps_are_bit_identical_to_unscale_then_step() {
    for kind in [Kind::Sgd, Kind::Adam, Kind::AdamW] {
        // 2^40 overflows f16 gradients: the first steps skip and the scale backs off.
        let outcomes = compare(Precision::MasterWeights, kind, Some(2f32.powi(40)), 40);
        let skipped = outcomes.iter().filter(|o| !o.applied()).count();
        assert!((2..30).contains(&skipped), "{kind:?}: {skipped} skipped of 40 (both kinds of step must occur)");
    }
}

#[test]
fn fused_bf16_steps_without_a_scaler_match_the_unfused_ones() {
    for kind in [Kind::Sgd, Kind::Adam, Kind::AdamW] {
        let precision = Precision::MasterWeightsBf16;
        let (a, b) = (Model::new(precision, kind), Model::new(precision, kind));
        let (mut a, mut b) = (a, b);
        let off = GradScaler::disabled();
        for step in 0..12 {
            a.backward(precision, &off);
            b.backward(precision, &off);
            // Fused: MasterWeights::step moves nothing into the masters.
            assert_eq!(a.mw.step().unwrap(), None);
            assert!(!a.master_grads());
            // Unfused: the gradients moved into the masters first.
            assert_eq!(b.mw.unscale_grads(1.0).unwrap(), None);
            b.mw.step().unwrap();
            assert!(a.snapshot() == b.snapshot(), "{kind:?} step {step}: fused and unfused bf16 differ");
        }
    }
}

/// A NaN or Inf placed in one working gradient: the fused check finds the
/// same parameter and kind as unscaling does, and the step is skipped.
#[test]
fn fused_check_reports_what_unscaling_reports() {
    for (bad, kind) in [(f32::NAN, NonFiniteKind::NaN), (f32::INFINITY, NonFiniteKind::Inf)] {
        let precision = Precision::MasterWeights;
        let (mut a, mut b) = (Model::new(precision, Kind::Sgd), Model::new(precision, Kind::Sgd));
        let (mut sa, mut sb) =
            (GradScaler::new(ScalerConfig::default()).unwrap(), GradScaler::new(ScalerConfig::default()).unwrap());
        let before = a.snapshot();
        for (m, s) in [(&mut a, &sa), (&mut b, &sb)] {
            m.backward(precision, s);
            let w = &m.mw.working()[2];
            let mut g = w.grad().unwrap().to_vec_f32().unwrap();
            g[3] = bad;
            let g = Tensor::from_vec(g, w.shape()).unwrap().to_dtype(w.dtype()).unwrap();
            w.param().unwrap().set_grad(Some(g)).unwrap();
        }
        let fused = sa.step(&mut a.mw).unwrap();
        let found = sb.unscale(&mut b.mw).unwrap();
        assert_eq!(found, Some(NonFinite { param: 2, kind }));
        assert_eq!(fused, StepOutcome::Skipped { optimizer: 0, found: NonFinite { param: 2, kind } });
        assert_eq!(sb.step(&mut b.mw).unwrap(), fused);
        assert!(a.snapshot() == before, "the skipped fused step changed weights or state");
    }
}
