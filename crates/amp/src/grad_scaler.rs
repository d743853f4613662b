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

use mixprec_autograd::Var;
use mixprec_autograd::tensor::kernels::amp::unscale_and_check;
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

    /// Applies the update.
    fn amp_step(&mut self) -> Result<()>;
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

#[derive(Clone, Debug)]
struct PerOptimizer {
    key: Vec<u64>,
    stage: Stage,
    found: Option<NonFinite>,
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
    this_step: Vec<PerOptimizer>,
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
                    && config.growth_interval > 0));
        if !ok {
            return Err(AmpError::BadScalerConfig { config });
        }
        Ok(GradScaler { config, state: ScaleState::new(&config), enabled: true, skipped: 0, this_step: Vec::new() })
    }

    /// A scaler that does nothing but step (scale 1, no checks): the same
    /// training loop then serves FP32 and bf16 runs.
    pub fn disabled() -> GradScaler {
        let config = ScalerConfig::fixed(1.0);
        GradScaler { config, state: ScaleState::new(&config), enabled: false, skipped: 0, this_step: Vec::new() }
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

    /// `loss × scale` (the paper's step 6), differentiable, so backward
    /// carries scaled gradients. The loss itself as it is when disabled.
    pub fn scale(&self, loss: &Var) -> Result<Var> {
        if !self.enabled {
            return Ok(loss.clone());
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
        let key = key_of(opt.amp_params());
        if let Some(s) = self.this_step.iter().find(|s| s.key == key) {
            return Err(match s.stage {
                Stage::Unscaled => AmpError::AlreadyUnscaled,
                Stage::Stepped => AmpError::UnscaleAfterStep,
            });
        }
        self.this_step.push(PerOptimizer { key, stage: Stage::Unscaled, found: None });
        let i = self.this_step.len() - 1;
        // PyTorch: inv_scale = 1/scale formed in f64 and rounded to f32.
        let inv_scale = (1.0 / self.state.scale as f64) as f32;
        match opt.unscale_grads(inv_scale) {
            Ok(found) => {
                self.this_step[i].found = found;
                Ok(found)
            }
            Err(e) => {
                self.this_step.pop();
                Err(e)
            }
        }
    }

    /// Steps `opt` unless one of its gradients is non-finite (the paper's
    /// step 9), unscaling first if [`GradScaler::unscale`] was not called.
    /// A second `step` of the same optimizer before `update` is an error.
    pub fn step<O: AmpOptimizer + ?Sized>(&mut self, opt: &mut O) -> Result<StepOutcome> {
        if !self.enabled {
            opt.amp_step()?;
            return Ok(StepOutcome::Applied);
        }
        let key = key_of(opt.amp_params());
        let i = match self.this_step.iter().position(|s| s.key == key) {
            Some(i) if self.this_step[i].stage == Stage::Stepped => return Err(AmpError::AlreadyStepped),
            Some(i) => i,
            None => {
                self.unscale(opt)?;
                self.this_step.len() - 1
            }
        };
        self.this_step[i].stage = Stage::Stepped;
        match self.this_step[i].found {
            Some(found) => Ok(StepOutcome::Skipped { optimizer: i, found }),
            None => {
                opt.amp_step()?;
                Ok(StepOutcome::Applied)
            }
        }
    }

    /// Moves the scale once for this step (halve on any Inf/NaN, grow after
    /// `growth_interval` clean steps) and starts the next step. At least
    /// one optimizer must have been unscaled or stepped since the last one.
    pub fn update(&mut self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if self.this_step.is_empty() {
            return Err(AmpError::NothingToUpdate);
        }
        let found = self.this_step.iter().any(|s| s.found.is_some());
        if found {
            self.skipped += 1;
        }
        self.state.update(&self.config, found);
        self.this_step.clear();
        Ok(())
    }

    /// Whether the current step found an Inf/NaN so far.
    pub fn found_non_finite(&self) -> bool {
        self.this_step.iter().any(|s| s.found.is_some())
    }

    /// The scale state (scale and growth tracker).
    pub fn scale_state(&self) -> ScaleState {
        self.state
    }

    /// Everything needed to resume bit-exactly (call between steps).
    pub fn state(&self) -> ScalerSnapshot {
        ScalerSnapshot { config: self.config, state: self.state, enabled: self.enabled, skipped_steps: self.skipped }
    }

    /// Restores a [`ScalerSnapshot`]; the step in progress, if any, is
    /// forgotten.
    pub fn load_state(&mut self, snap: ScalerSnapshot) -> Result<()> {
        let mut fresh = if snap.enabled { GradScaler::new(snap.config)? } else { GradScaler::disabled() };
        if snap.enabled && !(snap.state.scale.is_finite() && snap.state.scale > 0.0) {
            return Err(AmpError::BadScalerConfig { config: snap.config });
        }
        fresh.state = snap.state;
        fresh.skipped = snap.skipped_steps;
        *self = fresh;
        Ok(())
    }
}

/// An optimizer is known by the identities of its parameters.
fn key_of(params: &[Var]) -> Vec<u64> {
    params.iter().map(|v| v.param().map_or(0, |p| p.id())).collect()
}
