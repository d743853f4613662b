//! End-to-end training with the layer ops on real data: a small CNN
//! (conv, batch norm, ReLU, max pooling, linear) overfits 64 MNIST digits;
//! DESIGN.md's CNN gives bit-identical losses and parameters on 1 and 2
//! threads; an LSTM learns to copy a sequence with a delay.
//!
//! The optimizer is a plain Adam over the parameters' values (the `optim`
//! module is not what is under test here).

use mixprec::autograd::ops::{CrossEntropy, LstmParams, RunningStats, lstm};
use mixprec::autograd::{Var, no_grad};
use mixprec::data::{Mnist, Normalize};
use mixprec::tensor::random::Generator;
use mixprec::tensor::{DType, Tensor};

/// Adam (β = 0.9, 0.999, ε = 1e-8) on f32 parameters.
struct Adam {
    params: Vec<Var>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
    lr: f32,
}

impl Adam {
    fn new(params: Vec<Var>, lr: f32) -> Adam {
        let m: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.numel()]).collect();
        Adam { v: m.clone(), m, params, t: 0, lr }
    }

    fn step(&mut self) {
        self.t += 1;
        let (b1, b2) = (0.9f32, 0.999f32);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for ((p, m), v) in self.params.iter().zip(&mut self.m).zip(&mut self.v) {
            let g = p.grad().expect("every parameter gets a gradient").to_vec_f32().unwrap();
            let mut w = p.value().to_vec_f32().unwrap();
            for i in 0..w.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                w[i] -= self.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-8);
            }
            p.param().unwrap().set_value(Tensor::from_vec(w, p.shape()).unwrap()).unwrap();
            p.zero_grad();
        }
    }
}

fn uniform_param(shape: &[usize], bound: f64, rng: &mut Generator) -> Var {
    let mut v = vec![0.0f32; shape.iter().product()];
    rng.fill_uniform_f32(&mut v, -bound as f32, bound as f32);
    Var::parameter(Tensor::from_vec(v, shape).unwrap())
}

/// conv c1 3×3 pad 1 + BatchNorm + ReLU + maxpool 2; conv c2 3×3 pad 1 +
/// BatchNorm + ReLU + maxpool 2; linear c2·7·7 → 10 (DESIGN.md's CNN with
/// c1 = 32, c2 = 64). PyTorch's default initialisation bounds.
struct Cnn {
    conv: [(Var, Var); 2],
    bn: [(Var, Var); 2],
    running: [RunningStats; 2],
    fc: (Var, Var),
}

impl Cnn {
    fn new(c1: usize, c2: usize, seed: u64) -> Cnn {
        let mut rng = Generator::new(seed);
        let mut conv = |o: usize, i: usize| {
            let b = 1.0 / ((i * 9) as f64).sqrt();
            (uniform_param(&[o, i, 3, 3], b, &mut rng), uniform_param(&[o], b, &mut rng))
        };
        let conv = [conv(c1, 1), conv(c2, c1)];
        let bn = |c: usize| {
            (
                Var::parameter(Tensor::ones(&[c], DType::F32).unwrap()),
                Var::parameter(Tensor::zeros(&[c], DType::F32).unwrap()),
            )
        };
        let fin = c2 * 49;
        let b = 1.0 / (fin as f64).sqrt();
        let fc = (uniform_param(&[10, fin], b, &mut rng), uniform_param(&[10], b, &mut rng));
        Cnn {
            conv,
            bn: [bn(c1), bn(c2)],
            running: [RunningStats::new(c1).unwrap(), RunningStats::new(c2).unwrap()],
            fc,
        }
    }

    fn params(&self) -> Vec<Var> {
        let mut v = Vec::new();
        for (w, b) in self.conv.iter().chain(&self.bn).chain([&self.fc]) {
            v.push(w.clone());
            v.push(b.clone());
        }
        v
    }

    fn forward(&mut self, x: &Var, training: bool) -> Var {
        let mut h = x.clone();
        for i in 0..2 {
            let (w, b) = &self.conv[i];
            let (g, beta) = &self.bn[i];
            h = h
                .conv2d(w, Some(b), [1, 1], [1, 1], [1, 1])
                .unwrap()
                .batch_norm(Some(g), Some(beta), Some(&mut self.running[i]), training, 0.1, 1e-5)
                .unwrap()
                .relu()
                .unwrap()
                .max_pool2d([2, 2], [2, 2], [0, 0], [1, 1])
                .unwrap();
        }
        let n = h.shape()[0];
        let feat = h.numel() / n;
        h.reshape(&[n, feat]).unwrap().linear(&self.fc.0, Some(&self.fc.1)).unwrap()
    }
}

fn accuracy(logits: &Var, targets: &[usize]) -> f64 {
    let pred = logits.value().argmax(1, false).unwrap().to_vec_f64().unwrap();
    pred.iter().zip(targets).filter(|&(&p, &t)| p as usize == t).count() as f64 / targets.len() as f64
}

#[test]
fn small_cnn_overfits_64_mnist_digits() {
    let mnist = Mnist::shipped().expect("the shipped MNIST (data/mnist or $MIXPREC_DATA_DIR/mnist)");
    let idx: Vec<usize> = (0..64).collect();
    let batch = mnist.train.batch(&idx, DType::F32, Normalize::MNIST).unwrap();
    let x = Var::constant(batch.inputs.reshape(&[64, 1, 28, 28]).unwrap());
    let mut model = Cnn::new(8, 16, 1);
    let mut opt = Adam::new(model.params(), 0.01);
    let mut first = None;
    for _ in 0..40 {
        let loss = model.forward(&x, true).cross_entropy(&batch.targets, CrossEntropy::default()).unwrap();
        first.get_or_insert(loss.item().unwrap());
        loss.backward().unwrap();
        opt.step();
    }
    // Train accuracy, in eval mode (running statistics).
    let logits = no_grad(|| model.forward(&x, false));
    let acc = accuracy(&logits, &batch.targets);
    let last = no_grad(|| model.forward(&x, true)).cross_entropy(&batch.targets, CrossEntropy::default()).unwrap();
    assert_eq!(acc, 1.0, "train accuracy {acc}, loss {} → {}", first.unwrap(), last.item().unwrap());
}

#[test]
fn cnn_steps_are_bit_identical_on_1_and_2_threads() {
    let mnist = Mnist::shipped().expect("the shipped MNIST");
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut model = Cnn::new(32, 64, 7);
            let mut opt = Adam::new(model.params(), 0.001);
            let mut losses = Vec::new();
            for step in 0..20 {
                let idx: Vec<usize> = (step * 16..step * 16 + 16).collect();
                let batch = mnist.train.batch(&idx, DType::F32, Normalize::MNIST).unwrap();
                let x = Var::constant(batch.inputs.reshape(&[16, 1, 28, 28]).unwrap());
                let loss = model.forward(&x, true).cross_entropy(&batch.targets, CrossEntropy::default()).unwrap();
                losses.push(loss.value().to_vec_f32().unwrap()[0].to_bits());
                loss.backward().unwrap();
                opt.step();
            }
            let params: Vec<Vec<u32>> = model
                .params()
                .iter()
                .map(|p| p.value().to_vec_f32().unwrap().iter().map(|v| v.to_bits()).collect())
                .collect();
            let running: Vec<u32> = model
                .running
                .iter()
                .flat_map(|r| [r.mean.to_vec_f32().unwrap(), r.var.to_vec_f32().unwrap()].concat())
                .map(f32::to_bits)
                .collect();
            (losses, params, running)
        })
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.0, two.0, "losses differ between 1 and 2 threads");
    assert!(one.1 == two.1, "parameters differ between 1 and 2 threads");
    assert_eq!(one.2, two.2, "running statistics differ between 1 and 2 threads");
    let (first, last) = (f32::from_bits(one.0[0]), f32::from_bits(one.0[19]));
    assert!(last < first, "the loss did not fall: {first} → {last}");
}

#[test]
fn lstm_learns_to_copy_with_a_delay() {
    // Symbols 1..=4; the target at step t is the input at t − 2 (0 for t < 2).
    let (t, b, h, vocab, delay) = (8, 32, 24, 5, 2);
    let mut rng = Generator::new(3);
    let emb = uniform_param(&[vocab, 8], 1.0, &mut rng);
    let bound = 1.0 / (h as f64).sqrt();
    let layer = LstmParams {
        w_ih: uniform_param(&[4 * h, 8], bound, &mut rng),
        w_hh: uniform_param(&[4 * h, h], bound, &mut rng),
        b_ih: Some(uniform_param(&[4 * h], bound, &mut rng)),
        b_hh: Some(uniform_param(&[4 * h], bound, &mut rng)),
    };
    let head = (uniform_param(&[vocab, h], bound, &mut rng), uniform_param(&[vocab], bound, &mut rng));
    let mut params = vec![emb.clone(), head.0.clone(), head.1.clone()];
    params.extend(layer.vars());
    let mut opt = Adam::new(params, 0.02);
    let sample = |rng: &mut Generator| {
        let x: Vec<usize> = (0..t * b).map(|_| 1 + rng.below(4) as usize).collect();
        let y: Vec<usize> = (0..t * b).map(|i| if i / b < delay { 0 } else { x[i - delay * b] }).collect();
        (x, y)
    };
    let logits = |x: &[usize]| {
        let e = emb.embedding(x, &[t, b]).unwrap();
        let (out, _, _) = lstm(&e, None, std::slice::from_ref(&layer)).unwrap();
        out.reshape(&[t * b, h]).unwrap().linear(&head.0, Some(&head.1)).unwrap()
    };
    for _ in 0..300 {
        let (x, y) = sample(&mut rng);
        let loss = logits(&x).cross_entropy(&y, CrossEntropy::default()).unwrap();
        loss.backward().unwrap();
        opt.step();
    }
    let (x, y) = sample(&mut rng);
    let out = no_grad(|| logits(&x));
    let acc = accuracy(&out, &y);
    assert!(acc >= 0.99, "copy accuracy on fresh sequences {acc}");
}
