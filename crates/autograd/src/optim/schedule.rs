//! Learning-rate schedules: functions of the step number (0-based), so a
//! resumed run needs only the step. Call `opt.set_lr(schedule.lr(step))?`
//! before each step.
//!
//! - [`StepLr`]: `base·γ^⌊step / every⌋` (PyTorch's `StepLR`).
//! - [`CosineLr`]: `min + (base − min)·(1 + cos(π·step/total))/2`, then
//!   `min` (PyTorch's `CosineAnnealingLR` without restarts).
//! - [`LinearWarmup`]: the factor rises linearly from `start_factor` to 1
//!   over `steps` steps (PyTorch's `LinearLR`), then the inner schedule
//!   runs from its own step 0.

/// A learning rate per step.
pub trait LrSchedule {
    /// The learning rate at `step` (0-based).
    fn lr(&self, step: usize) -> f64;
}

/// `base` multiplied by `gamma` every `every` steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// The initial learning rate.
    pub base: f64,
    /// Steps between decays (0 is treated as 1).
    pub every: usize,
    /// The decay factor.
    pub gamma: f64,
}

impl LrSchedule for StepLr {
    fn lr(&self, step: usize) -> f64 {
        let k = step / self.every.max(1);
        self.base * self.gamma.powi(k.min(i32::MAX as usize) as i32)
    }
}

/// Half a cosine from `base` down to `min` over `total` steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineLr {
    /// The learning rate at step 0.
    pub base: f64,
    /// The learning rate from step `total` on.
    pub min: f64,
    /// Steps of the decay.
    pub total: usize,
}

impl LrSchedule for CosineLr {
    fn lr(&self, step: usize) -> f64 {
        if self.total == 0 || step >= self.total {
            return self.min;
        }
        let t = step as f64 / self.total as f64;
        self.min + (self.base - self.min) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
    }
}

/// A constant learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantLr(pub f64);

impl LrSchedule for ConstantLr {
    fn lr(&self, _step: usize) -> f64 {
        self.0
    }
}

/// Linear warm-up into another schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearWarmup<S> {
    /// Warm-up steps.
    pub steps: usize,
    /// The factor at step 0 (in `[0, 1]`).
    pub start_factor: f64,
    /// The schedule after warm-up (its step 0 is step `steps` overall); the
    /// warm-up scales its first learning rate.
    pub then: S,
}

impl<S: LrSchedule> LrSchedule for LinearWarmup<S> {
    fn lr(&self, step: usize) -> f64 {
        if step >= self.steps {
            return self.then.lr(step - self.steps);
        }
        let f = self.start_factor + (1.0 - self.start_factor) * step as f64 / self.steps as f64;
        f * self.then.lr(0)
    }
}
