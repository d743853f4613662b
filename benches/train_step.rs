//! One FP32 training step of DESIGN.md's MLP (784-512-512-10, ReLU,
//! cross-entropy, batch 128 of the shipped MNIST, SGD with momentum 0.9):
//! `zero_grad`, forward, backward, optimizer step — on one thread and on
//! all threads, beside the step's 8 GEMMs run alone with the same shapes
//! and transpose flags (so the ratio shows what everything around the GEMMs
//! costs). PyTorch's step for the same model: `benches/pytorch/train_step.py`.
//!
//! `cargo bench --bench train_step`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mixprec::autograd::nn::{Linear, Module, Relu, Sequential};
use mixprec::autograd::optim::{Optimizer, Sgd, SgdConfig};
use mixprec::autograd::{CrossEntropy, Var};
use mixprec::data::{Mnist, Normalize};
use mixprec::kernels::gemm::{Transpose, sgemm};
use mixprec::tensor::DType;
use mixprec::tensor::random::Generator;

const BATCH: usize = 128;
const SIZES: [usize; 4] = [784, 512, 512, 10];

fn mlp(rng: &mut Generator) -> Sequential {
    Sequential::new()
        .push(Linear::new(SIZES[0], SIZES[1], rng).unwrap())
        .push(Relu)
        .push(Linear::new(SIZES[1], SIZES[2], rng).unwrap())
        .push(Relu)
        .push(Linear::new(SIZES[2], SIZES[3], rng).unwrap())
}

/// One GEMM of the step: `C (m×n) = op(A)·op(B)`, operands as stored.
struct Gemm {
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Gemm {
    fn new(ta: Transpose, tb: Transpose, m: usize, n: usize, k: usize, rng: &mut Generator) -> Gemm {
        let mut a = vec![0.0f32; m * k];
        let mut b = vec![0.0f32; k * n];
        rng.fill_uniform_f32(&mut a, -1.0, 1.0);
        rng.fill_uniform_f32(&mut b, -1.0, 1.0);
        Gemm { ta, tb, m, n, k, a, b, c: vec![0.0; m * n] }
    }

    fn run(&mut self) {
        let lda = if self.ta == Transpose::No { self.k } else { self.m };
        let ldb = if self.tb == Transpose::No { self.n } else { self.k };
        sgemm(self.ta, self.tb, self.m, self.n, self.k, 1.0, &self.a, lda, &self.b, ldb, 0.0, &mut self.c, self.n);
    }
}

/// The 8 GEMMs of one step, as `linear` runs them (`W` is `[out, in]`):
/// forward `Y = X·Wᵀ` for the 3 layers; weight gradients `dW = Gᵀ·X` for the
/// 3 layers; input gradients `dX = G·W` for layers 3 and 2 (layer 1's input
/// needs none). 0.411 GFLOP.
fn step_gemms(rng: &mut Generator) -> Vec<Gemm> {
    use Transpose::{No, Yes};
    let mut g = Vec::new();
    for l in 0..3 {
        g.push(Gemm::new(No, Yes, BATCH, SIZES[l + 1], SIZES[l], rng));
    }
    for l in (0..3).rev() {
        g.push(Gemm::new(Yes, No, SIZES[l + 1], SIZES[l], BATCH, rng));
        if l > 0 {
            g.push(Gemm::new(No, No, BATCH, SIZES[l], SIZES[l + 1], rng));
        }
    }
    g
}

fn train_step(c: &mut Criterion) {
    let mnist = Mnist::shipped().expect("the shipped MNIST (set MIXPREC_DATA_DIR)");
    let idx: Vec<usize> = (0..BATCH).collect();
    let batch = mnist.train.batch(&idx, DType::F32, Normalize::MNIST).unwrap();
    let x = Var::new(batch.inputs.reshape(&[BATCH, SIZES[0]]).unwrap());
    let y = batch.targets;
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("mlp_f32");
    g.sample_size(30).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(6));
    for threads in if all > 1 { vec![1, all] } else { vec![1] } {
        // Timed inside the pool, so the GEMMs run on exactly `threads` threads.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut rng = Generator::new(0);
        let model = mlp(&mut rng);
        let mut opt =
            Sgd::new(model.parameters(), SgdConfig { lr: 0.01, momentum: 0.9, ..SgdConfig::default() }).unwrap();
        g.bench_function(format!("step/threads={threads}"), |b| {
            b.iter_custom(|iters| {
                pool.install(|| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        opt.zero_grad();
                        let loss = model.forward(&x).unwrap().cross_entropy(&y, CrossEntropy::default()).unwrap();
                        loss.backward().unwrap();
                        opt.step().unwrap();
                        black_box(loss);
                    }
                    t.elapsed()
                })
            })
        });
        let mut gemms = step_gemms(&mut rng);
        g.bench_function(format!("gemms_alone/threads={threads}"), |b| {
            b.iter_custom(|iters| {
                pool.install(|| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        for gm in gemms.iter_mut() {
                            gm.run();
                        }
                        black_box(gemms[0].c[0]);
                    }
                    t.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
