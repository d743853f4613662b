//! 2×2 stride-2 max pooling on NEON integer lanes (`reduce::max_pool2x2`),
//! the twin of the AVX2 kernel: eight windows at a time, `ld2` splits each
//! input row into the windows' left and right elements, whose stored bits
//! become order-preserving integer keys (every NaN the largest key, `−0` and
//! `+0` equal); the window's two pairs are compared as a tree `(x00 vs x01)
//! vs (x10 vs x11)`, a later candidate winning only with a strictly larger
//! key, which is the reference's row-major scan; the winner's bits are
//! selected, not converted, so subnormals, ±Inf and NaN payloads pass
//! through unchanged. NEON has no masked loads: a tail block is copied into
//! a zeroed block first, and only its own outputs are copied back.

use std::arch::aarch64::*;

use super::Neon;
use crate::simd::pool::{BLOCK, Bits16, Block, F32};

/// A full block of [`BLOCK`] windows: two rows of `2·BLOCK` elements in,
/// `BLOCK` values and offsets out.
trait Full<T>: Copy {
    fn full(self, r0: &[T; 2 * BLOCK], r1: &[T; 2 * BLOCK], y: &mut [T; BLOCK], idx: &mut [u8; BLOCK]);
}

/// [`Block::block`] through `b`'s full block: directly when `y` holds
/// [`BLOCK`] outputs, else on zero-padded copies of the rows.
#[inline(always)]
fn by_full<T: Copy + Default, B: Full<T>>(b: B, r0: &[T], r1: &[T], y: &mut [T], idx: &mut [u8]) {
    let n = y.len();
    assert!(n <= BLOCK && r0.len() == 2 * n && r1.len() == 2 * n && idx.len() == n);
    if let (Ok(r0), Ok(r1), Ok(y), Ok(idx)) = (r0.try_into(), r1.try_into(), y.try_into(), (&mut *idx).try_into()) {
        b.full(r0, r1, y, idx);
    } else {
        let (mut p0, mut p1) = ([T::default(); 2 * BLOCK], [T::default(); 2 * BLOCK]);
        p0[..2 * n].copy_from_slice(r0);
        p1[..2 * n].copy_from_slice(r1);
        let (mut yb, mut ib) = ([T::default(); BLOCK], [0u8; BLOCK]);
        b.full(&p0, &p1, &mut yb, &mut ib);
        y.copy_from_slice(&yb[..n]);
        idx.copy_from_slice(&ib[..n]);
    }
}

impl Block<u16> for Bits16<Neon> {
    #[inline(always)]
    fn block(self, r0: &[u16], r1: &[u16], y: &mut [u16], idx: &mut [u8]) {
        by_full(self, r0, r1, y, idx);
    }
}

impl Block<f32> for F32<Neon> {
    #[inline(always)]
    fn block(self, r0: &[f32], r1: &[f32], y: &mut [f32], idx: &mut [u8]) {
        by_full(self, r0, r1, y, idx);
    }
}

impl Full<u16> for Bits16<Neon> {
    #[inline(always)]
    fn full(self, r0: &[u16; 2 * BLOCK], r1: &[u16; 2 * BLOCK], y: &mut [u16; BLOCK], idx: &mut [u8; BLOCK]) {
        // SAFETY: Advanced SIMD present (the `Neon` token); each `ld2` reads
        // the 16 elements of its row, the stores write the 8 of `y` and `idx`.
        unsafe {
            let (a, b) = (vld2q_u16(r0.as_ptr()), vld2q_u16(r1.as_ptr()));
            let inf = vdupq_n_s16(self.1);
            let k = [keys16(a.0, inf), keys16(a.1, inf), keys16(b.0, inf), keys16(b.1, inf)];
            let (v, i) = tree16([a.0, a.1, b.0, b.1], k);
            vst1q_u16(y.as_mut_ptr(), v);
            vst1_u8(idx.as_mut_ptr(), vmovn_u16(i));
        }
    }
}

impl Full<f32> for F32<Neon> {
    #[inline(always)]
    fn full(self, r0: &[f32; 2 * BLOCK], r1: &[f32; 2 * BLOCK], y: &mut [f32; BLOCK], idx: &mut [u8; BLOCK]) {
        const HALF: usize = BLOCK / 2;
        let (v0, i0) = half32(&r0[..BLOCK], &r1[..BLOCK]);
        let (v1, i1) = half32(&r0[BLOCK..], &r1[BLOCK..]);
        // SAFETY: Advanced SIMD present (the `Neon` token); the stores write
        // the 8 elements of `y` (f32 and u32 share size and alignment) and of `idx`.
        unsafe {
            vst1q_u32(y.as_mut_ptr().cast(), v0);
            vst1q_u32(y.as_mut_ptr().add(HALF).cast(), v1);
            vst1_u8(idx.as_mut_ptr(), vmovn_u16(vcombine_u16(vmovn_u32(i0), vmovn_u32(i1))));
        }
    }
}

/// The maxima and offsets of the 4 windows whose rows are `r0` and `r1`
/// (8 f32 each).
#[inline(always)]
fn half32(r0: &[f32], r1: &[f32]) -> (uint32x4_t, uint32x4_t) {
    assert!(r0.len() == BLOCK && r1.len() == BLOCK);
    // SAFETY: Advanced SIMD present (only called from the token's kernels);
    // each `ld2` reads the 8 elements of its row (f32 and u32 share size and alignment).
    unsafe {
        let (a, b) = (vld2q_u32(r0.as_ptr().cast()), vld2q_u32(r1.as_ptr().cast()));
        tree32([a.0, a.1, b.0, b.1], [keys32(a.0), keys32(a.1), keys32(b.0), keys32(b.1)])
    }
}

/// [`crate::reduce::max_pool2x2`]'s order on 16-bit float bits `b` as i16:
/// non-negative values keep their bits, negative ones flip their magnitude
/// bits and add one (so `−0` is 0), any NaN (magnitude above `inf`) is
/// `i16::MAX`.
#[inline(always)]
fn keys16(b: uint16x8_t, inf: int16x8_t) -> int16x8_t {
    // SAFETY: Advanced SIMD present (only called from the token's kernels); registers only.
    unsafe {
        let b = vreinterpretq_s16_u16(b);
        let mag = vdupq_n_s16(0x7FFF);
        let s = vshrq_n_s16::<15>(b);
        let k = vsubq_s16(veorq_s16(b, vandq_s16(s, mag)), s);
        vbslq_s16(vcgtq_s16(vandq_s16(b, mag), inf), mag, k)
    }
}

/// [`keys16`] for f32 bits (`i32::MAX` for NaN).
#[inline(always)]
fn keys32(b: uint32x4_t) -> int32x4_t {
    // SAFETY: Advanced SIMD present (only called from the token's kernels); registers only.
    unsafe {
        let b = vreinterpretq_s32_u32(b);
        let mag = vdupq_n_s32(0x7FFF_FFFF);
        let s = vshrq_n_s32::<31>(b);
        let k = vsubq_s32(veorq_s32(b, vandq_s32(s, mag)), s);
        vbslq_s32(vcgtq_s32(vandq_s32(b, mag), vdupq_n_s32(0x7F80_0000)), mag, k)
    }
}

/// The window maxima of 8 windows from the values `v` and keys `k` of their
/// elements `[x00, x01, x10, x11]`: the values and the offsets `0..4`.
#[inline(always)]
fn tree16(v: [uint16x8_t; 4], k: [int16x8_t; 4]) -> (uint16x8_t, uint16x8_t) {
    // SAFETY: Advanced SIMD present (only called from the token's kernels); registers only.
    unsafe {
        let right = vcgtq_s16(k[1], k[0]);
        let top = vbslq_u16(right, v[1], v[0]);
        let right_low = vcgtq_s16(k[3], k[2]);
        let bottom = vbslq_u16(right_low, v[3], v[2]);
        // A pair's key is the larger of its two (the winner's).
        let low = vcgtq_s16(vmaxq_s16(k[2], k[3]), vmaxq_s16(k[0], k[1]));
        let col = vandq_u16(vbslq_u16(low, right_low, right), vdupq_n_u16(1));
        (vbslq_u16(low, bottom, top), vorrq_u16(col, vandq_u16(low, vdupq_n_u16(2))))
    }
}

/// [`tree16`] on 4 windows of f32 bits.
#[inline(always)]
fn tree32(v: [uint32x4_t; 4], k: [int32x4_t; 4]) -> (uint32x4_t, uint32x4_t) {
    // SAFETY: Advanced SIMD present (only called from the token's kernels); registers only.
    unsafe {
        let right = vcgtq_s32(k[1], k[0]);
        let top = vbslq_u32(right, v[1], v[0]);
        let right_low = vcgtq_s32(k[3], k[2]);
        let bottom = vbslq_u32(right_low, v[3], v[2]);
        let low = vcgtq_s32(vmaxq_s32(k[2], k[3]), vmaxq_s32(k[0], k[1]));
        let col = vandq_u32(vbslq_u32(low, right_low, right), vdupq_n_u32(1));
        (vbslq_u32(low, bottom, top), vorrq_u32(col, vandq_u32(low, vdupq_n_u32(2))))
    }
}
