//! Optimizers ([`Sgd`], [`Adam`], [`AdamW`]), learning-rate schedules
//! ([`schedule`]) and gradient clipping ([`clip_grad_norm`],
//! [`clip_grad_value`]).
//!
//! Optimizers hold handles to the parameters they update (the cells the
//! model owns) and keep their state (momentum, moments) in FP32 whatever the
//! parameter dtype; an f16/bf16 parameter is widened, updated in FP32 and
//! rounded once. Semantics follow PyTorch's `torch.optim` (non-fused path).

mod adam;
mod clip;
pub mod schedule;
mod sgd;
mod update;

pub use adam::{Adam, AdamConfig, AdamState, AdamW};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use sgd::{Sgd, SgdConfig, SgdState};

use mixprec_tensor::kernels::slice::{Dst, Src};

use crate::error::{AutogradError, Result};
use crate::var::Var;

/// What every optimizer does.
pub trait Optimizer {
    /// Updates every parameter that has a gradient (those without one are
    /// skipped), then bumps their versions.
    fn step(&mut self) -> Result<()>;

    /// The parameters it updates.
    fn params(&self) -> &[Var];

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (schedules call this before each step).
    ///
    /// A learning rate that is NaN, infinite or negative is refused with
    /// [`AutogradError`](crate::AutogradError) and the optimizer keeps the
    /// rate it had.
    fn set_lr(&mut self, lr: f64) -> Result<()>;

    /// Whether [`Optimizer::step_param_scaled`] is implemented (it is for
    /// [`Sgd`], [`Adam`] and [`AdamW`]).
    fn steps_scaled(&self) -> bool {
        false
    }

    /// Updates parameter `i` (in `params()` order; an f32 one) exactly as
    /// [`Optimizer::step`] would if its gradient were `f32(grad[j]) ·
    /// inv_scale` (one rounding), reading `grad` in place instead of its own
    /// gradient, and writes the updated values rounded into `copy` in the
    /// same pass; then bumps its version. FP32 master weights use it to
    /// update from their f16/bf16 working copy's loss-scaled gradient
    /// straight into that copy, with no FP32 gradient buffer. The default
    /// refuses ([`Optimizer::steps_scaled`] is false).
    fn step_param_scaled(&mut self, i: usize, grad: Src<'_>, inv_scale: f32, copy: Option<Dst<'_>>) -> Result<()> {
        let _ = (i, grad, inv_scale, copy);
        Err(AutogradError::bad("step_param_scaled", "this optimizer only steps from its parameters' own gradients"))
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.params() {
            p.zero_grad();
        }
    }
}

/// Whether `x` is a non-negative number (false for NaN).
pub(crate) fn non_negative(x: f64) -> bool {
    x >= 0.0
}

/// `lr` if it is a finite non-negative number, else an error naming `op`.
pub(crate) fn checked_lr(op: &'static str, lr: f64) -> Result<f64> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(lr)
    } else {
        Err(crate::AutogradError::bad(
            op,
            format!("set_lr({lr}): the learning rate must be a finite non-negative number"),
        ))
    }
}
