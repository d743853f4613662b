//! Reference f32 ↔ f16/bf16 conversions, one element at a time, in integer
//! arithmetic (no platform instructions), round to nearest, ties to even.
//!
//! Bit-identical to `half` 2.x for every non-NaN input. NaN maps to a quiet
//! NaN of the same sign keeping the top payload bits. ±0, ±Inf and
//! subnormals (both f16's and f32's) convert exactly as IEEE 754 says: no
//! flush to zero.

use half::{bf16, f16};

/// Rounds `x` to the nearest f16 (ties to even) and returns its bits.
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = (bits >> 23) & 0xFF;
    let man = bits & 0x007F_FFFF;
    if exp == 0xFF {
        // Inf stays Inf; NaN stays NaN (quiet bit set, top payload bits kept).
        let nan = if man != 0 { 0x0200 | (man >> 13) as u16 } else { 0 };
        return sign | 0x7C00 | nan;
    }
    // Unbiased exponent rebased to f16's bias of 15.
    let e = exp as i32 - 127 + 15;
    if e >= 0x1F {
        return sign | 0x7C00;
    }
    if e <= 0 {
        // Result is an f16 subnormal or zero: shift the full significand
        // (implicit bit included) right by 14 - e and round.
        let shift = (14 - e) as u32;
        if shift > 24 {
            return sign;
        }
        let m = man | 0x0080_0000;
        let kept = m >> shift;
        let round = 1u32 << (shift - 1);
        let rest = m & ((round << 1) - 1);
        let up = rest > round || (rest == round && kept & 1 == 1);
        return sign | (kept + up as u32) as u16;
    }
    let kept = ((e as u32) << 10) | (man >> 13);
    let rest = man & 0x1FFF;
    let up = rest > 0x1000 || (rest == 0x1000 && kept & 1 == 1);
    // A carry out of the significand correctly bumps the exponent (up to Inf).
    sign | (kept + up as u32) as u16
}

/// Widens f16 bits to f32 (exact).
#[inline]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let man = (h & 0x03FF) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the significand.
            let lz = m.leading_zeros() - 22; // zeros above bit 9 within 10 bits
            let m = (m << (lz + 1)) & 0x03FF;
            sign | ((127 - 15 - lz) << 23) | (m << 13)
        }
        (0x1F, 0) => sign | 0x7F80_0000,
        (0x1F, m) => sign | 0x7FC0_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Rounds `x` to the nearest bf16 (ties to even) and returns its bits.
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7FFF_FFFF > 0x7F80_0000 {
        return ((bits >> 16) | 0x0040) as u16;
    }
    let kept = bits >> 16;
    let rest = bits & 0xFFFF;
    let up = rest > 0x8000 || (rest == 0x8000 && kept & 1 == 1);
    (kept + up as u32) as u16
}

/// Widens bf16 bits to f32 (exact; NaN stays NaN).
#[inline]
pub fn bf16_bits_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// Slice form of [`f32_to_f16_bits`].
///
/// # Panics
/// If the lengths differ.
pub fn f32_to_f16_scalar(src: &[f32], dst: &mut [f16]) {
    assert_eq!(src.len(), dst.len(), "f32_to_f16: source and destination lengths differ");
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16::from_bits(f32_to_f16_bits(s));
    }
}

/// Slice form of [`f16_bits_to_f32`].
///
/// # Panics
/// If the lengths differ.
pub fn f16_to_f32_scalar(src: &[f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "f16_to_f32: source and destination lengths differ");
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16_bits_to_f32(s.to_bits());
    }
}

/// Slice form of [`f32_to_bf16_bits`].
///
/// # Panics
/// If the lengths differ.
pub fn f32_to_bf16_scalar(src: &[f32], dst: &mut [bf16]) {
    assert_eq!(src.len(), dst.len(), "f32_to_bf16: source and destination lengths differ");
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = bf16::from_bits(f32_to_bf16_bits(s));
    }
}

/// Slice form of [`bf16_bits_to_f32`].
///
/// # Panics
/// If the lengths differ.
pub fn bf16_to_f32_scalar(src: &[bf16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "bf16_to_f32: source and destination lengths differ");
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = bf16_bits_to_f32(s.to_bits());
    }
}
