//! Gradient clipping, as PyTorch's `clip_grad_norm_` and `clip_grad_value_`.
//!
//! The global norm is `√(Σ_p Σ_i g²)` over every parameter's gradient,
//! accumulated in f64 (an f16 gradient's squares cannot overflow). When it
//! exceeds `max_norm`, every gradient is multiplied by
//! `max_norm / (norm + 1e-6)`. A non-finite norm is returned as it is and
//! scales the gradients to NaN, as PyTorch does with
//! `error_if_nonfinite=False` (the loss scaler reads Inf/NaN as information).

use mixprec_tensor::kernels::reduce::{self, ReduceOp};
use mixprec_tensor::kernels::slice::Dst;

use crate::error::{AutogradError, Result};
use crate::optim::non_negative;
use crate::util;
use crate::var::Var;

/// Scales the gradients of `params` so their global L2 norm is at most
/// `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(params: &[Var], max_norm: f64) -> Result<f64> {
    if !non_negative(max_norm) {
        return Err(AutogradError::bad("clip_grad_norm", format!("max_norm {max_norm} must be a non-negative number")));
    }
    let mut sum = 0.0f64;
    for p in params {
        if let Some(g) = p.grad() {
            let g = g.contiguous();
            let Some(src) = util::src(&g) else { continue };
            let mut out = [0.0f64];
            reduce::reduce_rows(ReduceOp::SumSq, src, 1, g.numel(), Dst::F64(&mut out));
            sum += out[0];
        }
    }
    let norm = sum.sqrt();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 || norm.is_nan() {
        for p in params {
            if let Some(param) = p.param() {
                param.update_grad(|g| g.mul_scalar_(factor));
            }
        }
    }
    Ok(norm)
}

/// Clamps every gradient element of `params` to `[−clip, clip]`.
pub fn clip_grad_value(params: &[Var], clip: f64) -> Result<()> {
    if !non_negative(clip) {
        return Err(AutogradError::bad("clip_grad_value", format!("clip {clip} must be a non-negative number")));
    }
    for p in params {
        if let Some(param) = p.param()
            && let Some(r) = param.update_grad(|g| -> Result<()> {
                *g = g.clamp(-clip, clip)?;
                Ok(())
            })
        {
            r?;
        }
    }
    Ok(())
}
