//! Loss scaling with PyTorch `GradScaler` semantics (the paper's steps 6–9).
//!
//! The scale multiplies the loss before backward so small activation
//! gradients stay inside FP16's range; gradients are divided by it before
//! the update. Dynamic scaling: any Inf/NaN gradient skips the step and
//! multiplies the scale by `backoff_factor`; after `growth_interval`
//! consecutive clean steps it is multiplied by `growth_factor`, unless that
//! would overflow to Inf (then only the counter resets). The scale is an f32,
//! as in PyTorch, so trajectories match it bit for bit.

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
}

impl Default for ScalerConfig {
    fn default() -> Self {
        ScalerConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            dynamic: true,
        }
    }
}

impl ScalerConfig {
    /// A fixed scale that never changes (steps with Inf/NaN are still skipped).
    pub fn fixed(scale: f32) -> Self {
        ScalerConfig { init_scale: scale, dynamic: false, ..ScalerConfig::default() }
    }
}

/// The scale and the count of consecutive clean steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleState {
    /// The current loss scale.
    pub scale: f32,
    /// Consecutive clean steps since the last change.
    pub growth_tracker: u32,
}

impl ScaleState {
    /// The state a scaler starts in.
    pub fn new(config: &ScalerConfig) -> Self {
        ScaleState { scale: config.init_scale, growth_tracker: 0 }
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
            let successful = self.growth_tracker + 1;
            if successful == config.growth_interval {
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
