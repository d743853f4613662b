//! Kernels of the loss-scaling step (the paper's steps 8 and 9): unscale the
//! gradients and detect Inf/NaN in the same pass.

use half::f16;

use crate::dispatch::{active, kernel_table};

kernel_table! {
    /// The loss-scaling kernels of one ISA path.
    pub struct Table {
        /// In-place unscale and check.
        unscale_and_check: fn(&mut [f32], f32) -> bool,
        /// f16 gradients unscaled into f32, with the check.
        unscale_and_check_f16: fn(&[f16], f32, &mut [f32]) -> bool,
    }
}

/// Multiplies every gradient by `inv_scale` in place and returns true if any
/// input or result is non-finite (one pass). Every element is written even
/// when the answer is true.
pub fn unscale_and_check(grads: &mut [f32], inv_scale: f32) -> bool {
    (active().amp.unscale_and_check.f)(grads, inv_scale)
}

/// Writes `f32(grads[i]) * inv_scale` to `out[i]` and returns true if any
/// input or result is non-finite (one pass).
///
/// # Panics
/// If the lengths differ.
pub fn unscale_and_check_f16(grads: &[f16], inv_scale: f32, out: &mut [f32]) -> bool {
    assert_eq!(grads.len(), out.len(), "unscale_and_check_f16: grads and out lengths differ");
    (active().amp.unscale_and_check_f16.f)(grads, inv_scale, out)
}
