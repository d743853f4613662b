//! FP32 training steps of DESIGN.md's CNN (batch 128, MNIST) and char-LM
//! (embedding 64, 2-layer LSTM 256, sequence 64, batch 32, Shakespeare):
//! zero_grad, forward, cross-entropy, backward, SGD with momentum 0.9 —
//! the step `benches/pytorch/train_step.py` times for PyTorch. The char-LM
//! runs its embedding and LSTM as `lstm_embedded` (the same function as
//! `embedding` then `lstm`, the first input projection per vocabulary row).
//!
//! `cargo bench --bench layers_step -- threads=1` (one thread) or
//! `threads=all`; compare with
//! `python benches/pytorch/train_step.py --threads 1 --models cnn,char_lm --precisions f32`.

use criterion::{Criterion, criterion_group, criterion_main};
use mixprec::autograd::Var;
use mixprec::autograd::ops::{CrossEntropy, LstmParams, RunningStats, lstm_embedded};
use mixprec::autograd::optim::{self, Optimizer, SgdConfig};
use mixprec::data::{Mnist, Normalize, TextCorpus, shipped_shakespeare};
use mixprec::tensor::random::Generator;
use mixprec::tensor::{DType, Tensor};

fn uniform(shape: &[usize], bound: f64, rng: &mut Generator) -> Var {
    let mut v = vec![0.0f32; shape.iter().product()];
    rng.fill_uniform_f32(&mut v, -bound as f32, bound as f32);
    Var::parameter(Tensor::from_vec(v, shape).unwrap())
}

/// SGD with momentum (PyTorch's: `b = μ·b + g`, `w −= lr·b`), lr 0.01 and
/// μ 0.9, through `autograd::optim::Sgd` (the optimizer kernels).
struct Sgd(optim::Sgd);

impl Sgd {
    fn new(params: Vec<Var>) -> Sgd {
        Sgd(optim::Sgd::new(params, SgdConfig { lr: 0.01, momentum: 0.9, ..SgdConfig::default() }).unwrap())
    }

    fn zero_grad(&self) {
        self.0.zero_grad();
    }

    fn step(&mut self) {
        self.0.step().unwrap();
    }
}

struct Cnn {
    conv: Vec<(Var, Var)>,
    bn: Vec<(Var, Var)>,
    running: Vec<RunningStats>,
    fc: (Var, Var),
}

impl Cnn {
    fn new(rng: &mut Generator) -> Cnn {
        let mut conv = |o: usize, i: usize| {
            let b = 1.0 / ((i * 9) as f64).sqrt();
            (uniform(&[o, i, 3, 3], b, rng), uniform(&[o], b, rng))
        };
        let conv = vec![conv(32, 1), conv(64, 32)];
        let bn = |c: usize| {
            (
                Var::parameter(Tensor::ones(&[c], DType::F32).unwrap()),
                Var::parameter(Tensor::zeros(&[c], DType::F32).unwrap()),
            )
        };
        let b = 1.0 / (3136f64).sqrt();
        let fc = (uniform(&[10, 3136], b, rng), uniform(&[10], b, rng));
        Cnn {
            conv,
            bn: vec![bn(32), bn(64)],
            running: vec![RunningStats::new(32).unwrap(), RunningStats::new(64).unwrap()],
            fc,
        }
    }

    fn params(&self) -> Vec<Var> {
        self.conv.iter().chain(&self.bn).chain([&self.fc]).flat_map(|(w, b)| [w.clone(), b.clone()]).collect()
    }

    fn forward(&mut self, x: &Var) -> Var {
        let mut h = x.clone();
        for i in 0..2 {
            let (w, b) = &self.conv[i];
            let (g, beta) = &self.bn[i];
            h = h
                .conv2d(w, Some(b), [1, 1], [1, 1], [1, 1])
                .unwrap()
                .batch_norm_relu(Some(g), Some(beta), Some(&mut self.running[i]), true, 0.1, 1e-5)
                .unwrap()
                .max_pool2d([2, 2], [2, 2], [0, 0], [1, 1])
                .unwrap();
        }
        let n = h.shape()[0];
        h.reshape(&[n, 3136]).unwrap().linear(&self.fc.0, Some(&self.fc.1)).unwrap()
    }
}

struct CharLm {
    emb: Var,
    layers: Vec<LstmParams>,
    head: (Var, Var),
}

impl CharLm {
    fn new(vocab: usize, rng: &mut Generator) -> CharLm {
        let mut e = vec![0.0f32; vocab * 64];
        rng.fill_normal_f32(&mut e, 0.0, 1.0);
        let emb = Var::parameter(Tensor::from_vec(e, &[vocab, 64]).unwrap());
        let bound = 1.0 / 16.0;
        let layers = (0..2)
            .map(|l| LstmParams {
                w_ih: uniform(&[1024, if l == 0 { 64 } else { 256 }], bound, rng),
                w_hh: uniform(&[1024, 256], bound, rng),
                b_ih: Some(uniform(&[1024], bound, rng)),
                b_hh: Some(uniform(&[1024], bound, rng)),
            })
            .collect();
        let head = (uniform(&[vocab, 256], bound, rng), uniform(&[vocab], bound, rng));
        CharLm { emb, layers, head }
    }

    fn params(&self) -> Vec<Var> {
        let mut v = vec![self.emb.clone(), self.head.0.clone(), self.head.1.clone()];
        for l in &self.layers {
            v.extend(l.vars());
        }
        v
    }

    fn forward(&self, x: &[usize], t: usize, b: usize) -> Var {
        let (h, _, _) = lstm_embedded(&self.emb, x, [t, b], None, &self.layers).unwrap();
        h.reshape(&[t * b, 256]).unwrap().linear(&self.head.0, Some(&self.head.1)).unwrap()
    }
}

fn pools() -> Vec<(String, rayon::ThreadPool)> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut v = vec![("threads=1".to_string(), rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap())];
    if all > 1 {
        v.push(("threads=all".to_string(), rayon::ThreadPoolBuilder::new().num_threads(all).build().unwrap()));
    }
    v
}

fn cnn_step(c: &mut Criterion) {
    let mnist = Mnist::shipped().expect("the shipped MNIST");
    let idx: Vec<usize> = (0..128).collect();
    let batch = mnist.train.batch(&idx, DType::F32, Normalize::MNIST).unwrap();
    let x = Var::constant(batch.inputs.reshape(&[128, 1, 28, 28]).unwrap());
    let mut g = c.benchmark_group("cnn_step_f32");
    for (name, pool) in pools() {
        let mut model = Cnn::new(&mut Generator::new(0));
        let mut opt = Sgd::new(model.params());
        g.bench_function(&name, |bn| {
            bn.iter(|| {
                pool.install(|| {
                    opt.zero_grad();
                    let loss = model.forward(&x).cross_entropy(&batch.targets, CrossEntropy::default()).unwrap();
                    loss.backward().unwrap();
                    opt.step();
                })
            })
        });
    }
    g.finish();
}

fn char_lm_step(c: &mut Criterion) {
    let corpus = TextCorpus::load(shipped_shakespeare()).expect("the shipped Shakespeare");
    let tokens = corpus.tokens();
    let (t, b) = (64, 32);
    // Sequence b starts at b·2·(T + 1), as in the PyTorch script; laid out [T, B].
    let at = |s: usize, i: usize| tokens[s * 2 * (t + 1) + i] as usize;
    let x: Vec<usize> = (0..t * b).map(|k| at(k % b, k / b)).collect();
    let y: Vec<usize> = (0..t * b).map(|k| at(k % b, k / b + 1)).collect();
    let vocab = corpus.vocab().len();
    let mut g = c.benchmark_group("char_lm_step_f32");
    for (name, pool) in pools() {
        let model = CharLm::new(vocab, &mut Generator::new(0));
        let mut opt = Sgd::new(model.params());
        g.bench_function(&name, |bn| {
            bn.iter(|| {
                pool.install(|| {
                    opt.zero_grad();
                    let loss = model.forward(&x, t, b).cross_entropy(&y, CrossEntropy::default()).unwrap();
                    loss.backward().unwrap();
                    opt.step();
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = cnn_step, char_lm_step
}
criterion_main!(benches);
