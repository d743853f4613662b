//! Loss scaling with PyTorch `GradScaler` semantics (the paper's steps 6–9).
//!
//! The scale multiplies the loss before backward so small activation
//! gradients stay inside FP16's range; gradients are divided by it before
//! the update. Dynamic scaling: any Inf/NaN gradient skips the step and
//! multiplies the scale by `backoff_factor`; after `growth_interval`
//! consecutive clean steps it is multiplied by `growth_factor`, unless that
//! would overflow to Inf (then only the counter resets). The scale is an f32,
//! as in PyTorch, so trajectories match it bit for bit.
//!
//! Beyond PyTorch: a scale floor and a limit on consecutive skipped steps
//! (reaching either stops training with a diagnosis, see
//! [`crate::GradScaler::update`]), and statistics-driven scaling
//! ([`StatsConfig`], the paper's §3.2 suggestion): the scale follows the
//! observed maximum gradient magnitude instead of probing by overflow.

/// Settings of a [`ScaleState`]; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalerConfig {
    /// Starting scale (PyTorch: 2^16).
    pub init_scale: f32,
    /// Multiplier after `growth_interval` clean steps (PyTorch: 2). An f64,
    /// as PyTorch's (a Python float): the product is formed in f64 and
    /// rounded to the f32 scale once.
    pub growth_factor: f64,
    /// Multiplier after a step with Inf/NaN gradients (PyTorch: 0.5); f64 as above.
    pub backoff_factor: f64,
    /// Consecutive clean steps before growth (PyTorch: 2000).
    pub growth_interval: u32,
    /// Whether the scale changes at all (false: static scaling).
    pub dynamic: bool,
    /// The smallest scale allowed (0: no floor). A backoff below it stops
    /// training: `GradScaler::update` returns `AmpError::ScaleCollapsed`.
    pub min_scale: f32,
    /// The most consecutive skipped steps allowed (0: no limit); one more
    /// stops training as the floor does.
    pub max_consecutive_skips: u32,
    /// Statistics-driven scaling instead of the growth-interval rule
    /// (`None`: PyTorch's rule). Only with `dynamic`.
    pub statistics: Option<StatsConfig>,
}

/// Statistics-driven scaling: after each clean step the scale becomes the
/// largest power of two with `scale × peak ≤ 65504 / headroom`, where
/// `peak` is the largest gradient magnitude seen recently (each step's
/// maximum |g|, unscaled, against the previous peak decayed by
/// `peak_decay`). The scale thus drops before an overflow when gradients
/// grow, and grows as soon as the headroom allows; it stays within
/// `2 × headroom` of f16's largest value. An overflow (no maximum to
/// observe) tells that the maximum was at least `65504 / scale`: that bound
/// becomes the peak, which halves the scale (for a headroom up to 2);
/// before the first clean step there are no statistics and the scale is
/// multiplied by `overflow_backoff` instead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatsConfig {
    /// Margin kept below 65504 (≥ 1): the maximum may grow this much
    /// between steps without overflowing.
    pub headroom: f32,
    /// Per-step decay of the remembered peak (in `[0, 1]`; 0: this step's
    /// maximum alone).
    pub peak_decay: f32,
    /// Multiplier of the scale after a step with Inf/NaN (in `(0, 1)`).
    pub overflow_backoff: f64,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { headroom: 1.5, peak_decay: 0.98, overflow_backoff: 1.0 / 256.0 }
    }
}

/// f16's largest finite value.
const F16_MAX: f64 = 65504.0;

impl Default for ScalerConfig {
    fn default() -> Self {
        ScalerConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            dynamic: true,
            min_scale: 0.0,
            max_consecutive_skips: 0,
            statistics: None,
        }
    }
}

impl ScalerConfig {
    /// A fixed scale that never changes (steps with Inf/NaN are still skipped).
    pub fn fixed(scale: f32) -> Self {
        ScalerConfig { init_scale: scale, dynamic: false, ..ScalerConfig::default() }
    }

    /// Statistics-driven scaling from `init_scale` with default settings.
    pub fn statistics(init_scale: f32) -> Self {
        ScalerConfig { init_scale, statistics: Some(StatsConfig::default()), ..ScalerConfig::default() }
    }

    /// The same settings with a scale floor and a consecutive-skip limit
    /// (0 turns either off).
    pub fn with_limits(self, min_scale: f32, max_consecutive_skips: u32) -> Self {
        ScalerConfig { min_scale, max_consecutive_skips, ..self }
    }

    /// Whether a floor or a skip limit is set.
    pub fn has_limits(&self) -> bool {
        self.min_scale > 0.0 || self.max_consecutive_skips > 0
    }
}

/// The scale and the count of consecutive clean steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleState {
    /// The current loss scale.
    pub scale: f32,
    /// Consecutive clean steps since the last change.
    pub growth_tracker: u32,
    /// Statistics-driven scaling: the remembered peak gradient magnitude
    /// (unscaled; 0 before the first clean step).
    pub peak: f32,
}

impl ScaleState {
    /// The state a scaler starts in.
    pub fn new(config: &ScalerConfig) -> Self {
        ScaleState { scale: config.init_scale, growth_tracker: 0, peak: 0.0 }
    }

    /// Advances by one step under `config`'s rule: PyTorch's
    /// ([`ScaleState::update`]) or, with [`ScalerConfig::statistics`], from
    /// `max_abs`, this step's largest unscaled gradient magnitude (ignored
    /// when `found_inf`).
    pub fn update_observed(&mut self, config: &ScalerConfig, found_inf: bool, max_abs: f32) {
        let Some(st) = config.statistics.filter(|_| config.dynamic) else {
            return self.update(config, found_inf);
        };
        self.growth_tracker = if found_inf { 0 } else { self.growth_tracker.saturating_add(1) };
        if found_inf && self.peak == 0.0 {
            // No statistics yet (the first steps): back off by a large step.
            self.scale = (self.scale as f64 * st.overflow_backoff) as f32;
            return;
        }
        let seen = if found_inf {
            // The maximum, unseen, was at least 65504 / scale.
            (F16_MAX / self.scale as f64) as f32
        } else {
            max_abs
        };
        self.peak = seen.max(self.peak * st.peak_decay);
        if !(self.peak > 0.0 && self.peak.is_finite()) {
            // Nothing nonzero seen yet: no statistics, keep the scale.
            self.peak = 0.0;
            return;
        }
        let room = F16_MAX / (st.headroom as f64 * self.peak as f64);
        // The largest power of two ≤ room (its binary exponent, read from
        // the bits: exact), within f32's normal range.
        let exp = ((room.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        self.scale = 2f32.powi(exp.clamp(-126, 127));
    }

    /// Advances by one step; `found_inf` is whether any gradient of any
    /// optimizer was Inf or NaN this step (PyTorch's `_amp_update_scale_`).
    pub fn update(&mut self, config: &ScalerConfig, found_inf: bool) {
        if !config.dynamic {
            return;
        }
        if found_inf {
            self.scale = (self.scale as f64 * config.backoff_factor) as f32;
            self.growth_tracker = 0;
        } else {
            // `>=` and saturation only matter for states no run reaches
            // (a tracker at or past the interval): they grow at once
            // instead of counting on to an overflow.
            let successful = self.growth_tracker.saturating_add(1);
            if successful >= config.growth_interval {
                let grown = (self.scale as f64 * config.growth_factor) as f32;
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.growth_tracker = 0;
            } else {
                self.growth_tracker = successful;
            }
        }
    }
}
