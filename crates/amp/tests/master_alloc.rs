//! Once warmed up, the master-weights part of a training step — unscale
//! (f16/bf16 gradients into the FP32 masters' gradient buffers, with the
//! Inf/NaN check), the optimizer step over the masters, the copy-out to the
//! working copies, the scaler's bookkeeping and `zero_grad` — allocates
//! nothing (counted by a global allocator on the thread of the one-thread
//! pool the test runs in; this binary holds only this test). The optimizer is a plain in-place SGD (amp's path alone), then
//! the library's `Sgd` (momentum, Nesterov, weight decay), `Adam` and
//! `AdamW`, each also through the fused update (`GradScaler::step` alone);
//! the library optimizers are also counted alone on f16 and bf16
//! parameters (gradients widened and values rounded through their scratch).

use mixprec_amp::scaler::ScalerConfig;
use mixprec_amp::{AmpOptimizer, GradScaler, MasterWeights, Precision, StepOutcome, autocast};
use mixprec_autograd::nn::{LayerNorm, Linear, Module, Relu, Sequential};
use mixprec_autograd::optim::{Adam, AdamConfig, AdamW, Optimizer, Sgd, SgdConfig};
use mixprec_autograd::tensor::random::Generator;
use mixprec_autograd::tensor::{DType, Tensor};
use mixprec_autograd::{CrossEntropy, Var};
use mixprec_count_alloc::{Counting, allocations, count_this_thread};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `w ← w − lr·g` in place on FP32 parameters (allocation-free).
struct InPlaceSgd {
    params: Vec<Var>,
    lr: f32,
}

impl AmpOptimizer for InPlaceSgd {
    fn amp_params(&self) -> &[Var] {
        &self.params
    }
    fn amp_step(&mut self) -> mixprec_amp::Result<()> {
        for p in &self.params {
            p.param().unwrap().update(|w, g| {
                let Some(g) = g.and_then(|g| g.as_slice::<f32>()) else { return };
                for (w, g) in w.data_mut::<f32>().unwrap().iter_mut().zip(g) {
                    *w -= self.lr * g;
                }
            });
        }
        Ok(())
    }
}

/// Builds the optimizer over the masters.
type Build<O> = fn(Vec<Var>) -> mixprec_amp::Result<O>;

fn in_place(params: Vec<Var>) -> mixprec_amp::Result<InPlaceSgd> {
    Ok(InPlaceSgd { params, lr: 0.05 })
}

fn sgd(params: Vec<Var>) -> mixprec_amp::Result<Sgd> {
    let c = SgdConfig { lr: 0.05, momentum: 0.9, weight_decay: 1e-4, nesterov: true, ..SgdConfig::default() };
    Ok(Sgd::new(params, c)?)
}

fn adam(params: Vec<Var>) -> mixprec_amp::Result<Adam> {
    Ok(Adam::new(params, AdamConfig { weight_decay: 1e-4, ..AdamConfig::adam() })?)
}

fn adamw(params: Vec<Var>) -> mixprec_amp::Result<AdamW> {
    Ok(AdamW::new(params, AdamConfig::adamw())?)
}

/// Trains `steps` steps of a small MLP with a layer norm (an FP32 pair
/// beside the low-precision ones) in `precision` with the optimizer
/// `build` makes; returns the allocations of the master-weights part of
/// each step.
fn run<O: AmpOptimizer>(precision: Precision, scaler: GradScaler, steps: usize, build: Build<O>) -> Vec<usize> {
    run_with(precision, scaler, steps, build, true)
}

/// [`run`], with `unscale` false: `GradScaler::step` alone (the fused
/// update for the library optimizers: no FP32 master gradients).
fn run_with<O: AmpOptimizer>(
    precision: Precision,
    mut scaler: GradScaler,
    steps: usize,
    build: Build<O>,
    unscale: bool,
) -> Vec<usize> {
    let mut rng = Generator::new(11);
    let model = Sequential::new()
        .push(Linear::new(64, 96, &mut rng).unwrap())
        .push(Relu)
        .push(LayerNorm::new(&[96]).unwrap())
        .push(Linear::new(96, 10, &mut rng).unwrap());
    let mut mw = MasterWeights::new(model.named_parameters(), precision.low_dtype().unwrap(), build).unwrap();
    let mut x = vec![0.0f32; 32 * 64];
    rng.fill_normal_f32(&mut x, 0.0, 1.0);
    let x = Var::new(Tensor::from_vec(x, &[32, 64]).unwrap());
    let targets: Vec<usize> = (0..32).map(|i| i % 10).collect();
    let mut counts = Vec::new();
    for _ in 0..steps {
        let loss = autocast(precision, || {
            model.forward(&x).unwrap().cross_entropy(&targets, CrossEntropy::default()).unwrap()
        });
        scaler.scale(&loss).unwrap().backward().unwrap();
        drop(loss);
        let mut outcome = None;
        counts.push(allocations(|| {
            if unscale {
                scaler.unscale(&mut mw).unwrap();
            }
            outcome = Some(scaler.step(&mut mw).unwrap());
            scaler.update().unwrap();
            mw.zero_grad();
        }));
        assert_eq!(outcome, Some(StepOutcome::Applied));
    }
    assert_eq!(model.named_parameters()[0].1.dtype(), precision.low_dtype().unwrap());
    counts
}

fn assert_warm_free(name: &str, c: &[usize]) {
    assert!(c[0] > 0, "{name}: the first step makes the buffers (a check that counting works)");
    assert!(c[2..].iter().all(|&n| n == 0), "{name}: steady-state steps allocate: {c:?}");
}

/// One test, run in a pool of one thread whose allocations are all counted
/// (the steps' parallel chunks run there); the test harness's own thread is
/// not counted: it allocates when it reports a slow test, as on a loaded
/// machine. One thread, because with two the split of chunks between the
/// threads differs from run to run, and a thread's first chunk of a kind
/// (its thread-local scratch) may come at any step: under load in a CI run
/// the fused Adam step allocated once at step 4.
#[test]
fn warm_steps_allocate_nothing() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).start_handler(|_| count_this_thread()).build().unwrap();
    pool.install(|| {
        the_master_weights_step_allocates_nothing_once_warm();
        the_master_weights_step_with_the_library_optimizers_allocates_nothing_once_warm();
        the_library_optimizers_allocate_nothing_once_warm_on_f16_and_bf16_parameters();
    });
}

fn the_master_weights_step_allocates_nothing_once_warm() {
    let f16 = run(Precision::MasterWeights, GradScaler::new(ScalerConfig::default()).unwrap(), 8, in_place);
    let stats = run(Precision::MasterWeights, GradScaler::new(ScalerConfig::statistics(1024.0)).unwrap(), 8, in_place);
    let bf16 = run(Precision::MasterWeightsBf16, GradScaler::disabled(), 8, in_place);
    eprintln!("allocations per step: f16 {f16:?}, f16 statistics-driven {stats:?}, bf16 {bf16:?}");
    for (name, c) in [("f16", &f16), ("statistics", &stats), ("bf16", &bf16)] {
        assert_warm_free(name, c);
    }
}

fn the_master_weights_step_with_the_library_optimizers_allocates_nothing_once_warm() {
    let scaler = || GradScaler::new(ScalerConfig::default()).unwrap();
    let fused_sgd = run_with(Precision::MasterWeights, scaler(), 8, sgd, false);
    let fused_adam = run_with(Precision::MasterWeights, scaler(), 8, adam, false);
    let fused_adamw = run_with(Precision::MasterWeightsBf16, GradScaler::disabled(), 8, adamw, false);
    let sgd = run(Precision::MasterWeights, scaler(), 8, sgd);
    let adam = run(Precision::MasterWeights, scaler(), 8, adam);
    let adamw = run(Precision::MasterWeightsBf16, GradScaler::disabled(), 8, adamw);
    eprintln!("allocations per step: Sgd {sgd:?}, Adam {adam:?}, AdamW (bf16) {adamw:?}");
    eprintln!("fused: Sgd {fused_sgd:?}, Adam {fused_adam:?}, AdamW (bf16) {fused_adamw:?}");
    for (name, c) in [
        ("Sgd", &sgd),
        ("Adam", &adam),
        ("AdamW", &adamw),
        ("fused Sgd", &fused_sgd),
        ("fused Adam", &fused_adam),
        ("fused AdamW", &fused_adamw),
    ] {
        assert_warm_free(name, c);
    }
}

/// Steps `opt` over low-precision parameters whose gradients stay set;
/// returns the allocations of each step.
fn steps_alone(opt: &mut dyn Optimizer, steps: usize) -> Vec<usize> {
    (0..steps).map(|_| allocations(|| opt.step().unwrap())).collect()
}

fn the_library_optimizers_allocate_nothing_once_warm_on_f16_and_bf16_parameters() {
    let mut rng = Generator::new(5);
    let params = |dtype: DType, rng: &mut Generator| -> Vec<Var> {
        [(96usize, 64usize), (10, 96), (96, 1)]
            .iter()
            .map(|&(r, c)| {
                let mut v = vec![0.0f32; r * c];
                rng.fill_normal_f32(&mut v, 0.0, 0.1);
                let t = Tensor::from_vec(v.clone(), &[r, c]).unwrap().to_dtype(dtype).unwrap();
                let p = Var::parameter(t);
                let g =
                    Tensor::from_vec(v.iter().map(|x| x * 0.5).collect(), &[r, c]).unwrap().to_dtype(dtype).unwrap();
                p.param().unwrap().set_grad(Some(g)).unwrap();
                p
            })
            .collect()
    };
    for dtype in [DType::F16, DType::BF16] {
        let mut opts: Vec<(&str, Box<dyn Optimizer>)> = vec![
            ("Sgd", Box::new(sgd(params(dtype, &mut rng)).unwrap())),
            ("Adam", Box::new(adam(params(dtype, &mut rng)).unwrap())),
            ("AdamW", Box::new(adamw(params(dtype, &mut rng)).unwrap())),
        ];
        for (name, opt) in &mut opts {
            let c = steps_alone(opt.as_mut(), 6);
            eprintln!("allocations per step, {name} on {dtype}: {c:?}");
            assert_warm_free(&format!("{name} ({dtype})"), &c);
        }
    }
}
