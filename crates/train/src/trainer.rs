//! [`Trainer`]: one optimizer step in any precision mode (the paper's
//! recipe: autocast forward, scaled backward, unscale and skip on Inf/NaN,
//! FP32 master update), and [`run`]: the epoch loop around it for a
//! [`Task`], with timing, memory peaks and the [`Record`].
//!
//! The learning rate rises linearly from 0 over `--warmup-steps`, then
//! follows a cosine decay from `--lr` to 0 over the rest of the planned
//! steps; it advances only on applied steps, so skipped steps do not shift
//! the schedule. With `--clip-grad-norm`, the unscaled FP32 gradients (the
//! masters' under master weights) are clipped to that global norm before
//! the update. [`run_with`] saves checkpoints between steps
//! (`--save`) and continues from one (`--resume`) bit-exactly: the
//! trainer's state ([`Trainer::capture`]), the data order's generator at
//! the start of the epoch with the batches already taken, the model's
//! buffers and the losses of the epoch so far.

use std::path::Path;
use std::time::{Duration, Instant};

use mixprec::amp::checkpoint::{Checkpoint, CheckpointError, CheckpointOptimizer, OptimizerState};
use mixprec::amp::scaler::ScalerConfig;
use mixprec::amp::{AmpOptimizer, GradScaler, MasterWeights, Precision, autocast, convert_params};
use mixprec::autograd::optim::clip_grad_norm;
use mixprec::autograd::optim::schedule::{CosineLr, LinearWarmup, LrSchedule};
use mixprec::autograd::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use mixprec::autograd::{Var, no_grad};
use mixprec::data::{ImageSet, Normalize};
use mixprec::tensor::Tensor;
use mixprec::tensor::kernels::slice::{Dst, Src};
use mixprec::tensor::random::{Generator, GeneratorState};
use mixprec::tensor::{DType, memory};

use crate::args::{Checkpointing, LossScale, OptimizerKind, Resolved};
use crate::error::{ExampleError, Result};
use crate::progress::Progress;
use crate::record::{BytesByDtype, Record, finite};

/// What the trainer needs of an optimizer: a step, and its state in checkpoints.
trait TrainOptimizer: Optimizer + CheckpointOptimizer + Send {}

impl<O: Optimizer + CheckpointOptimizer + Send> TrainOptimizer for O {}

/// The optimizer a run asked for, behind one type.
struct AnyOptimizer(Box<dyn TrainOptimizer>);

impl CheckpointOptimizer for AnyOptimizer {
    fn state_params(&self) -> &[Var] {
        self.0.state_params()
    }
    fn master_params(&self) -> Option<&[Var]> {
        self.0.master_params()
    }
    fn export_state(&self) -> OptimizerState {
        self.0.export_state()
    }
    fn import_state(&mut self, state: OptimizerState) -> std::result::Result<(), CheckpointError> {
        self.0.import_state(state)
    }
}

impl Optimizer for AnyOptimizer {
    fn step(&mut self) -> mixprec::autograd::Result<()> {
        self.0.step()
    }
    fn params(&self) -> &[Var] {
        self.0.params()
    }
    fn lr(&self) -> f64 {
        self.0.lr()
    }
    fn set_lr(&mut self, lr: f64) -> mixprec::autograd::Result<()> {
        self.0.set_lr(lr)
    }
    fn steps_scaled(&self) -> bool {
        self.0.steps_scaled()
    }
    fn step_param_scaled(
        &mut self,
        i: usize,
        grad: Src<'_>,
        inv_scale: f32,
        copy: Option<Dst<'_>>,
    ) -> mixprec::autograd::Result<()> {
        self.0.step_param_scaled(i, grad, inv_scale, copy)
    }
}

enum Opt {
    /// FP32, autocast and pure-f16 runs: the optimizer owns the model's parameters.
    Plain(AnyOptimizer),
    /// O2: f16/bf16 working copies, FP32 masters.
    Master(MasterWeights<AnyOptimizer>),
}

/// What one [`Trainer::step`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// The (unscaled) loss of the batch.
    pub loss: f64,
    /// Whether the update was applied (false: skipped for Inf/NaN).
    pub applied: bool,
    /// The loss scale used for this step (1 without scaling).
    pub scale: f32,
}

/// The training state of one run: optimizer (with master weights where the
/// mode has them), loss scaler and schedule.
pub struct Trainer {
    precision: Precision,
    loss_scale: LossScale,
    opt: Opt,
    scaler: GradScaler,
    schedule: LinearWarmup<CosineLr>,
    clip: Option<f64>,
    /// Steps taken (applied or skipped).
    steps: usize,
    applied: usize,
    skipped: u64,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("precision", &self.precision)
            .field("loss_scale", &self.loss_scale)
            .field("steps", &self.steps)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

/// Hyper-parameters of a [`Trainer`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainerConfig {
    /// The precision mode.
    pub precision: Precision,
    /// Loss scaling.
    pub loss_scale: LossScale,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// Steps of the planned run: the warm-up, then the cosine decay.
    pub total_steps: usize,
    /// Steps of linear warm-up from 0 (within `total_steps`).
    pub warmup_steps: usize,
    /// Clip the unscaled gradients to this global L2 norm before each update.
    pub clip_grad_norm: Option<f64>,
}

impl Trainer {
    /// Prepares `params` (the model's, with their paths) for `config`'s
    /// mode: pure-f16 converts them to f16, the master-weight modes convert
    /// them to working copies (norm layers stay FP32) with FP32 masters.
    pub fn new(config: &TrainerConfig, params: Vec<(String, Var)>) -> Result<Trainer> {
        let make = move |ps: Vec<Var>| -> mixprec::autograd::Result<AnyOptimizer> {
            Ok(AnyOptimizer(match config.optimizer {
                OptimizerKind::Sgd => {
                    Box::new(Sgd::new(ps, SgdConfig { lr: config.lr, momentum: 0.9, ..SgdConfig::default() })?)
                }
                OptimizerKind::Adam => Box::new(Adam::new(ps, AdamConfig { lr: config.lr, ..AdamConfig::adam() })?),
            }))
        };
        let p = config.precision;
        let opt = if p.has_master_weights() {
            let dtype = p.low_dtype().unwrap_or(DType::F16);
            Opt::Master(MasterWeights::new(params, dtype, |m| Ok(make(m)?))?)
        } else {
            if p == Precision::PureF16 {
                convert_params(&params, DType::F16, |_| false)?;
            }
            Opt::Plain(make(params.into_iter().map(|(_, v)| v).collect())?)
        };
        let scaler = match config.loss_scale {
            LossScale::None => GradScaler::disabled(),
            LossScale::Static(s) => GradScaler::new(ScalerConfig::fixed(s))?,
            LossScale::Dynamic => GradScaler::new(ScalerConfig::default())?,
            LossScale::Stats => GradScaler::new(ScalerConfig::statistics(65536.0))?,
        };
        Ok(Trainer {
            precision: p,
            loss_scale: config.loss_scale,
            opt,
            scaler,
            schedule: LinearWarmup {
                steps: config.warmup_steps,
                start_factor: 0.0,
                then: CosineLr {
                    base: config.lr,
                    min: 0.0,
                    total: config.total_steps.saturating_sub(config.warmup_steps),
                },
            },
            clip: config.clip_grad_norm,
            steps: 0,
            applied: 0,
            skipped: 0,
        })
    }

    /// The precision mode.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The loss scale in use (1 without scaling).
    pub fn scale_factor(&self) -> f32 {
        self.scaler.scale_factor()
    }

    /// The loss scale to report: `None` without scaling.
    pub fn reported_scale(&self) -> Option<f32> {
        (self.loss_scale != LossScale::None).then(|| self.scale_factor())
    }

    /// Steps skipped for Inf/NaN gradients.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// A checkpoint of the training state for `model` (its name) with
    /// parameters `params` (`named_parameters()`, the same cells the
    /// trainer was built from): working copies, FP32 masters, optimizer and
    /// scaler state, and the step counters (`user.trainer.applied`,
    /// `user.trainer.skipped`). Generators and buffers are the caller's to add.
    pub fn capture(&self, model: &str, params: &[(String, Var)]) -> Result<Checkpoint> {
        let (p, step) = (self.precision, self.steps as u64);
        let mut c = match &self.opt {
            Opt::Plain(o) => Checkpoint::capture(model, p, step, params, o, &self.scaler)?,
            Opt::Master(o) => Checkpoint::capture(model, p, step, params, o, &self.scaler)?,
        };
        c.extra.insert(APPLIED.into(), self.applied.to_string());
        c.extra.insert(SKIPPED.into(), self.skipped.to_string());
        Ok(c)
    }

    /// Restores a [`capture`](Self::capture) of a run of the same model,
    /// precision and optimizer: validates everything first (a typed error
    /// naming the mismatch, nothing written), then writes the parameters,
    /// masters, optimizer and scaler state and the step counters.
    pub fn restore(&mut self, c: &Checkpoint, model: &str, params: &[(String, Var)]) -> Result<()> {
        let applied: usize = extra_value(c, APPLIED)?;
        let skipped: u64 = extra_value(c, SKIPPED)?;
        if applied as u64 + skipped != c.step {
            return Err(CheckpointError::Metadata {
                key: format!("user.{APPLIED}"),
                reason: format!("{applied} applied and {skipped} skipped steps do not add up to step {}", c.step),
            }
            .into());
        }
        match &mut self.opt {
            Opt::Plain(o) => c.restore(model, self.precision, params, o, &mut self.scaler)?,
            Opt::Master(o) => c.restore(model, self.precision, params, o, &mut self.scaler)?,
        }
        self.steps = usize::try_from(c.step).unwrap_or(usize::MAX);
        self.applied = applied;
        self.skipped = skipped;
        Ok(())
    }

    /// One step: zero the gradients, run `loss` under the precision's
    /// autocast, backward from the scaled loss, unscale, step unless a
    /// gradient is Inf/NaN, move the scale.
    pub fn step(&mut self, loss: impl FnOnce() -> Result<Var>) -> Result<StepReport> {
        let lr = self.schedule.lr(self.applied);
        match &mut self.opt {
            Opt::Plain(o) => {
                o.zero_grad();
                o.set_lr(lr)?;
            }
            Opt::Master(o) => {
                o.zero_grad();
                o.inner_mut().set_lr(lr)?;
            }
        }
        let loss = autocast(self.precision, loss)?;
        let value = loss.item()?;
        let scale = self.scale_factor();
        self.scaler.scale(&loss)?.backward()?;
        if let Some(max_norm) = self.clip {
            // Clip what the update will use: the unscaled FP32 gradients.
            // Without a scaler, master weights move their gradients into
            // the masters here (unscaling by 1); the step then uses them.
            match &mut self.opt {
                Opt::Plain(o) => {
                    self.scaler.unscale(o)?;
                    clip_grad_norm(o.params(), max_norm)?;
                }
                Opt::Master(o) => {
                    if self.scaler.is_enabled() {
                        self.scaler.unscale(o)?;
                    } else {
                        o.unscale_grads(1.0)?;
                    }
                    clip_grad_norm(o.masters(), max_norm)?;
                }
            }
        }
        let outcome = match &mut self.opt {
            Opt::Plain(o) => self.scaler.step(o)?,
            Opt::Master(o) => self.scaler.step(o)?,
        };
        self.scaler.update()?;
        self.steps += 1;
        let applied = outcome.applied();
        if applied {
            self.applied += 1;
        } else {
            self.skipped += 1;
        }
        Ok(StepReport { loss: value, applied, scale })
    }
}

/// What a task reports after training.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Eval {
    /// Test accuracy, a fraction (classifiers).
    pub test_accuracy: Option<f64>,
    /// Validation loss in nats per token (language models).
    pub val_loss_nats: Option<f64>,
}

/// A model and its data, as [`run`] trains it.
pub trait Task {
    /// One training batch.
    type Batch;

    /// The example's name in the record (`mnist_mlp`).
    fn name(&self) -> &'static str;

    /// The model's parameters with their paths.
    fn named_parameters(&self) -> Vec<(String, Var)>;

    /// Training (`true`) or evaluation mode (batch norm, dropout).
    fn set_training(&mut self, training: bool);

    /// Batches in one epoch.
    fn steps_per_epoch(&self, batch_size: usize) -> usize;

    /// One epoch of batches, shuffled with `rng`.
    fn epoch<'a>(
        &'a self,
        batch_size: usize,
        rng: &mut Generator,
    ) -> Result<Box<dyn Iterator<Item = Result<Self::Batch>> + 'a>>;

    /// The loss of one batch (run inside the precision's autocast).
    fn loss(&self, batch: &Self::Batch) -> Result<Var>;

    /// Evaluates the trained model (in evaluation mode, under `precision`).
    fn evaluate(&self, precision: Precision) -> Result<Eval>;

    /// The model's buffers (state that training changes but the optimizer
    /// does not own: batch norm's running statistics) by path, for
    /// checkpoints. None by default.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Restores buffer `path` of [`named_buffers`](Self::named_buffers).
    fn set_buffer(&self, path: &str, _value: Tensor) -> Result<()> {
        Err(CheckpointError::Unexpected { tensor: format!("buffer/{path}") }.into())
    }

    /// Whether a checkpoint may hold buffer `path` although a fresh task
    /// lists no such buffer (state that exists only once training has
    /// run, such as a carried recurrent state). None by default.
    fn takes_buffer(&self, _path: &str) -> bool {
        false
    }
}

/// How [`run`] trains (the resolved flags).
pub type RunOptions = Resolved;

/// What [`run`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The run's record.
    pub record: Record,
    /// The loss of every step, in order.
    pub losses: Vec<f64>,
}

/// Trains `task` as `opts` says and returns its record and loss curve;
/// draws the progress bar, and prints a summary line per epoch unless
/// `opts.json` (or the bar is shown). No checkpoints: [`run_with`].
pub fn run<T: Task>(task: &mut T, opts: &RunOptions) -> Result<Outcome> {
    run_with(task, opts, &Checkpointing::default())
}

/// [`run`], with the loss scaler built from `scaler` instead of
/// `opts.loss_scale`'s defaults (another initial scale, say; `opts.loss_scale`
/// still decides whether there is a scaler and names it in the record), and
/// `observe` called before every step with the task, the trainer (its scale
/// and step count) and the batch about to be trained on.
pub fn run_observed<T: Task>(
    task: &mut T,
    opts: &RunOptions,
    scaler: Option<ScalerConfig>,
    observe: impl FnMut(&T, &Trainer, &T::Batch) -> Result<()>,
) -> Result<Outcome> {
    train(task, opts, &Checkpointing::default(), scaler, observe)
}

/// Metadata keys of a run's checkpoint beyond [`Trainer::capture`]'s
/// (stored as `user.<key>`).
const APPLIED: &str = "trainer.applied";
const SKIPPED: &str = "trainer.skipped";
const EPOCH: &str = "run.epoch";
const EPOCH_BATCHES: &str = "run.epoch_batches";
/// The generator of the data order, as it was at the start of epoch `run.epoch`.
const DATA_ORDER: &str = "data_order";
/// The losses of the steps of epoch `run.epoch` so far (f64).
const EPOCH_LOSSES: &str = "run.epoch_losses";

/// The flags that define a run, as a resumed run must repeat them: flag,
/// metadata key, value.
fn recipe(opts: &RunOptions, total: usize) -> [(&'static str, &'static str, String); 7] {
    [
        ("--loss-scale", "run.loss_scale", opts.loss_scale.to_string()),
        ("--optimizer", "run.optimizer", opts.optimizer.to_string()),
        ("--lr", "run.lr", opts.lr.to_string()),
        ("--batch-size", "run.batch_size", opts.batch_size.to_string()),
        ("--epochs", "run.epochs", opts.epochs.to_string()),
        ("--steps", "run.total_steps", total.to_string()),
        ("--seed", "run.seed", opts.seed.to_string()),
    ]
}

fn extra_value<V: std::str::FromStr>(c: &Checkpoint, key: &str) -> Result<V> {
    let raw = c.extra.get(key).ok_or_else(|| CheckpointError::Metadata {
        key: format!("user.{key}"),
        reason: "missing (not a checkpoint of a training example)".into(),
    })?;
    raw.parse().map_err(|_| {
        CheckpointError::Metadata { key: format!("user.{key}"), reason: format!("{raw:?} is not a valid value") }.into()
    })
}

/// Where in the data a run stands: epoch `epoch` (0-based), whose order
/// the generator state `order` (taken before the epoch's shuffle) gives,
/// with `batches` of its batches taken and their `losses`.
struct Position {
    epoch: usize,
    order: GeneratorState,
    batches: usize,
    losses: Vec<f64>,
}

/// Writes the run's checkpoint into `dir`; returns the file.
fn save<T: Task>(
    task: &T,
    trainer: &Trainer,
    opts: &RunOptions,
    total: usize,
    at: &Position,
    dir: &Path,
) -> Result<std::path::PathBuf> {
    let mut c = trainer.capture(task.name(), &task.named_parameters())?;
    for (_, key, value) in recipe(opts, total) {
        c.extra.insert(key.into(), value);
    }
    c.extra.insert(EPOCH.into(), at.epoch.to_string());
    c.extra.insert(EPOCH_BATCHES.into(), at.batches.to_string());
    c.rngs.push((DATA_ORDER.into(), at.order));
    c.buffers = task.named_buffers();
    c.buffers.push((EPOCH_LOSSES.into(), Tensor::from_vec(at.losses.clone(), &[at.losses.len()])?));
    Ok(c.save_in(dir)?)
}

/// Loads the checkpoint in `dir` and restores it into `task` and
/// `trainer` after checking that it belongs to this example, precision
/// mode and recipe; returns where the saved run stood.
fn resume<T: Task>(task: &T, trainer: &mut Trainer, opts: &RunOptions, total: usize, dir: &Path) -> Result<Position> {
    let c = Checkpoint::load_from(dir)?;
    // The model and the mode first: they explain any other difference.
    if c.model != task.name() {
        return Err(CheckpointError::OtherModel { expected: task.name().into(), found: c.model.clone() }.into());
    }
    if c.precision != opts.precision {
        return Err(CheckpointError::Precision { expected: opts.precision, found: c.precision }.into());
    }
    for (flag, key, value) in recipe(opts, total) {
        let saved: String = extra_value(&c, key)?;
        if saved != value {
            return Err(ExampleError::ResumeMismatch { flag, checkpoint: saved, run: value });
        }
    }
    let epoch: usize = extra_value(&c, EPOCH)?;
    let batches: usize = extra_value(&c, EPOCH_BATCHES)?;
    let order = c.rng(DATA_ORDER)?;
    let losses = c.buffers.iter().find(|(n, _)| n == EPOCH_LOSSES).map(|(_, t)| t);
    let losses = losses.ok_or_else(|| CheckpointError::Missing { tensor: format!("buffer/{EPOCH_LOSSES}") })?;
    let losses = c.buffer(EPOCH_LOSSES, &[losses.numel()], DType::F64)?.to_vec::<f64>()?;
    if batches > task.steps_per_epoch(opts.batch_size) || losses.len() != batches {
        return Err(CheckpointError::Metadata {
            key: format!("user.{EPOCH_BATCHES}"),
            reason: format!(
                "{batches} batches taken of an epoch of {}, with {} losses",
                task.steps_per_epoch(opts.batch_size),
                losses.len()
            ),
        }
        .into());
    }
    let buffers = task.named_buffers();
    let mut values = Vec::with_capacity(buffers.len());
    for (name, t) in &buffers {
        values.push((name.clone(), c.buffer(name, t.shape(), t.dtype())?.clone()));
    }
    for (name, t) in &c.buffers {
        if name == EPOCH_LOSSES || buffers.iter().any(|(b, _)| b == name) {
            continue;
        }
        if !task.takes_buffer(name) {
            return Err(CheckpointError::Unexpected { tensor: format!("buffer/{name}") }.into());
        }
        values.push((name.clone(), t.clone()));
    }
    trainer.restore(&c, task.name(), &task.named_parameters())?;
    for (name, t) in values {
        task.set_buffer(&name, t)?;
    }
    Ok(Position { epoch, order, batches, losses })
}

/// [`run`] with checkpoints: continues the run saved by `--resume`'s
/// directory (checked to be of this task, precision and recipe), stops
/// after `--stop-after` steps, and saves into `--save`'s directory at each
/// epoch's end (or every `--save-every` steps) and when it stops. A resumed
/// run ends bit-identical to the uninterrupted one (parameters, optimizer,
/// scaler, data order, buffers, record); its [`Outcome::losses`] holds only
/// the steps it ran. Time spent saving is not counted in `seconds`.
pub fn run_with<T: Task>(task: &mut T, opts: &RunOptions, ckpt: &Checkpointing) -> Result<Outcome> {
    train(task, opts, ckpt, None, |_, _, _| Ok(()))
}

/// The loop behind [`run`], [`run_observed`] and [`run_with`].
fn train<T: Task>(
    task: &mut T,
    opts: &RunOptions,
    ckpt: &Checkpointing,
    scaler: Option<ScalerConfig>,
    mut observe: impl FnMut(&T, &Trainer, &T::Batch) -> Result<()>,
) -> Result<Outcome> {
    crate::args::init_threads(opts.threads)?;
    let per_epoch = task.steps_per_epoch(opts.batch_size);
    let planned = per_epoch * opts.epochs;
    let total = opts.max_steps.map_or(planned, |m| m.min(planned));
    let stop = ckpt.stop_after.map_or(total, |s| s.min(total));
    let config = TrainerConfig {
        precision: opts.precision,
        loss_scale: opts.loss_scale,
        optimizer: opts.optimizer,
        lr: opts.lr,
        total_steps: total,
        warmup_steps: opts.warmup_steps,
        clip_grad_norm: opts.clip_grad_norm,
    };
    let mut trainer = Trainer::new(&config, task.named_parameters())?;
    if let Some(c) = scaler
        && opts.loss_scale != LossScale::None
    {
        trainer.scaler = GradScaler::new(c)?;
    }
    task.set_training(true);
    let mut rng = Generator::new(opts.seed ^ 0x5eed_5eed);
    let mut at = Position { epoch: 0, order: rng.state(), batches: 0, losses: Vec::new() };
    if let Some(dir) = &ckpt.resume {
        at = resume(task, &mut trainer, opts, total, dir)?;
        rng = Generator::from_state(&at.order);
    }
    let first_steps = trainer.steps();
    let progress = Progress::new(total.saturating_sub(first_steps) as u64, opts.json);
    let mut saving = Duration::ZERO;
    let mut saved_at = None;
    let mut save_now = |trainer: &Trainer, at: &Position, task: &T| -> Result<()> {
        let Some(dir) = &ckpt.save else { return Ok(()) };
        if saved_at == Some(trainer.steps()) {
            return Ok(());
        }
        let t = Instant::now();
        let path = save(task, trainer, opts, total, at, dir)?;
        saving += t.elapsed();
        saved_at = Some(trainer.steps());
        progress.note(&format!("saved step {} to {}", trainer.steps(), path.display()));
        Ok(())
    };
    memory::reset_peak();
    mixprec::autograd::saved::reset_peak();
    let start = Instant::now();
    let mut losses = Vec::with_capacity(total.saturating_sub(first_steps));
    let first_epoch = at.epoch;
    for epoch in first_epoch..opts.epochs {
        if trainer.steps() >= stop {
            break;
        }
        progress.epoch(epoch + 1, opts.epochs);
        let epoch_start = Instant::now();
        let skip = if epoch == first_epoch { at.batches } else { 0 };
        if epoch != first_epoch {
            at = Position { epoch, order: rng.state(), batches: 0, losses: Vec::new() };
        }
        let mut batches = task.epoch(opts.batch_size, &mut rng)?;
        for _ in 0..skip {
            batches.next().transpose()?;
        }
        for batch in batches {
            let batch = batch?;
            observe(task, &trainer, &batch)?;
            let report = trainer.step(|| task.loss(&batch))?;
            at.batches += 1;
            at.losses.push(report.loss);
            losses.push(report.loss);
            progress.step(report.loss, trainer.reported_scale());
            if ckpt.save_every.is_some_and(|n| trainer.steps() % n == 0) {
                save_now(&trainer, &at, task)?;
            }
            if trainer.steps() >= stop {
                break;
            }
        }
        if ckpt.save_every.is_none() && at.batches == per_epoch {
            save_now(&trainer, &at, task)?;
        }
        if !opts.json && !progress.is_visible() {
            println!(
                "epoch {}/{}: train loss {:.4}, {:.1} s, skipped {} steps so far",
                epoch + 1,
                opts.epochs,
                mean(&at.losses),
                epoch_start.elapsed().as_secs_f64(),
                trainer.skipped_steps()
            );
        }
    }
    save_now(&trainer, &at, task)?;
    let seconds = start.elapsed().saturating_sub(saving).as_secs_f64();
    progress.finish();
    let mem = memory::stats();
    let activation = mixprec::autograd::saved::saved_bytes().peak;
    task.set_training(false);
    let eval = task.evaluate(opts.precision)?;
    let steps = trainer.steps();
    let record = Record {
        example: task.name().to_string(),
        precision: opts.precision.name().to_string(),
        loss_scale: opts.loss_scale.to_string(),
        epochs: opts.epochs as u64,
        steps: steps as u64,
        batch_size: opts.batch_size as u64,
        lr: opts.lr,
        seed: opts.seed,
        threads: opts.threads as u64,
        isa: mixprec::kernels::active_isa().to_string(),
        final_train_loss: finite(mean(&at.losses)),
        test_accuracy: eval.test_accuracy,
        val_loss_nats: eval.val_loss_nats,
        perplexity: eval.val_loss_nats.map(f64::exp),
        seconds,
        steps_per_second: finite((steps - first_steps) as f64 / seconds),
        peak_tensor_bytes: mem.total.peak as u64,
        peak_tensor_bytes_by_dtype: BytesByDtype {
            f32: mem.dtype(DType::F32).peak as u64,
            f16: mem.dtype(DType::F16).peak as u64,
            bf16: mem.dtype(DType::BF16).peak as u64,
        },
        peak_activation_bytes: activation as u64,
        skipped_steps: trainer.skipped_steps(),
        final_loss_scale: trainer.reported_scale().map(f64::from),
    };
    Ok(Outcome { record, losses })
}

/// Prints a record: the JSON line with `--json`, a readable summary otherwise.
pub fn report(record: &Record, json: bool) {
    if json {
        println!("{}", record.to_json());
        return;
    }
    let opt = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map_or_else(|| "-".to_string(), f);
    println!(
        "{} {} (loss scale {}), {} steps in {:.1} s ({} steps/s, {} threads, {}): train loss {}, test accuracy {}, val loss {} nats/char (perplexity {}), skipped {}, final scale {}, peak tensors {:.1} MiB, saved for backward {:.1} MiB",
        record.example,
        record.precision,
        record.loss_scale,
        record.steps,
        record.seconds,
        opt(record.steps_per_second, &|v| format!("{v:.1}")),
        record.threads,
        record.isa,
        opt(record.final_train_loss, &|v| format!("{v:.4}")),
        opt(record.test_accuracy, &|v| format!("{:.2}%", v * 100.0)),
        opt(record.val_loss_nats, &|v| format!("{v:.4}")),
        opt(record.perplexity, &|v| format!("{v:.2}")),
        record.skipped_steps,
        opt(record.final_loss_scale, &|v| format!("{v}")),
        record.peak_tensor_bytes as f64 / 1048576.0,
        record.peak_activation_bytes as f64 / 1048576.0,
    );
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// The fraction of `set` that `logits` classifies correctly, in chunks of
/// 1000 images (FP32, MNIST normalisation), without a tape, under
/// `precision`'s autocast.
pub fn accuracy(set: &ImageSet, precision: Precision, logits: impl Fn(&Tensor) -> Result<Var>) -> Result<f64> {
    let n = set.len();
    let mut correct = 0usize;
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(1000) {
        let batch = set.batch(chunk, DType::F32, Normalize::MNIST)?;
        let out = no_grad(|| autocast(precision, || logits(&batch.inputs)))?;
        let pred = out.value().to_dtype(DType::F32)?.argmax_indices(-1)?;
        correct += pred.iter().zip(&batch.targets).filter(|(p, t)| p == t).count();
    }
    Ok(correct as f64 / n.max(1) as f64)
}

/// Exit status of an example's `main`: prints the error (with its causes)
/// to stderr and returns 1, or 0.
pub fn exit_with(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}
