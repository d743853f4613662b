//! Once warmed up, the master-weights part of a training step — unscale
//! (f16/bf16 gradients into the FP32 masters' gradient buffers, with the
//! Inf/NaN check), the copy-out to the working copies, the scaler's
//! bookkeeping and `zero_grad` — allocates nothing (counted by a global
//! allocator; this binary holds only this test). The optimizer over the
//! masters is a plain in-place SGD here, so the count is of amp's path alone
//! (the library optimizers are autograd's to keep allocation-free).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mixprec_amp::scaler::ScalerConfig;
use mixprec_amp::{AmpOptimizer, GradScaler, MasterWeights, Precision, StepOutcome, autocast};
use mixprec_autograd::nn::{LayerNorm, Linear, Module, Relu, Sequential};
use mixprec_autograd::tensor::Tensor;
use mixprec_autograd::tensor::random::Generator;
use mixprec_autograd::{CrossEntropy, Var};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator and only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` (on any thread).
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    f();
    COUNTING.store(false, Ordering::Relaxed);
    ALLOCS.load(Ordering::Relaxed) - before
}

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

/// Trains `steps` steps of a small MLP with a layer norm (an FP32 pair
/// beside the low-precision ones) in `precision`; returns the allocations
/// of the master-weights part of each step.
fn run(precision: Precision, mut scaler: GradScaler, steps: usize) -> Vec<usize> {
    let mut rng = Generator::new(11);
    let model = Sequential::new()
        .push(Linear::new(64, 96, &mut rng).unwrap())
        .push(Relu)
        .push(LayerNorm::new(&[96]).unwrap())
        .push(Linear::new(96, 10, &mut rng).unwrap());
    let sgd = |params: Vec<Var>| Ok(InPlaceSgd { params, lr: 0.05 });
    let mut mw = MasterWeights::new(model.named_parameters(), precision.low_dtype().unwrap(), sgd).unwrap();
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
            scaler.unscale(&mut mw).unwrap();
            outcome = Some(scaler.step(&mut mw).unwrap());
            scaler.update().unwrap();
            mw.zero_grad();
        }));
        assert_eq!(outcome, Some(StepOutcome::Applied));
    }
    assert_eq!(model.named_parameters()[0].1.dtype(), precision.low_dtype().unwrap());
    counts
}

#[test]
fn the_master_weights_step_allocates_nothing_once_warm() {
    let f16 = run(Precision::MasterWeights, GradScaler::new(ScalerConfig::default()).unwrap(), 8);
    let stats = run(Precision::MasterWeights, GradScaler::new(ScalerConfig::statistics(1024.0)).unwrap(), 8);
    let bf16 = run(Precision::MasterWeightsBf16, GradScaler::disabled(), 8);
    eprintln!("allocations per step: f16 {f16:?}, f16 statistics-driven {stats:?}, bf16 {bf16:?}");
    for (name, c) in [("f16", &f16), ("statistics", &stats), ("bf16", &bf16)] {
        assert!(c[0] > 0, "{name}: the first step makes the buffers (a check that counting works)");
        assert!(c[2..].iter().all(|&n| n == 0), "{name}: steady-state steps allocate: {c:?}");
    }
}
