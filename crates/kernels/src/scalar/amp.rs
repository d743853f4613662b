//! Reference loss-scaling and master-weight kernels.
//!
//! NaN and ±Inf in an input, or a product that overflows to ±Inf, make the
//! checks return `true`; the products are still written (IEEE semantics:
//! NaN·s = NaN, Inf·s = ±Inf, ±0·s = ±0, subnormals are kept).

use half::{bf16, f16};

use super::convert::{bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits};
use crate::slice::Src;

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

/// True if any element is ±Inf or NaN.
pub fn has_non_finite_scalar(x: &[f32]) -> bool {
    x.iter().any(|v| !v.is_finite())
}

/// True if any element is ±Inf or NaN (exponent field all ones).
pub fn has_non_finite_f16_scalar(x: &[f16]) -> bool {
    x.iter().any(|v| !f16_bits_to_f32(v.to_bits()).is_finite())
}

/// True if any element is ±Inf or NaN.
pub fn has_non_finite_bf16_scalar(x: &[bf16]) -> bool {
    x.iter().any(|v| !bf16_bits_to_f32(v.to_bits()).is_finite())
}

/// `out[i] = f16(master[i])`; true if any written value is non-finite.
///
/// # Panics
/// If the lengths differ.
pub fn master_to_f16_scalar(master: &[f32], out: &mut [f16]) -> bool {
    assert_eq!(master.len(), out.len(), "master_to_f16: master and working-copy lengths differ");
    let mut bad = false;
    for (o, &m) in out.iter_mut().zip(master) {
        let h = f32_to_f16_bits(m);
        bad |= h & 0x7C00 == 0x7C00;
        *o = f16::from_bits(h);
    }
    bad
}

/// `out[i] = bf16(master[i])`; true if any written value is non-finite.
///
/// # Panics
/// If the lengths differ.
pub fn master_to_bf16_scalar(master: &[f32], out: &mut [bf16]) -> bool {
    assert_eq!(master.len(), out.len(), "master_to_bf16: master and working-copy lengths differ");
    let mut bad = false;
    for (o, &m) in out.iter_mut().zip(master) {
        let b = f32_to_bf16_bits(m);
        bad |= b & 0x7F80 == 0x7F80;
        *o = bf16::from_bits(b);
    }
    bad
}

/// `Σ x²` over every slice in order, one FP32 accumulator.
pub fn sum_squares_scalar(slices: &[&[f32]]) -> f32 {
    let mut acc = 0.0f32;
    for x in slices {
        for &v in *x {
            acc = v.mul_add(v, acc);
        }
    }
    acc
}

/// Reference of [`crate::amp::max_abs_finite`]: magnitudes compared as
/// integers (for non-negative floats the bit patterns order as the values),
/// the patterns at or above +Inf's (±Inf, NaN) skipped.
///
/// # Panics
/// If `x` is f64.
pub fn max_abs_finite_scalar(x: Src<'_>) -> f32 {
    fn fold<T: Copy>(s: &[T], bits: impl Fn(T) -> u32, inf: u32) -> u32 {
        s.iter().map(|&x| bits(x)).filter(|&b| b < inf).fold(0, u32::max)
    }
    match x {
        Src::F32(s) => f32::from_bits(fold(s, |x| x.to_bits() & 0x7FFF_FFFF, 0x7F80_0000)),
        Src::F16(s) => f16_bits_to_f32(fold(s, |x| u32::from(x.to_bits() & 0x7FFF), 0x7C00) as u16),
        Src::Bf16(s) => bf16_bits_to_f32(fold(s, |x| u32::from(x.to_bits() & 0x7FFF), 0x7F80) as u16),
        Src::F64(_) => panic!("amp::max_abs_finite: f64 values are not supported (f32, f16 or bf16)"),
    }
}
