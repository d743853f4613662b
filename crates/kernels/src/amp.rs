//! Kernels of the loss-scaling step and of master weights (the paper's steps
//! 8–10): unscale the gradients and detect Inf/NaN in the same pass, check a
//! buffer for Inf/NaN, write the f16/bf16 working copy of FP32 master weights,
//! the global sum of squares of a set of gradients (for norm clipping), and
//! the largest finite gradient magnitude (the statistics-driven loss scaler's).
//! Behaviour on NaN, ±Inf, ±0 and subnormals: `docs/numerics.md`.

use half::{bf16, f16};

use crate::dispatch::{active, kernel_table};
use crate::slice::Src;

kernel_table! {
    /// The loss-scaling and master-weight kernels of one ISA path.
    pub struct Table {
        /// In-place unscale and check.
        unscale_and_check: fn(&mut [f32], f32) -> bool,
        /// f16 gradients unscaled into f32, with the check.
        unscale_and_check_f16: fn(&[f16], f32, &mut [f32]) -> bool,
        /// Any ±Inf or NaN in f32 values.
        has_non_finite: fn(&[f32]) -> bool,
        /// Any ±Inf or NaN in f16 values.
        has_non_finite_f16: fn(&[f16]) -> bool,
        /// Any ±Inf or NaN in bf16 values.
        has_non_finite_bf16: fn(&[bf16]) -> bool,
        /// f16 working copy of f32 master weights, with an overflow check.
        master_to_f16: fn(&[f32], &mut [f16]) -> bool,
        /// bf16 working copy of f32 master weights, with an overflow check.
        master_to_bf16: fn(&[f32], &mut [bf16]) -> bool,
        /// Σ x² over a set of slices, FP32 accumulation.
        sum_squares: fn(&[&[f32]]) -> f32,
        /// The largest finite |x| of f32, f16 or bf16 values.
        max_abs_finite: fn(Src<'_>) -> f32,
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

/// True if any element is ±Inf or NaN (the loss scaler's overflow check on
/// a buffer that needs no unscaling).
pub fn has_non_finite(x: &[f32]) -> bool {
    (active().amp.has_non_finite.f)(x)
}

/// True if any element is ±Inf or NaN.
pub fn has_non_finite_f16(x: &[f16]) -> bool {
    (active().amp.has_non_finite_f16.f)(x)
}

/// True if any element is ±Inf or NaN.
pub fn has_non_finite_bf16(x: &[bf16]) -> bool {
    (active().amp.has_non_finite_bf16.f)(x)
}

/// Writes the f16 working copy of FP32 master weights (`working[i] =
/// f16(master[i])`, round to nearest even, bit-identical to
/// [`crate::convert::f32_to_f16`]) and returns true if any written value is
/// ±Inf or NaN: a non-finite master weight, or one of magnitude ≥ 65520 that
/// f16 cannot hold. One pass.
///
/// # Panics
/// If the lengths differ.
pub fn master_to_f16(master: &[f32], working: &mut [f16]) -> bool {
    assert_eq!(master.len(), working.len(), "master_to_f16: master and working-copy lengths differ");
    (active().amp.master_to_f16.f)(master, working)
}

/// Writes the bf16 working copy of FP32 master weights (bit-identical to
/// [`crate::convert::f32_to_bf16`]) and returns true if any written value is
/// ±Inf or NaN. One pass.
///
/// # Panics
/// If the lengths differ.
pub fn master_to_bf16(master: &[f32], working: &mut [bf16]) -> bool {
    assert_eq!(master.len(), working.len(), "master_to_bf16: master and working-copy lengths differ");
    (active().amp.master_to_bf16.f)(master, working)
}

/// `Σ_slices Σ_i x_i²`, accumulated in FP32: the squared global gradient
/// norm for clipping. NaN in, NaN out; an Inf (or a sum beyond f32's range)
/// gives +Inf. Error bound against exact arithmetic: `docs/numerics.md`.
pub fn sum_squares(grads: &[&[f32]]) -> f32 {
    (active().amp.sum_squares.f)(grads)
}

/// The largest `|x|` over the finite elements of `x` (f32, f16 or bf16),
/// widened exactly to f32; `+0.0` when there is none (empty, all ±0, or all
/// non-finite). NaN and ±Inf are skipped, not propagated: an overflow is the
/// Inf/NaN check's to report. ±0 count as +0; subnormals are compared as the
/// values they are (no flush to zero). Every path returns the same bits.
///
/// # Panics
/// If `x` is f64.
pub fn max_abs_finite(x: Src<'_>) -> f32 {
    (active().amp.max_abs_finite.f)(x)
}
