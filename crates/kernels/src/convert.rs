//! f32 ↔ f16/bf16 slice casts on the active ISA path.
//!
//! Results are bit-identical to `half` 2.x's scalar conversions for every
//! non-NaN input (round to nearest, ties to even; subnormals kept, never
//! flushed); a NaN maps to a NaN. See `docs/numerics.md`.

use half::{bf16, f16};

use crate::dispatch::{active, kernel_table};

kernel_table! {
    /// The cast kernels of one ISA path.
    pub struct Table {
        /// f32 → f16, round to nearest even.
        f32_to_f16: fn(&[f32], &mut [f16]),
        /// f16 → f32, exact.
        f16_to_f32: fn(&[f16], &mut [f32]),
        /// f32 → bf16, round to nearest even.
        f32_to_bf16: fn(&[f32], &mut [bf16]),
        /// bf16 → f32, exact.
        bf16_to_f32: fn(&[bf16], &mut [f32]),
    }
}

/// Rounds every element of `src` to f16 into `dst`.
///
/// # Panics
/// If the lengths differ.
pub fn f32_to_f16(src: &[f32], dst: &mut [f16]) {
    assert_eq!(src.len(), dst.len(), "f32_to_f16: source and destination lengths differ");
    (active().convert.f32_to_f16.f)(src, dst)
}

/// Widens every element of `src` to f32 into `dst`.
///
/// # Panics
/// If the lengths differ.
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "f16_to_f32: source and destination lengths differ");
    (active().convert.f16_to_f32.f)(src, dst)
}

/// Rounds every element of `src` to bf16 into `dst`.
///
/// # Panics
/// If the lengths differ.
pub fn f32_to_bf16(src: &[f32], dst: &mut [bf16]) {
    assert_eq!(src.len(), dst.len(), "f32_to_bf16: source and destination lengths differ");
    (active().convert.f32_to_bf16.f)(src, dst)
}

/// Widens every element of `src` to f32 into `dst`.
///
/// # Panics
/// If the lengths differ.
pub fn bf16_to_f32(src: &[bf16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "bf16_to_f32: source and destination lengths differ");
    (active().convert.bf16_to_f32.f)(src, dst)
}
