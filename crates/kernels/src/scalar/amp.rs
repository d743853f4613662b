//! Reference loss-scaling kernels.
//!
//! NaN and ±Inf in an input, or a product that overflows to ±Inf, make the
//! check return `true`; the products are still written (IEEE semantics:
//! NaN·s = NaN, Inf·s = ±Inf, ±0·s = ±0, subnormals are kept).

use half::f16;

use super::convert::f16_bits_to_f32;

/// `grads[i] *= inv_scale`; true if any input or result is non-finite.
pub fn unscale_and_check_scalar(grads: &mut [f32], inv_scale: f32) -> bool {
    let mut bad = false;
    for g in grads.iter_mut() {
        let r = *g * inv_scale;
        bad |= !g.is_finite() | !r.is_finite();
        *g = r;
    }
    bad
}

/// `out[i] = f32(grads[i]) * inv_scale`; true if any input or result is non-finite.
///
/// # Panics
/// If the lengths differ.
pub fn unscale_and_check_f16_scalar(grads: &[f16], inv_scale: f32, out: &mut [f32]) -> bool {
    assert_eq!(grads.len(), out.len(), "unscale_and_check_f16: grads and out lengths differ");
    let mut bad = false;
    for (o, &g) in out.iter_mut().zip(grads) {
        let g = f16_bits_to_f32(g.to_bits());
        let r = g * inv_scale;
        bad |= !g.is_finite() | !r.is_finite();
        *o = r;
    }
    bad
}
