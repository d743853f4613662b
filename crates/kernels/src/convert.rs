//! f32 ↔ f16/bf16 slice casts on the active ISA path.
//!
//! Results are bit-identical to `half` 2.x's scalar conversions for every
//! non-NaN input (round to nearest, ties to even; subnormals kept, never
//! flushed); a NaN maps to a NaN. See `docs/numerics.md`.

use half::{bf16, f16};

use crate::dispatch::{active, kernel_table};
use crate::slice::{CHUNK, Dst, Src};

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

/// Converts `src` into `dst`, whatever their element types: one rounding to
/// nearest even (f64 → f16/bf16 rounds directly, never through f32); f32 ↔
/// f16/bf16 go through the table's cast kernels; f16 ↔ bf16 widen exactly to
/// f32 first. NaN stays NaN, ±Inf and ±0 are kept, subnormals are kept.
///
/// # Panics
/// If the lengths differ.
pub fn cast(src: Src<'_>, mut dst: Dst<'_>) {
    assert_eq!(src.len(), dst.len(), "cast: source and destination lengths differ");
    match (src, &mut dst) {
        (Src::F64(s), Dst::F64(d)) => d.copy_from_slice(s),
        (Src::F32(s), Dst::F32(d)) => d.copy_from_slice(s),
        (Src::F16(s), Dst::F16(d)) => d.copy_from_slice(s),
        (Src::Bf16(s), Dst::Bf16(d)) => d.copy_from_slice(s),
        (Src::F32(s), Dst::F16(d)) => f32_to_f16(s, d),
        (Src::F32(s), Dst::Bf16(d)) => f32_to_bf16(s, d),
        (Src::F16(s), Dst::F32(d)) => f16_to_f32(s, d),
        (Src::Bf16(s), Dst::F32(d)) => bf16_to_f32(s, d),
        (Src::F64(s), _) => {
            for (i, c) in s.chunks(CHUNK).enumerate() {
                dst.store_f64(i * CHUNK, c);
            }
        }
        (_, Dst::F64(d)) => {
            for (i, c) in d.chunks_mut(CHUNK).enumerate() {
                src.load_f64(i * CHUNK, c);
            }
        }
        (_, _) => {
            let mut buf = [0.0f32; CHUNK];
            let mut start = 0;
            while start < src.len() {
                let n = CHUNK.min(src.len() - start);
                src.load_f32(start, &mut buf[..n]);
                dst.store_f32(start, &buf[..n]);
                start += n;
            }
        }
    }
}
