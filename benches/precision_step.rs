//! One training step of each example's model in each precision mode, as the
//! examples train it (`mixprec_train`'s task and `Trainer`: autocast, master
//! weights, the mode's default loss scaling, unscale and Inf/NaN check), with
//! the optimizer `benches/pytorch/train_step.py` gives PyTorch: SGD lr 0.01,
//! momentum 0.9, no schedule, no clipping. One fixed batch (MNIST's first
//! 128 training images; the char-LM's first window of 32 streams × 64
//! characters), so data loading and evaluation are not timed; criterion's
//! warm-up runs first. Groups `step_mlp`, `step_cnn`, `step_char_lm`, ids
//! `<precision>/threads=1` and `<precision>/threads=all`.
//!
//! `cargo bench --bench precision_step -- step_cnn/master-weights` (a
//! filter); `scripts/results.sh` runs it beside the PyTorch script.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use mixprec::amp::Precision;
use mixprec::data::{Mnist, TextCorpus, shipped_shakespeare};
use mixprec::tensor::random::Generator;
use mixprec_train::tasks::{CharLm, MnistCnn, MnistMlp};
use mixprec_train::{LossScale, OptimizerKind, Task, Trainer, TrainerConfig};

/// The modes of the results report (pure f16 is the paper's counter-example, not a mode to time).
const MODES: [Precision; 5] = [
    Precision::F32,
    Precision::Autocast,
    Precision::MasterWeights,
    Precision::AutocastBf16,
    Precision::MasterWeightsBf16,
];

fn pools() -> Vec<(&'static str, rayon::ThreadPool)> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut v = vec![("threads=1", rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap())];
    if all > 1 {
        v.push(("threads=all", rayon::ThreadPoolBuilder::new().num_threads(all).build().unwrap()));
    }
    v
}

/// Times `task`'s step on its first batch (`batch_size` rows) in every mode
/// and thread count; `make` builds a fresh task (seed 1) per mode, so each
/// mode starts from the same FP32 weights.
fn bench_task<T: Task + Sync>(c: &mut Criterion, group: &str, batch_size: usize, make: impl Fn() -> T)
where
    T::Batch: Sync,
{
    let mut g = c.benchmark_group(group);
    g.sampling_mode(SamplingMode::Flat);
    for (threads, pool) in pools() {
        for precision in MODES {
            let mut task = make();
            task.set_training(true);
            let batch = task.epoch(batch_size, &mut Generator::new(1)).unwrap().next().unwrap().unwrap();
            let config = TrainerConfig {
                precision,
                loss_scale: LossScale::default_for(precision),
                optimizer: OptimizerKind::Sgd,
                lr: 0.01,
                // Far beyond any measurement: the cosine keeps the rate at 0.01.
                total_steps: 1 << 40,
                warmup_steps: 0,
                clip_grad_norm: None,
            };
            let mut trainer = Trainer::new(&config, task.named_parameters()).unwrap();
            g.bench_function(BenchmarkId::new(precision.name(), threads), |b| {
                b.iter(|| pool.install(|| black_box(trainer.step(|| task.loss(&batch)).unwrap())))
            });
        }
    }
    g.finish();
}

fn steps(c: &mut Criterion) {
    let mnist = Mnist::shipped().expect("the shipped MNIST (set MIXPREC_DATA_DIR)");
    bench_task(c, "step_mlp", 128, || MnistMlp::new(&mnist, 1).unwrap());
    bench_task(c, "step_cnn", 128, || MnistCnn::new(&mnist, 1).unwrap());
    let corpus = TextCorpus::load(shipped_shakespeare()).expect("the shipped Shakespeare");
    bench_task(c, "step_char_lm", 32, || CharLm::new(&corpus, 64, Some(4096), 1).unwrap());
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = steps
}
criterion_main!(benches);
