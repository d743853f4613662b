//! The paper's first two phenomena, shown by training on real MNIST (the
//! shipped copy): update underflow (pure f16 stalls, FP32 masters track
//! FP32) and gradient underflow (activation gradients below f16's range
//! vanish without loss scaling; scaling recovers them). The third
//! (accumulation) is `crates/amp/tests/accumulation.rs`.
//!
//! Model: MLP 784-128-10, ReLU, cross-entropy, PyTorch's `nn.Linear`
//! initialisation (W, b uniform in ±1/√in) from seeds 1–3; plain SGD
//! (FP32 arithmetic, the new value rounded once to the parameter's dtype),
//! batch 128, shuffled; accuracy on the 10,000 test images.

use std::sync::OnceLock;

use mixprec::amp::scaler::ScalerConfig;
use mixprec::amp::{AmpOptimizer, F16Underflow, GradScaler, MasterWeights, Precision, autocast, convert_params};
use mixprec::autograd::{CrossEntropy, Var, no_grad};
use mixprec::data::{BatchConfig, Mnist, Normalize};
use mixprec::tensor::random::Generator;
use mixprec::tensor::{DType, Tensor};

fn mnist() -> &'static Mnist {
    static M: OnceLock<Mnist> = OnceLock::new();
    M.get_or_init(|| Mnist::shipped().expect("the shipped MNIST (data/mnist or $MIXPREC_DATA_DIR)"))
}

fn test_set() -> &'static (Tensor, Vec<usize>) {
    static T: OnceLock<(Tensor, Vec<usize>)> = OnceLock::new();
    T.get_or_init(|| {
        let b = mnist().test.batch(&(0..10_000).collect::<Vec<_>>(), DType::F32, Normalize::MNIST).unwrap();
        (b.inputs.reshape(&[10_000, 784]).unwrap(), b.targets)
    })
}

/// SGD that also counts, per step, the weights whose FP32 update was
/// nonzero yet left the stored value unchanged (rounded away).
struct CountingSgd {
    params: Vec<Var>,
    lr: f32,
    nonzero_updates: u64,
    rounded_away: u64,
}

impl AmpOptimizer for CountingSgd {
    fn amp_params(&self) -> &[Var] {
        &self.params
    }
    fn amp_step(&mut self) -> mixprec::amp::Result<()> {
        for p in &self.params {
            let Some(g) = p.grad() else { continue };
            let g = g.to_vec_f32()?;
            let lr = self.lr;
            let (mut nz, mut same) = (0u64, 0u64);
            p.param().unwrap().update(|w, _| -> mixprec::amp::Result<()> {
                let old = w.to_vec_f32()?;
                let new: Vec<f32> = old.iter().zip(&g).map(|(w, g)| w - lr * g).collect();
                let t = Tensor::from_vec(new, w.shape())?.to_dtype(w.dtype())?;
                for ((o, n), g) in old.iter().zip(t.to_vec_f32()?).zip(&g) {
                    if lr * g != 0.0 {
                        nz += 1;
                        same += u64::from(*o == n);
                    }
                }
                w.copy_(&t)?;
                Ok(())
            })?;
            self.nonzero_updates += nz;
            self.rounded_away += same;
        }
        Ok(())
    }
}

struct Mlp {
    params: Vec<(String, Var)>,
}

impl Mlp {
    fn new(seed: u64) -> Mlp {
        let mut rng = Generator::new(seed);
        let mut uniform = |shape: &[usize], fan_in: usize| {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let mut v = vec![0.0f32; shape.iter().product()];
            rng.fill_uniform_f32(&mut v, -bound, bound);
            Var::parameter(Tensor::from_vec(v, shape).unwrap())
        };
        let params = vec![
            ("fc1.weight".to_string(), uniform(&[128, 784], 784)),
            ("fc1.bias".to_string(), uniform(&[128], 784)),
            ("fc2.weight".to_string(), uniform(&[10, 128], 128)),
            ("fc2.bias".to_string(), uniform(&[10], 128)),
        ];
        Mlp { params }
    }

    fn p(&self, i: usize) -> &Var {
        &self.params[i].1
    }

    fn hidden(&self, x: &Var) -> Var {
        x.linear(self.p(0), Some(self.p(1))).unwrap().relu().unwrap()
    }

    fn logits(&self, h: &Var) -> Var {
        h.linear(self.p(2), Some(self.p(3))).unwrap()
    }

    fn accuracy(&self, precision: Precision) -> f64 {
        let (x, y) = test_set();
        let pred = no_grad(|| autocast(precision, || self.logits(&self.hidden(&Var::new(x.clone()))).value()));
        let pred = pred.to_dtype(DType::F32).unwrap().argmax_indices(-1).unwrap();
        pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scaling {
    None,
    Static(f32),
    Dynamic,
}

#[derive(Debug, Default)]
struct Run {
    /// Mean training loss over the last 50 steps (of the unscaled loss).
    final_loss: f64,
    accuracy: f64,
    nonzero_updates: u64,
    rounded_away: u64,
    skipped: u64,
    /// Activation gradients (dL/dlogits, dL/dh) of the FP32 model on the
    /// last batch, times the loss scale in use, cast to f16.
    act_grads: F16Underflow,
}

/// Trains `steps` steps in `precision`; the loss is `CE / loss_div`
/// (`loss_div` > 1 stands for a loss normalised over an accumulation
/// window or a large batch: it shrinks every gradient), with the learning
/// rate multiplied by `loss_div` so the FP32 update is unchanged.
fn train(precision: Precision, scaling: Scaling, seed: u64, steps: usize, lr: f32, loss_div: f32) -> Run {
    let model = Mlp::new(seed);
    let mut scaler = match scaling {
        Scaling::None => GradScaler::disabled(),
        Scaling::Static(s) => GradScaler::new(ScalerConfig::fixed(s)).unwrap(),
        Scaling::Dynamic => GradScaler::new(ScalerConfig::default()).unwrap(),
    };
    let lr = lr * loss_div;
    let params: Vec<Var> = model.params.iter().map(|(_, v)| v.clone()).collect();
    let sgd = |params| CountingSgd { params, lr, nonzero_updates: 0, rounded_away: 0 };
    enum Opt {
        Plain(CountingSgd),
        Master(MasterWeights<CountingSgd>),
    }
    let mut opt = if precision.has_master_weights() {
        Opt::Master(MasterWeights::new(model.params.clone(), precision.low_dtype().unwrap(), |m| Ok(sgd(m))).unwrap())
    } else {
        if precision == Precision::PureF16 {
            convert_params(&model.params, DType::F16, |_| false).unwrap();
        }
        Opt::Plain(sgd(params.clone()))
    };
    let mut rng = Generator::new(seed ^ 0x5eed);
    let mut losses = Vec::new();
    let mut last_batch = None;
    'outer: loop {
        for batch in mnist().train.batches(&BatchConfig::new(128), &mut rng, DType::F32, Normalize::MNIST).unwrap() {
            if losses.len() == steps {
                break 'outer;
            }
            let x = Var::new(batch.inputs.reshape(&[batch.targets.len(), 784]).unwrap());
            params.iter().for_each(Var::zero_grad);
            let loss = autocast(precision, || {
                let logits = model.logits(&model.hidden(&x));
                logits
                    .cross_entropy(&batch.targets, CrossEntropy::default())
                    .unwrap()
                    .div_scalar(loss_div as f64)
                    .unwrap()
            });
            losses.push(loss.item().unwrap() * loss_div as f64);
            scaler.scale(&loss).unwrap().backward().unwrap();
            match &mut opt {
                Opt::Plain(o) => scaler.step(o).unwrap(),
                Opt::Master(o) => scaler.step(o).unwrap(),
            };
            scaler.update().unwrap();
            last_batch = Some((x, batch.targets));
        }
    }
    let (x, t) = last_batch.unwrap();
    let (nonzero_updates, rounded_away) = match &opt {
        Opt::Plain(o) => (o.nonzero_updates, o.rounded_away),
        Opt::Master(o) => (o.inner().nonzero_updates, o.inner().rounded_away),
    };
    Run {
        final_loss: losses[losses.len().saturating_sub(50)..].iter().sum::<f64>() / losses.len().min(50) as f64,
        accuracy: model.accuracy(precision),
        nonzero_updates,
        rounded_away,
        skipped: scaler.skipped_steps(),
        act_grads: activation_grads(&model, &x, &t, loss_div, scaler.scale_factor()),
    }
}

/// dL/dlogits and dL/dh of the model computed in FP32 (the model's
/// parameters widened), each value times `scale`, counted after an f16 cast.
fn activation_grads(model: &Mlp, x: &Var, t: &[usize], loss_div: f32, scale: f32) -> F16Underflow {
    let f32p = |i: usize| Var::new(model.p(i).value().to_dtype(DType::F32).unwrap());
    let h = Var::parameter(x.linear(&f32p(0), Some(&f32p(1))).unwrap().relu().unwrap().value());
    let z = Var::parameter(h.linear(&f32p(2), Some(&f32p(3))).unwrap().value());
    let zl = z.cross_entropy(t, CrossEntropy::default()).unwrap().div_scalar(loss_div as f64).unwrap();
    let hl = h
        .linear(&f32p(2), Some(&f32p(3)))
        .unwrap()
        .cross_entropy(t, CrossEntropy::default())
        .unwrap()
        .div_scalar(loss_div as f64)
        .unwrap();
    zl.backward().unwrap();
    hl.backward().unwrap();
    let mut c = F16Underflow::count_tensor(&z.grad().unwrap(), scale).unwrap();
    c.add(F16Underflow::count_tensor(&h.grad().unwrap(), scale).unwrap());
    c
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1).max(1) as f64;
    (m, var.sqrt())
}

fn paired_gap(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    mean_std(&d)
}

const SEEDS: [u64; 3] = [1, 2, 3];

/// Update underflow (the paper's §3.1): with lr 0.001 most SGD updates of
/// this MLP are below half an f16 ulp of their weight. Pure f16 rounds them
/// away and trains worse; FP32 masters keep them and track FP32.
#[test]
fn update_underflow_stalls_pure_f16_and_master_weights_track_fp32() {
    let (steps, lr) = (300, 0.001);
    let runs = |p, s| -> Vec<Run> { SEEDS.iter().map(|&seed| train(p, s, seed, steps, lr, 1.0)).collect() };
    let f32_runs = runs(Precision::F32, Scaling::None);
    let pure = runs(Precision::PureF16, Scaling::None);
    let master = runs(Precision::MasterWeights, Scaling::Dynamic);
    let acc = |r: &[Run]| r.iter().map(|r| r.accuracy).collect::<Vec<_>>();
    let loss = |r: &[Run]| r.iter().map(|r| r.final_loss).collect::<Vec<_>>();
    for (i, r) in f32_runs.iter().enumerate() {
        assert!(r.final_loss < 2.0, "seed {}: FP32 lowers the loss from ln 10 = 2.30: {}", SEEDS[i], r.final_loss);
    }
    for r in &pure {
        let frac = r.rounded_away as f64 / r.nonzero_updates as f64;
        assert!(frac > 0.5, "pure f16 rounds most nonzero updates away: {frac}");
    }
    for r in &master {
        let frac = r.rounded_away as f64 / r.nonzero_updates as f64;
        assert!(frac < 0.01, "FP32 masters keep the updates: {frac} rounded away");
    }
    let (acc_gap, acc_sd) = paired_gap(&acc(&f32_runs), &acc(&pure));
    let (loss_gap, loss_sd) = paired_gap(&loss(&pure), &loss(&f32_runs));
    eprintln!(
        "update underflow: FP32 acc {:?}, pure f16 {:?}, master weights {:?}; gap {acc_gap:.4} ± {acc_sd:.4} (acc), {loss_gap:.4} ± {loss_sd:.4} (loss); pure f16 rounded away {:?}",
        acc(&f32_runs),
        acc(&pure),
        acc(&master),
        pure.iter().map(|r| r.rounded_away as f64 / r.nonzero_updates as f64).collect::<Vec<_>>()
    );
    assert!(
        acc_gap > 2.0 * acc_sd && acc_gap > 0.0,
        "pure f16's accuracy gap {acc_gap} must exceed 2σ = {}",
        2.0 * acc_sd
    );
    assert!(
        loss_gap > 2.0 * loss_sd && loss_gap > 0.0,
        "pure f16's loss gap {loss_gap} must exceed 2σ = {}",
        2.0 * loss_sd
    );
    for (m, f) in master.iter().zip(&f32_runs) {
        assert!((m.accuracy - f.accuracy).abs() <= 0.003, "master weights {} vs FP32 {}", m.accuracy, f.accuracy);
    }
}

/// Gradient underflow (the paper's §3.2): the loss is normalised by 2^15
/// (as a mean over a long accumulation window would be; the learning rate
/// is multiplied back), so the FP32 activation gradients fall mostly below
/// f16's smallest subnormal 2^-24. O1 without scaling loses them and
/// trains worse; a static scale of 2^16 or the dynamic scaler recovers
/// them and matches FP32.
#[test]
fn gradient_underflow_without_loss_scaling_and_its_recovery() {
    let (steps, lr, div) = (300, 0.01, 32768.0);
    let runs = |p, s| -> Vec<Run> { SEEDS.iter().map(|&seed| train(p, s, seed, steps, lr, div)).collect() };
    let f32_runs = runs(Precision::F32, Scaling::None);
    let unscaled = runs(Precision::Autocast, Scaling::None);
    let fixed = runs(Precision::Autocast, Scaling::Static(65536.0));
    let dynamic = runs(Precision::Autocast, Scaling::Dynamic);
    let acc = |r: &[Run]| r.iter().map(|r| r.accuracy).collect::<Vec<_>>();
    let zf = |r: &[Run]| r.iter().map(|r| r.act_grads.zero_fraction()).collect::<Vec<_>>();
    eprintln!(
        "gradient underflow: acc FP32 {:?} unscaled {:?} static {:?} dynamic {:?}; flushed-to-zero fraction unscaled {:?} static {:?} dynamic {:?}",
        acc(&f32_runs),
        acc(&unscaled),
        acc(&fixed),
        acc(&dynamic),
        zf(&unscaled),
        zf(&fixed),
        zf(&dynamic)
    );
    for r in &unscaled {
        assert!(r.act_grads.zero_fraction() > 0.5, "unscaled: most activation gradients flush to zero in f16");
    }
    for r in fixed.iter().chain(&dynamic) {
        assert!(r.act_grads.zero_fraction() < 0.01, "scaled: the fraction drops: {:?}", r.act_grads);
    }
    let (gap, sd) = paired_gap(&acc(&f32_runs), &acc(&unscaled));
    assert!(gap > 2.0 * sd && gap > 0.0, "unscaled accuracy gap {gap} must exceed 2σ = {}", 2.0 * sd);
    for runs in [&fixed, &dynamic] {
        for (s, f) in runs.iter().zip(&f32_runs) {
            assert!((s.accuracy - f.accuracy).abs() <= 0.003, "scaled {} vs FP32 {}", s.accuracy, f.accuracy);
        }
    }
    assert!(
        dynamic.iter().all(|r| r.skipped <= 5),
        "the dynamic scaler settles: {:?}",
        dynamic.iter().map(|r| r.skipped).collect::<Vec<_>>()
    );
}

/// Every mode but the pure-f16 baseline reaches FP32's accuracy within 0.5
/// points after 300 steps (lr 0.01). The bf16 modes need no scaler even
/// with the loss normalised by 2^15, which ruins unscaled f16 training in
/// the test above: bf16 has FP32's exponent range (smallest normal
/// 2^-126), so those gradients survive its cast (measured here by the
/// accuracy the unscaled bf16 runs reach).
#[test]
fn every_mixed_mode_reaches_fp32_accuracy() {
    let (steps, lr) = (300, 0.01);
    let base = train(Precision::F32, Scaling::None, 1, steps, lr, 1.0);
    for (p, s) in [
        (Precision::Autocast, Scaling::Dynamic),
        (Precision::MasterWeights, Scaling::Dynamic),
        (Precision::AutocastBf16, Scaling::None),
        (Precision::MasterWeightsBf16, Scaling::None),
    ] {
        let r = train(p, s, 1, steps, lr, 1.0);
        eprintln!("{p}: accuracy {} (FP32 {})", r.accuracy, base.accuracy);
        assert!((r.accuracy - base.accuracy).abs() <= 0.005, "{p}: {} vs FP32 {}", r.accuracy, base.accuracy);
    }
    let base = train(Precision::F32, Scaling::None, 1, steps, lr, 32768.0);
    for p in [Precision::AutocastBf16, Precision::MasterWeightsBf16] {
        let r = train(p, Scaling::None, 1, steps, lr, 32768.0);
        eprintln!("{p}, loss / 2^15, no scaler: accuracy {} (FP32 {})", r.accuracy, base.accuracy);
        assert!(
            (r.accuracy - base.accuracy).abs() <= 0.005,
            "{p} without a scaler: {} vs FP32 {}",
            r.accuracy,
            base.accuracy
        );
    }
}
