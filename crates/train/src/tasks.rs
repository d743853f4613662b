//! The examples' models and data as [`Task`]s: DESIGN.md's benchmark models
//! (the MNIST MLP and CNN, the character LSTM on Shakespeare).

use std::sync::Mutex;

use mixprec::amp::{Precision, autocast};
use mixprec::autograd::nn::{BatchNorm2d, Conv2d, Embedding, LSTM, Linear, MaxPool2d, Module, Relu, Sequential};
use mixprec::autograd::ops::lstm_embedded;
use mixprec::autograd::{CrossEntropy, Var, no_grad};
use mixprec::data::{Batch, BatchConfig, Mnist, Normalize, SeqBatch, Sequences, TextCorpus};
use mixprec::tensor::random::Generator;
use mixprec::tensor::{DType, Tensor};

use crate::error::{ExampleError, Result};
use crate::trainer::{Eval, Task, accuracy};

/// A ReLU MLP over flattened images: `Linear` layers with ReLU between
/// (fused into the GEMM's store), logits out. Parameters are named
/// `fc1.weight`, `fc1.bias`, …
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// Layers of the given widths (`[784, 512, 512, 10]`), PyTorch's
    /// `nn.Linear` initialisation from `rng`.
    pub fn new(widths: &[usize], rng: &mut Generator) -> Result<Mlp> {
        let layers = widths.windows(2).map(|w| Linear::new(w[0], w[1], rng)).collect::<Result<_, _>>()?;
        Ok(Mlp { layers })
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// Runs layers `from..` on `x` (ReLU after each but the last).
    pub fn forward_from(&self, from: usize, x: &Var) -> mixprec::autograd::Result<Var> {
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate().skip(from) {
            h = if i < last {
                layer.forward_relu(&h).unwrap_or_else(|| layer.forward(&h).and_then(|y| y.relu()))?
            } else {
                layer.forward(&h)?
            };
        }
        Ok(h)
    }

    /// The gradients of the cross-entropy loss with respect to each
    /// layer's output (activation gradients, the paper's Figure 3) and to
    /// every parameter (weight gradients), in FP32 for the batch `(x,
    /// targets)`. Clears the parameters' gradients before and after.
    pub fn gradients(&self, x: &Tensor, targets: &[usize]) -> Result<(Vec<f32>, Vec<f32>)> {
        let params = self.parameters();
        params.iter().for_each(Var::zero_grad);
        // Each layer's output, as a leaf, with the rest of the net above it.
        let mut inputs = vec![x.clone()];
        for i in 0..self.layers.len() - 1 {
            let h = no_grad(|| self.layer_output(i, &inputs[i]))?;
            inputs.push(h);
        }
        let mut activation = Vec::new();
        for (i, input) in inputs.iter().enumerate().skip(1) {
            let leaf = Var::parameter(input.clone());
            self.forward_from(i, &leaf)?.cross_entropy(targets, CrossEntropy::default())?.backward()?;
            if let Some(g) = leaf.grad() {
                activation.extend(g.to_vec_f32()?);
            }
        }
        // The logits' gradient.
        let logits = Var::parameter(no_grad(|| self.forward_from(0, &Var::new(x.clone())))?.value());
        logits.cross_entropy(targets, CrossEntropy::default())?.backward()?;
        if let Some(g) = logits.grad() {
            activation.extend(g.to_vec_f32()?);
        }
        params.iter().for_each(Var::zero_grad);
        self.forward_from(0, &Var::new(x.clone()))?.cross_entropy(targets, CrossEntropy::default())?.backward()?;
        let mut weight = Vec::new();
        for p in &params {
            if let Some(g) = p.grad() {
                weight.extend(g.to_vec_f32()?);
            }
        }
        params.iter().for_each(Var::zero_grad);
        Ok((activation, weight))
    }

    fn layer_output(&self, i: usize, input: &Tensor) -> mixprec::autograd::Result<Tensor> {
        let y = self.layers[i].forward(&Var::new(input.clone()))?;
        Ok(if i + 1 < self.layers.len() { y.relu()?.value() } else { y.value() })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Var) -> mixprec::autograd::Result<Var> {
        self.forward_from(0, x)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.named_parameters().into_iter().map(move |(n, v)| (format!("fc{}.{n}", i + 1), v)))
            .collect()
    }
}

/// DESIGN.md's MLP (784-512-512-10) on MNIST.
#[derive(Debug)]
pub struct MnistMlp<'a> {
    /// The model.
    pub model: Mlp,
    mnist: &'a Mnist,
}

impl<'a> MnistMlp<'a> {
    /// The MLP initialised from `seed`, over `mnist`.
    pub fn new(mnist: &'a Mnist, seed: u64) -> Result<MnistMlp<'a>> {
        let mut rng = Generator::new(seed);
        Ok(MnistMlp { model: Mlp::new(&[784, 512, 512, 10], &mut rng)?, mnist })
    }
}

impl Task for MnistMlp<'_> {
    type Batch = Batch;

    fn name(&self) -> &'static str {
        "mnist_mlp"
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        self.model.named_parameters()
    }

    fn set_training(&mut self, _training: bool) {}

    fn steps_per_epoch(&self, batch_size: usize) -> usize {
        BatchConfig::new(batch_size).num_batches(self.mnist.train.len())
    }

    fn epoch<'b>(
        &'b self,
        batch_size: usize,
        rng: &mut Generator,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + 'b>> {
        let config = BatchConfig::new(batch_size).shuffle(true);
        Ok(Box::new(self.mnist.train.batches(&config, rng, DType::F32, Normalize::MNIST)?.map(Ok)))
    }

    fn loss(&self, batch: &Batch) -> Result<Var> {
        let x = Var::new(batch.inputs.reshape(&[batch.targets.len(), 784])?);
        Ok(self.model.forward_from(0, &x)?.cross_entropy(&batch.targets, CrossEntropy::default())?)
    }

    fn evaluate(&self, precision: Precision) -> Result<Eval> {
        let acc = accuracy(&self.mnist.test, precision, |x| {
            Ok(self.model.forward_from(0, &Var::new(x.reshape(&[x.shape()[0], 784])?))?)
        })?;
        Ok(Eval { test_accuracy: Some(acc), val_loss_nats: None })
    }
}

/// DESIGN.md's CNN on MNIST: conv 1→32 3×3 pad 1, batch norm, ReLU, max
/// pool 2; conv 32→64 3×3 pad 1, batch norm, ReLU, max pool 2; linear
/// 64·7·7 → 10. Batch-norm parameters (`bn1.*`, `bn2.*`) stay FP32 under
/// master weights.
#[derive(Debug)]
pub struct MnistCnn<'a> {
    features: Sequential,
    fc: Linear,
    mnist: &'a Mnist,
}

impl<'a> MnistCnn<'a> {
    /// The CNN initialised from `seed`, over `mnist`.
    pub fn new(mnist: &'a Mnist, seed: u64) -> Result<MnistCnn<'a>> {
        let mut rng = Generator::new(seed);
        let features = Sequential::new()
            .push_named("conv1", Conv2d::new(1, 32, [3, 3], [1, 1], &mut rng)?)
            .push_named("bn1", BatchNorm2d::new(32)?)
            .push(Relu)
            .push(MaxPool2d::new([2, 2]))
            .push_named("conv2", Conv2d::new(32, 64, [3, 3], [1, 1], &mut rng)?)
            .push_named("bn2", BatchNorm2d::new(64)?)
            .push(Relu)
            .push(MaxPool2d::new([2, 2]));
        let fc = Linear::new(64 * 7 * 7, 10, &mut rng)?;
        Ok(MnistCnn { features, fc, mnist })
    }

    fn logits(&self, images: &Tensor) -> mixprec::autograd::Result<Var> {
        let n = images.shape()[0];
        let h = self.features.forward(&Var::new(images.reshape(&[n, 1, 28, 28])?))?;
        self.fc.forward(&h.reshape(&[n, 64 * 7 * 7])?)
    }
}

impl Task for MnistCnn<'_> {
    type Batch = Batch;

    fn name(&self) -> &'static str {
        "mnist_cnn"
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = self.features.named_parameters();
        p.extend(self.fc.named_parameters().into_iter().map(|(n, v)| (format!("fc.{n}"), v)));
        p
    }

    fn set_training(&mut self, training: bool) {
        self.features.set_training(training);
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.features.named_buffers()
    }

    fn set_buffer(&self, path: &str, value: Tensor) -> Result<()> {
        Ok(self.features.set_buffer(path, value)?)
    }

    fn steps_per_epoch(&self, batch_size: usize) -> usize {
        BatchConfig::new(batch_size).num_batches(self.mnist.train.len())
    }

    fn epoch<'b>(
        &'b self,
        batch_size: usize,
        rng: &mut Generator,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + 'b>> {
        let config = BatchConfig::new(batch_size).shuffle(true);
        Ok(Box::new(self.mnist.train.batches(&config, rng, DType::F32, Normalize::MNIST)?.map(Ok)))
    }

    fn loss(&self, batch: &Batch) -> Result<Var> {
        Ok(self.logits(&batch.inputs)?.cross_entropy(&batch.targets, CrossEntropy::default())?)
    }

    fn evaluate(&self, precision: Precision) -> Result<Eval> {
        let acc = accuracy(&self.mnist.test, precision, |x| Ok(self.logits(x)?))?;
        Ok(Eval { test_accuracy: Some(acc), val_loss_nats: None })
    }
}

/// DESIGN.md's character LM: embedding 64, a 2-layer LSTM of 256, a linear
/// head over the vocabulary, trained by truncated backpropagation through
/// time on the first 90% of the text and evaluated on the last 10%.
///
/// Training cuts the text into `batch` contiguous streams (one per batch
/// row) and walks them together, `seq_len` characters per step; the LSTM's
/// final state of one step (detached) is the initial state of the next, so
/// the model sees context beyond one window while gradients stop at its
/// start. Each epoch starts from the zero state. Evaluation walks the
/// held-out text the same way (64 streams, state carried, no tape) and
/// reports the mean loss over every character it predicts.
#[derive(Debug)]
pub struct CharLm<'a> {
    embedding: Embedding,
    lstm: LSTM,
    head: Linear,
    train: &'a [u32],
    valid: &'a [u32],
    seq_len: usize,
    /// The carried LSTM state, by the window index it starts.
    carry: Mutex<Carry>,
}

/// One step of a [`CharLm`] epoch: the windows of every stream at `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamBatch {
    /// The windows, row `b` from stream `b`.
    pub windows: SeqBatch,
    /// The step within the epoch (0 starts from the zero state).
    pub index: usize,
}

/// The LSTM state `(h, c)` (`[layers, batch, hidden]` each) at the start of
/// two consecutive windows: the one a loss was last computed for, and the
/// next. A window's loss can be computed twice (a look before the training
/// step) and still start from the same state.
#[derive(Debug, Default)]
struct Carry {
    start: Option<(usize, Tensor, Tensor)>,
    next: Option<(usize, Tensor, Tensor)>,
    /// Pieces of `next` restored from a checkpoint, until all three are in.
    restored: (Option<usize>, Option<Tensor>, Option<Tensor>),
}

/// Checkpoint buffer paths of the carried state: the window it starts, `h`, `c`.
const CARRY_BUFFERS: [&str; 3] = ["lstm_carry.window", "lstm_carry.h", "lstm_carry.c"];

/// Streams the evaluation walks in parallel (the batch of its forwards).
const EVAL_STREAMS: usize = 64;

/// Row `b` of step `k`: `tokens[b·S + k·T ..][..T + 1]` with `S` the stream
/// length, as inputs and next-character targets.
fn stream_windows(tokens: &[u32], streams: usize, seq_len: usize, k: usize) -> SeqBatch {
    let stride = tokens.len() / streams;
    let (mut inputs, mut targets) = (Vec::with_capacity(streams * seq_len), Vec::with_capacity(streams * seq_len));
    for b in 0..streams {
        let w = &tokens[b * stride + k * seq_len..][..seq_len + 1];
        inputs.extend(w[..seq_len].iter().map(|&t| t as usize));
        targets.extend(w[1..].iter().map(|&t| t as usize));
    }
    SeqBatch { inputs, targets, batch: streams, seq_len }
}

/// Steps of `seq_len` in `streams` contiguous streams over `len` tokens
/// (each window needs one more token for its last target).
fn stream_steps(len: usize, streams: usize, seq_len: usize) -> usize {
    (len / streams.max(1)).saturating_sub(1) / seq_len.max(1)
}

impl<'a> CharLm<'a> {
    /// The model for `corpus`'s vocabulary, initialised from `seed`;
    /// `valid_chars` bounds how much of the held-out 10% is evaluated
    /// (from its start; `None`: all of it).
    pub fn new(corpus: &'a TextCorpus, seq_len: usize, valid_chars: Option<usize>, seed: u64) -> Result<CharLm<'a>> {
        let (train, valid) = corpus.split(0.9)?;
        // Checks that a window fits: the data layer's typed errors.
        Sequences::new(train, seq_len)?;
        let valid = &valid[..valid_chars.map_or(valid.len(), |v| v.saturating_add(1).min(valid.len()))];
        Sequences::new(valid, seq_len)?;
        let vocab = corpus.vocab().len();
        let mut rng = Generator::new(seed);
        Ok(CharLm {
            embedding: Embedding::new(vocab, 64, &mut rng)?,
            lstm: LSTM::new(64, 256, 2, &mut rng)?,
            head: Linear::new(256, vocab, &mut rng)?,
            train,
            valid,
            seq_len,
            carry: Mutex::new(Carry::default()),
        })
    }

    /// Mean cross-entropy (nats per character) of a batch from the state
    /// `state` (zeros if `None`), and the final state. The LSTM runs
    /// time-major, so ids and targets are reordered `[T, B]`.
    fn batch_loss(
        &self,
        b: &SeqBatch,
        state: Option<(&Tensor, &Tensor)>,
    ) -> mixprec::autograd::Result<(Var, Tensor, Tensor)> {
        let (n, t) = (b.batch, b.seq_len);
        let time_major = |v: &[usize]| (0..t * n).map(|k| v[(k % n) * t + k / n]).collect::<Vec<_>>();
        let state = state.map(|(h, c)| (Var::new(h.clone()), Var::new(c.clone())));
        // The embedding and the LSTM as one: the first layer's input projection per vocabulary row.
        let (h, h_n, c_n) = lstm_embedded(
            &self.embedding.weight,
            &time_major(&b.inputs),
            [t, n],
            state.as_ref().map(|(h, c)| (h, c)),
            &self.lstm.layers,
        )?;
        let logits = self.head.forward(&h.reshape(&[t * n, 256])?)?;
        let loss = logits.cross_entropy(&time_major(&b.targets), CrossEntropy::default())?;
        Ok((loss, h_n.value(), c_n.value()))
    }
}

impl Task for CharLm<'_> {
    type Batch = StreamBatch;

    fn name(&self) -> &'static str {
        "char_lm"
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let prefix =
            |p: &str, v: Vec<(String, Var)>| v.into_iter().map(|(n, v)| (format!("{p}.{n}"), v)).collect::<Vec<_>>();
        let mut out = prefix("embedding", self.embedding.named_parameters());
        out.extend(prefix("lstm", self.lstm.named_parameters()));
        out.extend(prefix("head", self.head.named_parameters()));
        out
    }

    fn set_training(&mut self, _training: bool) {}

    fn steps_per_epoch(&self, batch_size: usize) -> usize {
        stream_steps(self.train.len(), batch_size, self.seq_len)
    }

    /// The streams in order (truncated BPTT needs it; `rng` is not used).
    fn epoch<'b>(
        &'b self,
        batch_size: usize,
        _rng: &mut Generator,
    ) -> Result<Box<dyn Iterator<Item = Result<StreamBatch>> + 'b>> {
        let steps = self.steps_per_epoch(batch_size);
        if steps == 0 {
            return Err(ExampleError::InvalidFlag {
                flag: "--batch-size",
                value: batch_size.to_string(),
                reason: format!(
                    "{} streams of the {} training characters are shorter than a window of {} plus its target",
                    batch_size,
                    self.train.len(),
                    self.seq_len
                ),
            });
        }
        let (train, t) = (self.train, self.seq_len);
        Ok(Box::new(
            (0..steps).map(move |k| Ok(StreamBatch { windows: stream_windows(train, batch_size, t, k), index: k })),
        ))
    }

    fn loss(&self, batch: &StreamBatch) -> Result<Var> {
        let mut carry = self.carry.lock().unwrap_or_else(|e| e.into_inner());
        let k = batch.index;
        if carry.next.as_ref().is_some_and(|s| s.0 == k) {
            carry.start = carry.next.take();
        }
        let state = match &carry.start {
            Some((i, h, c)) if *i == k && k > 0 && h.shape()[1] == batch.windows.batch => Some((h.clone(), c.clone())),
            _ => None,
        };
        let (loss, h, c) = self.batch_loss(&batch.windows, state.as_ref().map(|(h, c)| (h, c)))?;
        if state.is_none() {
            carry.start = None;
        }
        carry.next = Some((k + 1, h, c));
        Ok(loss)
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let carry = self.carry.lock().unwrap_or_else(|e| e.into_inner());
        let Some((k, h, c)) = &carry.next else { return Vec::new() };
        let Ok(window) = Tensor::from_vec(vec![*k as f64], &[1]) else { return Vec::new() };
        [window, h.clone(), c.clone()].into_iter().zip(CARRY_BUFFERS).map(|(t, n)| (n.to_string(), t)).collect()
    }

    fn set_buffer(&self, path: &str, value: Tensor) -> Result<()> {
        let unexpected = || mixprec::amp::CheckpointError::Unexpected { tensor: format!("buffer/{path}") };
        let mut carry = self.carry.lock().unwrap_or_else(|e| e.into_inner());
        match path {
            "lstm_carry.window" => {
                let k = value.to_vec_f64()?.first().copied().unwrap_or(-1.0);
                if !(k >= 0.0 && k.fract() == 0.0) {
                    return Err(unexpected().into());
                }
                carry.restored.0 = Some(k as usize);
            }
            "lstm_carry.h" => carry.restored.1 = Some(value),
            "lstm_carry.c" => carry.restored.2 = Some(value),
            _ => return Err(unexpected().into()),
        }
        if let (Some(k), Some(h), Some(c)) = &carry.restored {
            carry.next = Some((*k, h.clone(), c.clone()));
            carry.restored = (None, None, None);
        }
        Ok(())
    }

    fn takes_buffer(&self, path: &str) -> bool {
        CARRY_BUFFERS.contains(&path)
    }

    fn evaluate(&self, precision: Precision) -> Result<Eval> {
        // Every stream holds at least one window and its last target.
        let streams = EVAL_STREAMS.min(self.valid.len() / (self.seq_len + 1)).max(1);
        let steps = stream_steps(self.valid.len(), streams, self.seq_len);
        let (mut sum, mut state) = (0.0, None::<(Tensor, Tensor)>);
        for k in 0..steps {
            let b = stream_windows(self.valid, streams, self.seq_len, k);
            let (loss, h, c) =
                no_grad(|| autocast(precision, || self.batch_loss(&b, state.as_ref().map(|(h, c)| (h, c)))))?;
            sum += loss.item()?;
            state = Some((h, c));
        }
        Ok(Eval { test_accuracy: None, val_loss_nats: Some(sum / steps.max(1) as f64) })
    }
}
