//! [`GradScaler`]: loss scaling with the API PyTorch users know —
//! `scale(&loss)`, `unscale(&mut opt)`, `step(&mut opt)`, `update()` — on
//! top of the [`ScaleState`] machine.
//!
//! One scaler serves several optimizers and losses: each optimizer is
//! unscaled and checked at most once per step (a second `unscale` is
//! [`AmpError::AlreadyUnscaled`]), `step` skips exactly the optimizers whose
//! own gradients held an Inf or NaN, and `update` moves the scale once per
//! step from whether any optimizer found one. Gradient accumulation needs
//! nothing special: backward the scaled loss of every micro-batch, then
//! unscale once. Clipping goes between `unscale` and `step`.
//!
//! Beyond PyTorch: `step` says why it skipped ([`StepOutcome::Skipped`]);
//! the scaler counts applied steps, so a learning-rate schedule driven by
//! [`GradScaler::applied_steps`] (or [`GradScaler::step_scheduled`])
//! advances only on steps that changed the weights; a scale floor or a
//! consecutive-skip limit stops a run whose scale collapses with
//! [`AmpError::ScaleCollapsed`], naming the first op on the tape whose
//! output went non-finite. After the first warm-up steps, unscale, step
//! and update allocate nothing.

use std::cell::{Cell, RefCell};
use std::fmt;

use half::{bf16, f16};
use mixprec_autograd::Var;
use mixprec_autograd::optim::schedule::LrSchedule;
use mixprec_autograd::scan::{self, ScanGuard};
use mixprec_autograd::tensor::kernels::amp::{
    has_non_finite, has_non_finite_bf16, has_non_finite_f16, max_abs_finite, unscale_and_check,
};
use mixprec_autograd::tensor::kernels::slice::{Dst, Src};
use mixprec_autograd::tensor::{DType, Tensor};

use crate::error::{AmpError, Result};
use crate::scaler::{ScaleState, ScalerConfig};

/// Which non-finite value a gradient held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NonFiniteKind {
    /// At least one NaN.
    NaN,
    /// ±Inf and no NaN.
    Inf,
}

/// The first parameter (in the optimizer's order) whose unscaled gradient
/// was non-finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NonFinite {
    /// Its index in the optimizer's parameter list.
    pub param: usize,
    /// NaN or Inf.
    pub kind: NonFiniteKind,
}

/// What [`GradScaler::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepOutcome {
    /// The optimizer stepped.
    Applied,
    /// The optimizer did not step: a gradient was non-finite.
    Skipped {
        /// Which optimizer of this step (in the order they were first
        /// unscaled or stepped, from 0) and which of its parameters.
        optimizer: usize,
        /// The offending gradient.
        found: NonFinite,
    },
}

impl StepOutcome {
    /// Whether the optimizer stepped.
    pub fn applied(&self) -> bool {
        matches!(self, StepOutcome::Applied)
    }
}

/// What the scaler drives: an optimizer whose gradients it can unscale and
/// check, and which it can step. Every `mixprec_autograd` optimizer is
/// one; master weights are one that moves f16 gradients into their FP32
/// copies while unscaling.
pub trait AmpOptimizer {
    /// The parameters it updates (identity of the optimizer within a step).
    fn amp_params(&self) -> &[Var];

    /// Multiplies every gradient by `inv_scale` in place and reports the
    /// first non-finite one. The default unscales FP32 gradients in one
    /// pass each (`unscale_and_check`); f16/bf16 gradients are an error
    /// (unscaling in f16 would itself underflow: keep FP32 masters).
    fn unscale_grads(&mut self, inv_scale: f32) -> Result<Option<NonFinite>> {
        unscale_params(self.amp_params(), inv_scale)
    }

    /// Checks every gradient for Inf/NaN ahead of an [`AmpOptimizer::amp_step`]
    /// that may unscale them by `inv_scale` as it updates, instead of now:
    /// what [`GradScaler::step`] calls when no [`GradScaler::unscale`] came
    /// first, so nothing reads the unscaled gradients in between. Returns
    /// the first non-finite one, as `unscale_grads` would. The default is
    /// `unscale_grads`; [`crate::MasterWeights`] checks its f16/bf16 working
    /// gradients in place and unscales them inside its optimizer's update.
    fn unscale_for_step(&mut self, inv_scale: f32) -> Result<Option<NonFinite>> {
        self.unscale_grads(inv_scale)
    }

    /// Applies the update.
    fn amp_step(&mut self) -> Result<()>;

    /// Whether [`AmpOptimizer::amp_step_param_scaled`] is available
    /// (every `autograd` optimizer that implements
    /// `Optimizer::step_param_scaled`). False by default.
    fn amp_steps_scaled(&self) -> bool {
        false
    }

    /// Updates parameter `i` of [`AmpOptimizer::amp_params`] (an f32 one)
    /// from the gradient `f32(grad[j]) · inv_scale` read in place, writing
    /// the updated values rounded into `copy` in the same pass (autograd's
    /// `Optimizer::step_param_scaled`). The default refuses.
    fn amp_step_param_scaled(&mut self, i: usize, grad: Src<'_>, inv_scale: f32, copy: Option<Dst<'_>>) -> Result<()> {
        let _ = (i, grad, inv_scale, copy);
        Err(mixprec_autograd::AutogradError::BadArgument {
            op: "amp_step_param_scaled",
            reason: "this optimizer only steps from its parameters' own gradients".into(),
        }
        .into())
    }

    /// Sets the learning rate (schedules): every `autograd` optimizer and
    /// `MasterWeights` do; the default refuses with
    /// [`AmpError::NoLearningRate`].
    fn amp_set_lr(&mut self, _lr: f64) -> Result<()> {
        Err(AmpError::NoLearningRate)
    }
}

/// Unscales the FP32 gradients of `params` in place; the first non-finite.
pub fn unscale_params(params: &[Var], inv_scale: f32) -> Result<Option<NonFinite>> {
    let mut first = None;
    for (i, p) in params.iter().enumerate() {
        let Some(param) = p.param() else { continue };
        if param.dtype() != DType::F32 {
            if param.grad().is_some() {
                return Err(AmpError::LowPrecisionGradient { param: i, dtype: param.dtype() });
            }
            continue;
        }
        let bad = param.update_grad(|g| -> Result<bool> {
            let data = g.data_mut::<f32>().map_err(mixprec_autograd::AutogradError::from)?;
            Ok(unscale_and_check(data, inv_scale))
        });
        if let Some(bad) = bad
            && bad?
            && first.is_none()
        {
            let kind = param.grad().map_or(NonFiniteKind::Inf, |g| classify(&g));
            first = Some(NonFinite { param: i, kind });
        }
    }
    Ok(first)
}

/// The first parameter whose gradient (any float dtype) holds an Inf or NaN.
/// Reads the gradients in place: no allocation unless one is found.
fn first_non_finite(params: &[Var]) -> Option<NonFinite> {
    params.iter().enumerate().find_map(|(i, p)| {
        let bad = p.param()?.with_grad(|g| {
            let g = g?;
            let fast = match g.dtype() {
                DType::F32 => g.as_slice::<f32>().map(has_non_finite),
                DType::F16 => g.as_slice::<f16>().map(has_non_finite_f16),
                DType::BF16 => g.as_slice::<bf16>().map(has_non_finite_bf16),
                _ => None,
            };
            Some(fast.unwrap_or_else(|| g.to_vec_f64().is_ok_and(|v| v.iter().any(|x| !x.is_finite()))))
        })?;
        bad.then(|| NonFinite { param: i, kind: p.grad().map_or(NonFiniteKind::Inf, |g| classify(&g)) })
    })
}

/// NaN if any element is NaN, else Inf.
pub(crate) fn classify(t: &Tensor) -> NonFiniteKind {
    match t.to_vec_f32() {
        Ok(v) if v.iter().any(|x| x.is_nan()) => NonFiniteKind::NaN,
        _ => NonFiniteKind::Inf,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Unscaled,
    Stepped,
}

/// An optimizer the scaler has seen, kept across steps so that a steady
/// training loop allocates nothing here. `stage` is `None` until it is
/// unscaled or stepped in the current step; `order` is its position among
/// this step's optimizers.
#[derive(Clone, Debug)]
struct PerOptimizer {
    key: Vec<u64>,
    stage: Option<Stage>,
    order: usize,
    found: Option<NonFinite>,
}

thread_local! {
    /// The non-finite scan the scaler keeps on after a skipped step while a
    /// floor or skip limit is set, so a collapse can name the op.
    static DIAGNOSE: RefCell<Option<ScanGuard>> = const { RefCell::new(None) };
}

/// Why [`GradScaler::update`] stopped training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CollapseReason {
    /// The scale fell below [`ScalerConfig::min_scale`].
    ScaleFloor,
    /// More than [`ScalerConfig::max_consecutive_skips`] steps in a row
    /// were skipped.
    SkipLimit,
}

/// What a collapsing loss scale knows about its cause: carried by
/// [`AmpError::ScaleCollapsed`].
#[derive(Clone, Debug, PartialEq)]
pub struct Collapse {
    /// Floor or skip limit.
    pub reason: CollapseReason,
    /// The scale after the last backoff.
    pub scale: f32,
    /// Skipped steps in a row, the last included.
    pub consecutive_skips: u32,
    /// Whether the last scaled loss was itself Inf or NaN (`None`: `scale`
    /// was not called this step).
    pub loss_non_finite: Option<bool>,
    /// The first op of the last step whose output held Inf/NaN (autograd's
    /// scan; `None` if the scan was off or every output was finite).
    pub first_op: Option<scan::NonFinite>,
    /// The first node of the last backward whose output gradient held
    /// Inf/NaN (as `first_op`).
    pub first_grad: Option<scan::NonFinite>,
    /// The last step's first skipped optimizer and parameter.
    pub skipped: Option<(usize, NonFinite)>,
}

impl fmt::Display for Collapse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason {
            CollapseReason::ScaleFloor => "fell below its floor",
            CollapseReason::SkipLimit => "kept falling past the consecutive-skip limit",
        };
        write!(f, "loss scale {what}: {} after {} skipped steps in a row", self.scale, self.consecutive_skips)?;
        match self.loss_non_finite {
            Some(true) => write!(f, "; the loss itself was non-finite")?,
            Some(false) => write!(f, "; the loss was finite (the overflow is in backward)")?,
            None => {}
        }
        let at = |n: &scan::NonFinite| {
            if n.scope.is_empty() { format!("`{}`", n.op) } else { format!("`{}` in `{}`", n.op, n.scope) }
        };
        match (&self.first_op, &self.first_grad) {
            (Some(n), _) => write!(f, "; first non-finite output: op {}", at(n))?,
            (None, Some(n)) => write!(f, "; forward finite, first non-finite gradient at op {}", at(n))?,
            (None, None) => write!(
                f,
                "; no op recorded (turn on autograd::scan::scan_nonfinite() to find the first non-finite op)"
            )?,
        }
        if let Some((o, nf)) = self.skipped {
            write!(f, "; optimizer {o} parameter {} had {:?}", nf.param, nf.kind)?;
        }
        Ok(())
    }
}

/// What [`GradScaler::state`] exports: everything that determines future
/// scales, bit for bit (the settings, the scale and the growth tracker).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalerSnapshot {
    /// The settings.
    pub config: ScalerConfig,
    /// The scale and the clean-step count.
    pub state: ScaleState,
    /// Whether scaling is on.
    pub enabled: bool,
    /// Steps skipped so far.
    pub skipped_steps: u64,
    /// Steps applied so far (what learning-rate schedules count).
    pub applied_steps: u64,
    /// Skipped steps in a row, up to the last update.
    pub consecutive_skips: u32,
}

/// Loss scaling with PyTorch `GradScaler`'s API and semantics.
///
/// ```
/// # use mixprec_amp::{GradScaler, AmpOptimizer};
/// # fn train(model_loss: impl Fn() -> mixprec_autograd::Var, opt: &mut impl AmpOptimizer) -> mixprec_amp::Result<()> {
/// let mut scaler = GradScaler::new(Default::default())?;
/// for _ in 0..3 {
///     let loss = model_loss();
///     scaler.scale(&loss)?.backward()?;
///     scaler.step(opt)?; // unscales, skips on Inf/NaN
///     scaler.update()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct GradScaler {
    config: ScalerConfig,
    state: ScaleState,
    enabled: bool,
    skipped: u64,
    applied: u64,
    consecutive: u32,
    optimizers: Vec<PerOptimizer>,
    /// Optimizers unscaled or stepped in the current step.
    touched: usize,
    /// Largest scaled |g| seen this step (statistics-driven scaling).
    step_max: f32,
    /// Whether this step's scaled loss was non-finite (`None`: not seen); a
    /// cell so `scale` keeps PyTorch's shared-reference signature.
    loss_non_finite: Cell<Option<bool>>,
}

impl GradScaler {
    /// A scaler with these settings (dynamic or static); the settings must
    /// be sane (a finite positive scale, growth > 1, backoff in (0, 1), a
    /// positive interval).
    pub fn new(config: ScalerConfig) -> Result<GradScaler> {
        let ok = config.init_scale.is_finite()
            && config.init_scale > 0.0
            && (!config.dynamic
                || (config.growth_factor > 1.0
                    && config.growth_factor.is_finite()
                    && config.backoff_factor > 0.0
                    && config.backoff_factor < 1.0
                    && config.growth_interval > 0))
            && config.min_scale >= 0.0
            && config.min_scale.is_finite()
            && config.statistics.is_none_or(|st| {
                st.headroom >= 1.0
                    && st.headroom.is_finite()
                    && (0.0..=1.0).contains(&st.peak_decay)
                    && st.overflow_backoff > 0.0
                    && st.overflow_backoff < 1.0
            });
        if !ok {
            return Err(AmpError::BadScalerConfig { config });
        }
        Ok(GradScaler::with_state(config, true))
    }

    fn with_state(config: ScalerConfig, enabled: bool) -> GradScaler {
        GradScaler {
            config,
            state: ScaleState::new(&config),
            enabled,
            skipped: 0,
            applied: 0,
            consecutive: 0,
            optimizers: Vec::new(),
            touched: 0,
            step_max: 0.0,
            loss_non_finite: Cell::new(None),
        }
    }

    /// A scaler that does nothing but step (scale 1, no checks): the same
    /// training loop then serves FP32 and bf16 runs.
    pub fn disabled() -> GradScaler {
        GradScaler::with_state(ScalerConfig::fixed(1.0), false)
    }

    /// Whether scaling is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The current scale (1 when disabled).
    pub fn scale_factor(&self) -> f32 {
        if self.enabled { self.state.scale } else { 1.0 }
    }

    /// The settings.
    pub fn config(&self) -> &ScalerConfig {
        &self.config
    }

    /// Steps skipped so far (an optimizer step not applied counts once per
    /// scaler step, however many optimizers skipped it).
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// Steps applied so far: updates after which no optimizer had skipped
    /// (with a disabled scaler, every update). A learning-rate schedule
    /// indexed by this count advances only when the weights changed.
    pub fn applied_steps(&self) -> u64 {
        self.applied
    }

    /// Skipped steps in a row, up to the last update.
    pub fn consecutive_skips(&self) -> u32 {
        self.consecutive
    }

    /// `loss × scale` (the paper's step 6), differentiable, so backward
    /// carries scaled gradients. The loss itself as it is when disabled.
    /// Notes whether the loss is finite (for a collapse diagnosis).
    pub fn scale(&self, loss: &Var) -> Result<Var> {
        if !self.enabled {
            return Ok(loss.clone());
        }
        if loss.numel() == 1 {
            let finite = loss.item()?.is_finite();
            self.loss_non_finite.set(Some(self.loss_non_finite.get().unwrap_or(false) || !finite));
        }
        Ok(loss.mul_scalar(self.state.scale as f64)?)
    }

    /// Divides `opt`'s gradients by the scale (the paper's step 8) and
    /// records whether any is Inf/NaN. Call it once per optimizer per step,
    /// before clipping; `step` calls it if you did not. Returns the first
    /// non-finite gradient, if any.
    pub fn unscale<O: AmpOptimizer + ?Sized>(&mut self, opt: &mut O) -> Result<Option<NonFinite>> {
        if !self.enabled {
            return Ok(None);
        }
        Ok(self.unscale_at(opt, false)?.1)
    }

    /// [`GradScaler::unscale`], also returning the optimizer's index; with
    /// `for_step` (from `step`, nothing reads the gradients before the
    /// update) through [`AmpOptimizer::unscale_for_step`].
    fn unscale_at<O: AmpOptimizer + ?Sized>(
        &mut self,
        opt: &mut O,
        for_step: bool,
    ) -> Result<(usize, Option<NonFinite>)> {
        let i = self.activate(opt.amp_params(), Stage::Unscaled)?;
        if self.config.statistics.is_some() {
            self.step_max = self.step_max.max(max_abs_grad(opt.amp_params()));
        }
        // PyTorch: inv_scale = 1/scale formed in f64 and rounded to f32.
        let inv_scale = (1.0 / self.state.scale as f64) as f32;
        let found = if for_step { opt.unscale_for_step(inv_scale) } else { opt.unscale_grads(inv_scale) };
        match found {
            Ok(found) => {
                self.optimizers[i].found = found;
                Ok((i, found))
            }
            Err(e) => {
                self.optimizers[i].stage = None;
                self.touched -= 1;
                Err(e)
            }
        }
    }

    /// Marks the optimizer with these parameters as seen this step at
    /// `stage`; errors if it already was. Its index in `optimizers`.
    fn activate(&mut self, params: &[Var], stage: Stage) -> Result<usize> {
        let i = match self.optimizers.iter().position(|s| same_key(&s.key, params)) {
            Some(i) => {
                if let Some(seen) = self.optimizers[i].stage {
                    return Err(match (seen, stage) {
                        (Stage::Unscaled, Stage::Unscaled) => AmpError::AlreadyUnscaled,
                        (Stage::Stepped, Stage::Unscaled) => AmpError::UnscaleAfterStep,
                        (_, Stage::Stepped) => AmpError::AlreadyStepped,
                    });
                }
                i
            }
            None => {
                let key = params.iter().map(|v| v.param().map_or(0, |p| p.id())).collect();
                self.optimizers.push(PerOptimizer { key, stage: None, order: 0, found: None });
                self.optimizers.len() - 1
            }
        };
        let s = &mut self.optimizers[i];
        s.stage = Some(stage);
        s.order = self.touched;
        s.found = None;
        self.touched += 1;
        Ok(i)
    }

    /// Steps `opt` unless one of its gradients is non-finite (the paper's
    /// step 9), unscaling first if [`GradScaler::unscale`] was not called.
    /// If it was, the gradients are checked again (one read pass): a
    /// backward in between may have added an Inf or NaN.
    /// A second `step` of the same optimizer before `update` is an error.
    pub fn step<O: AmpOptimizer + ?Sized>(&mut self, opt: &mut O) -> Result<StepOutcome> {
        if !self.enabled {
            opt.amp_step()?;
            return Ok(StepOutcome::Applied);
        }
        let i = match self.optimizers.iter().position(|s| same_key(&s.key, opt.amp_params())) {
            Some(i) if self.optimizers[i].stage == Some(Stage::Stepped) => return Err(AmpError::AlreadyStepped),
            Some(i) if self.optimizers[i].stage == Some(Stage::Unscaled) => {
                // A backward between `unscale` and `step` may have added Inf
                // or NaN since the check: look again (one read pass), so no
                // step ever applies a non-finite gradient.
                if self.optimizers[i].found.is_none() {
                    self.optimizers[i].found = first_non_finite(opt.amp_params());
                }
                i
            }
            _ => self.unscale_at(opt, true)?.0,
        };
        let s = &mut self.optimizers[i];
        s.stage = Some(Stage::Stepped);
        match s.found {
            Some(found) => Ok(StepOutcome::Skipped { optimizer: s.order, found }),
            None => {
                opt.amp_step()?;
                Ok(StepOutcome::Applied)
            }
        }
    }

    /// [`GradScaler::step`] with the learning rate set first from
    /// `schedule` at [`GradScaler::applied_steps`]: a skipped step leaves
    /// the schedule where it was, so after `n` applied steps the optimizer
    /// has used exactly `schedule.lr(0..n)`, however many were skipped.
    pub fn step_scheduled<O: AmpOptimizer + ?Sized>(
        &mut self,
        opt: &mut O,
        schedule: &impl LrSchedule,
    ) -> Result<StepOutcome> {
        opt.amp_set_lr(schedule.lr(usize::try_from(self.applied).unwrap_or(usize::MAX)))?;
        self.step(opt)
    }

    /// Moves the scale once for this step (halve on any Inf/NaN, grow after
    /// `growth_interval` clean steps; or from the gradient statistics) and
    /// starts the next step. At least one optimizer must have been unscaled
    /// or stepped since the last one.
    ///
    /// With a floor or a skip limit set ([`ScalerConfig::with_limits`]),
    /// a skip that takes the scale below the floor or the run past the
    /// limit returns [`AmpError::ScaleCollapsed`] (the scale has moved;
    /// training should stop). Its diagnosis names the first op whose output
    /// (or gradient) went non-finite: after a skipped step the scaler keeps
    /// autograd's non-finite scan on (on this thread) until a clean step,
    /// so every step of a collapse after the first is scanned; keep
    /// `autograd::scan::scan_nonfinite()` on yourself to cover the first.
    pub fn update(&mut self) -> Result<()> {
        if !self.enabled {
            self.applied += 1;
            return Ok(());
        }
        if self.touched == 0 {
            return Err(AmpError::NothingToUpdate);
        }
        let skipped = self
            .optimizers
            .iter()
            .filter(|s| s.stage.is_some())
            .filter_map(|s| s.found.map(|f| (s.order, f)))
            .min_by_key(|(o, _)| *o);
        let found = skipped.is_some();
        let max_abs = (self.step_max as f64 / self.state.scale as f64) as f32;
        self.state.update_observed(&self.config, found, max_abs);
        if found {
            self.skipped += 1;
            self.consecutive = self.consecutive.saturating_add(1);
        } else {
            self.applied += 1;
            self.consecutive = 0;
        }
        let loss_non_finite = self.loss_non_finite.take();
        // Forget optimizers not seen this step; reset the others in place.
        self.optimizers.retain(|s| s.stage.is_some());
        for s in &mut self.optimizers {
            s.stage = None;
            s.found = None;
        }
        self.touched = 0;
        self.step_max = 0.0;
        let c = &self.config;
        let reason = if found && c.min_scale > 0.0 && self.state.scale < c.min_scale {
            Some(CollapseReason::ScaleFloor)
        } else if found && c.max_consecutive_skips > 0 && self.consecutive > c.max_consecutive_skips {
            Some(CollapseReason::SkipLimit)
        } else {
            None
        };
        let diagnosis = reason.map(|reason| Collapse {
            reason,
            scale: self.state.scale,
            consecutive_skips: self.consecutive,
            loss_non_finite,
            first_op: scan::first_nonfinite(),
            first_grad: scan::first_nonfinite_grad(),
            skipped,
        });
        if c.has_limits() {
            // The scan stays on while steps keep skipping.
            let keep = found && reason.is_none();
            let dropped = DIAGNOSE.with(|d| {
                let mut d = d.borrow_mut();
                match (keep, d.is_some()) {
                    (true, false) => {
                        *d = Some(scan::scan_nonfinite());
                        None
                    }
                    (false, true) => d.take(),
                    _ => None,
                }
            });
            drop(dropped);
            scan::clear_nonfinite();
        }
        match diagnosis {
            Some(d) => Err(AmpError::ScaleCollapsed(Box::new(d))),
            None => Ok(()),
        }
    }

    /// Whether the current step found an Inf/NaN so far.
    pub fn found_non_finite(&self) -> bool {
        self.optimizers.iter().any(|s| s.stage.is_some() && s.found.is_some())
    }

    /// The scale state (scale and growth tracker).
    pub fn scale_state(&self) -> ScaleState {
        self.state
    }

    /// Everything needed to resume bit-exactly (call between steps).
    pub fn state(&self) -> ScalerSnapshot {
        ScalerSnapshot {
            config: self.config,
            state: self.state,
            enabled: self.enabled,
            skipped_steps: self.skipped,
            applied_steps: self.applied,
            consecutive_skips: self.consecutive,
        }
    }

    /// Restores a [`ScalerSnapshot`]; the step in progress, if any, is
    /// forgotten. A snapshot no run could produce (invalid settings, a
    /// negative or non-finite scale, a growth tracker at or past the
    /// interval of a dynamic scaler without statistics, a negative or
    /// non-finite peak, a peak ratio below 1 or non-finite) is
    /// [`AmpError::BadScalerConfig`] or [`AmpError::BadScalerState`].
    pub fn load_state(&mut self, snap: ScalerSnapshot) -> Result<()> {
        let mut fresh = if snap.enabled { GradScaler::new(snap.config)? } else { GradScaler::disabled() };
        // A scale of 0 is reachable (repeated backoff underflows), so it resumes too.
        let reachable = snap.state.scale.is_finite()
            && snap.state.scale >= 0.0
            && snap.state.statistics_valid()
            && (!snap.config.dynamic
                || snap.config.statistics.is_some()
                || snap.state.growth_tracker < snap.config.growth_interval);
        if snap.enabled && !reachable {
            return Err(AmpError::BadScalerState { state: snap.state, growth_interval: snap.config.growth_interval });
        }
        fresh.state = snap.state;
        fresh.skipped = snap.skipped_steps;
        fresh.applied = snap.applied_steps;
        fresh.consecutive = snap.consecutive_skips;
        *self = fresh;
        Ok(())
    }
}

/// An optimizer is known by the identities of its parameters.
fn same_key(key: &[u64], params: &[Var]) -> bool {
    key.len() == params.len() && key.iter().zip(params).all(|(&k, v)| v.param().map_or(0, |p| p.id()) == k)
}

/// The largest |g| over the parameters' gradients (non-finite values
/// ignored: an overflow is reported by the check, not by this statistic).
fn max_abs_grad(params: &[Var]) -> f32 {
    let mut m = 0.0f32;
    for p in params {
        if let Some(p) = p.param() {
            m = m.max(p.with_grad(|g| g.map_or(0.0, max_abs)));
        }
    }
    m
}

/// Through the kernel (`kernels::amp::max_abs_finite`): NaN and ±Inf
/// skipped, +0 when nothing finite; other dtypes widened to f32 first.
fn max_abs(t: &Tensor) -> f32 {
    if let Some(s) = t.as_slice::<f32>() {
        max_abs_finite(Src::F32(s))
    } else if let Some(s) = t.as_slice::<f16>() {
        max_abs_finite(Src::F16(s))
    } else if let Some(s) = t.as_slice::<bf16>() {
        max_abs_finite(Src::Bf16(s))
    } else {
        t.to_vec_f32().map_or(0.0, |v| max_abs_finite(Src::F32(&v)))
    }
}
