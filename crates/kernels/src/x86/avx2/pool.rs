//! 2×2 stride-2 max pooling on AVX2 integer lanes (`reduce::max_pool2x2`).
//!
//! Eight windows at a time: the stored bits of two input rows become
//! order-preserving integer keys (every NaN the largest key, `−0` and `+0`
//! equal), the window's two pairs are compared as a tree `(x00 vs x01) vs
//! (x10 vs x11)`, a later candidate winning only with a strictly larger key,
//! which is the reference's row-major scan; the winner's bits are selected,
//! not converted. Tails run the same code on a zero-padded stack copy.

use std::arch::x86_64::*;

use half::{bf16, f16};

use super::Avx2;
use crate::slice::{Dst, Src};

/// Windows per block.
const BLOCK: usize = 8;

/// The 2×2 pool of `planes` planes; f64 goes to the reference.
#[inline(always)]
pub(crate) fn max_pool2x2(s: Avx2, planes: usize, h: usize, w: usize, x: Src<'_>, y: Dst<'_>, idx: &mut [u8]) {
    match (x, y) {
        (Src::F32(x), Dst::F32(y)) => planes_of(planes, h, w, x, y, idx, |a0, a1, y, i| rows_f32(s, a0, a1, y, i)),
        (Src::F16(x), Dst::F16(y)) => {
            planes_of(planes, h, w, f16_bits(x), f16_bits_mut(y), idx, |a0, a1, y, i| rows_16(s, 0x7C00, a0, a1, y, i))
        }
        (Src::Bf16(x), Dst::Bf16(y)) => planes_of(planes, h, w, bf16_bits(x), bf16_bits_mut(y), idx, |a0, a1, y, i| {
            rows_16(s, 0x7F80, a0, a1, y, i)
        }),
        (x, y) => crate::scalar::reduce::max_pool2x2_scalar(planes, h, w, x, y, idx),
    }
}

fn f16_bits(x: &[f16]) -> &[u16] {
    // SAFETY: `f16` is `repr(transparent)` over `u16`; same length and alignment.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

fn f16_bits_mut(x: &mut [f16]) -> &mut [u16] {
    // SAFETY: `f16` is `repr(transparent)` over `u16`; every bit pattern is valid both ways.
    unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast(), x.len()) }
}

fn bf16_bits(x: &[bf16]) -> &[u16] {
    // SAFETY: `bf16` is `repr(transparent)` over `u16`; same length and alignment.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

fn bf16_bits_mut(x: &mut [bf16]) -> &mut [u16] {
    // SAFETY: `bf16` is `repr(transparent)` over `u16`; every bit pattern is valid both ways.
    unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast(), x.len()) }
}

/// Calls `row(a0, a1, y, idx)` for each output row: its two input rows
/// (`w` elements each, the first `2·⌊w/2⌋` used) and its outputs.
#[inline(always)]
fn planes_of<T: Copy>(
    planes: usize,
    h: usize,
    w: usize,
    x: &[T],
    y: &mut [T],
    idx: &mut [u8],
    mut row: impl FnMut(&[T], &[T], &mut [T], &mut [u8]),
) {
    let (oh, ow) = (h / 2, w / 2);
    if oh == 0 || ow == 0 {
        return;
    }
    for (p, (yp, ip)) in y.chunks_exact_mut(oh * ow).zip(idx.chunks_exact_mut(oh * ow)).take(planes).enumerate() {
        let xp = &x[p * h * w..][..h * w];
        for (oy, (yr, ir)) in yp.chunks_exact_mut(ow).zip(ip.chunks_exact_mut(ow)).enumerate() {
            let a = &xp[2 * oy * w..][..2 * w];
            row(&a[..w], &a[w..], yr, ir);
        }
    }
}

/// The blocks of one output row, then its tail through zero-padded copies.
#[inline(always)]
fn blocks<T: Copy + Default>(
    a0: &[T],
    a1: &[T],
    y: &mut [T],
    idx: &mut [u8],
    mut block: impl FnMut(&[T], &[T], &mut [T], &mut [u8; BLOCK]),
) {
    let n = y.len();
    let full = n / BLOCK * BLOCK;
    for (b, (yb, ib)) in y[..full].chunks_exact_mut(BLOCK).zip(idx[..full].chunks_exact_mut(BLOCK)).enumerate() {
        let ib: &mut [u8; BLOCK] = ib.try_into().expect("a block of offsets");
        block(&a0[2 * b * BLOCK..][..2 * BLOCK], &a1[2 * b * BLOCK..][..2 * BLOCK], yb, ib);
    }
    let rest = n - full;
    if rest > 0 {
        let (mut r0, mut r1) = ([T::default(); 2 * BLOCK], [T::default(); 2 * BLOCK]);
        r0[..2 * rest].copy_from_slice(&a0[2 * full..2 * n]);
        r1[..2 * rest].copy_from_slice(&a1[2 * full..2 * n]);
        let (mut yb, mut ib) = ([T::default(); BLOCK], [0u8; BLOCK]);
        block(&r0, &r1, &mut yb, &mut ib);
        y[full..].copy_from_slice(&yb[..rest]);
        idx[full..].copy_from_slice(&ib[..rest]);
    }
}

/// One output row of f16 (`inf` `0x7C00`) or bf16 (`0x7F80`) bits.
#[inline(always)]
fn rows_16(_: Avx2, inf: i16, a0: &[u16], a1: &[u16], y: &mut [u16], idx: &mut [u8]) {
    blocks(a0, a1, y, idx, |r0, r1, yb, ib| {
        assert!(r0.len() >= 2 * BLOCK && r1.len() >= 2 * BLOCK && yb.len() >= BLOCK);
        // SAFETY: AVX2 present (the `Avx2` token); the loads read the 16
        // elements of `r0` and `r1` asserted above, the store writes the 8 of `yb`.
        unsafe {
            let (x0, x1) = (_mm256_loadu_si256(r0.as_ptr().cast()), _mm256_loadu_si256(r1.as_ptr().cast()));
            let (k0, k1) = (keys16(x0, inf), keys16(x1, inf));
            // Each 32-bit lane holds one pair: the left element in its low half.
            let lo = _mm256_set1_epi32(0xFFFF);
            let left = |k: __m256i| _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(k));
            let (v, i) = tree(
                [
                    _mm256_and_si256(x0, lo),
                    _mm256_srli_epi32::<16>(x0),
                    _mm256_and_si256(x1, lo),
                    _mm256_srli_epi32::<16>(x1),
                ],
                [left(k0), _mm256_srai_epi32::<16>(k0), left(k1), _mm256_srai_epi32::<16>(k1)],
            );
            // Values fit 16 bits unsigned: pack, then gather the two halves.
            let v = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(v, v));
            _mm_storeu_si128(yb.as_mut_ptr().cast(), _mm256_castsi256_si128(v));
            *ib = offsets(i);
        }
    });
}

/// One output row of f32 bits.
#[inline(always)]
fn rows_f32(_: Avx2, a0: &[f32], a1: &[f32], y: &mut [f32], idx: &mut [u8]) {
    blocks(a0, a1, y, idx, |r0, r1, yb, ib| {
        assert!(r0.len() >= 2 * BLOCK && r1.len() >= 2 * BLOCK && yb.len() >= BLOCK);
        // SAFETY: AVX2 present (the `Avx2` token); the loads read the 16
        // elements of `r0` and `r1` asserted above, the store writes the 8 of `yb`.
        unsafe {
            // Left and right elements of the 8 pairs, in the lane order
            // [0 1 4 5 | 2 3 6 7] that `shuffle_ps` gives (undone at the end).
            let split = |r: &[f32]| {
                let (a, b) = (_mm256_loadu_ps(r.as_ptr()), _mm256_loadu_ps(r.as_ptr().add(BLOCK)));
                (
                    _mm256_castps_si256(_mm256_shuffle_ps::<0b1000_1000>(a, b)),
                    _mm256_castps_si256(_mm256_shuffle_ps::<0b1101_1101>(a, b)),
                )
            };
            let ((l0, r0), (l1, r1)) = (split(r0), split(r1));
            let (v, i) = tree([l0, r0, l1, r1], [keys32(l0), keys32(r0), keys32(l1), keys32(r1)]);
            let (v, i) = (_mm256_permute4x64_epi64::<0b1101_1000>(v), _mm256_permute4x64_epi64::<0b1101_1000>(i));
            _mm256_storeu_si256(yb.as_mut_ptr().cast(), v);
            *ib = offsets(i);
        }
    });
}

/// [`crate::reduce::max_pool2x2`]'s order on 16-bit float bits `b` as i16:
/// non-negative values keep their bits, negative ones flip their magnitude
/// bits and add one (so `−0` is 0), any NaN (magnitude above `inf`) is
/// `i16::MAX`.
#[inline(always)]
fn keys16(b: __m256i, inf: i16) -> __m256i {
    // SAFETY: AVX2 present (only called from the token's kernels); registers only.
    unsafe {
        let mag = _mm256_set1_epi16(0x7FFF);
        let s = _mm256_srai_epi16::<15>(b);
        let k = _mm256_sub_epi16(_mm256_xor_si256(b, _mm256_and_si256(s, mag)), s);
        let nan = _mm256_cmpgt_epi16(_mm256_and_si256(b, mag), _mm256_set1_epi16(inf));
        _mm256_blendv_epi8(k, mag, nan)
    }
}

/// [`keys16`] for f32 bits (`i32::MAX` for NaN).
#[inline(always)]
fn keys32(b: __m256i) -> __m256i {
    // SAFETY: AVX2 present (only called from the token's kernels); registers only.
    unsafe {
        let mag = _mm256_set1_epi32(0x7FFF_FFFF);
        let s = _mm256_srai_epi32::<31>(b);
        let k = _mm256_sub_epi32(_mm256_xor_si256(b, _mm256_and_si256(s, mag)), s);
        let nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, mag), _mm256_set1_epi32(0x7F80_0000));
        _mm256_blendv_epi8(k, mag, nan)
    }
}

/// The window maxima of 8 windows from the values `v` and keys `k` (32-bit
/// lanes) of their elements `[x00, x01, x10, x11]`: the values and the
/// offsets `0..4`.
#[inline(always)]
fn tree(v: [__m256i; 4], k: [__m256i; 4]) -> (__m256i, __m256i) {
    // SAFETY: AVX2 present (only called from the token's kernels); registers only.
    unsafe {
        let right = _mm256_cmpgt_epi32(k[1], k[0]);
        let top = _mm256_blendv_epi8(v[0], v[1], right);
        let right_low = _mm256_cmpgt_epi32(k[3], k[2]);
        let bottom = _mm256_blendv_epi8(v[2], v[3], right_low);
        // A pair's key is the larger of its two (the winner's).
        let low = _mm256_cmpgt_epi32(_mm256_max_epi32(k[2], k[3]), _mm256_max_epi32(k[0], k[1]));
        let col = _mm256_and_si256(_mm256_blendv_epi8(right, right_low, low), _mm256_set1_epi32(1));
        let i = _mm256_or_si256(col, _mm256_and_si256(low, _mm256_set1_epi32(2)));
        (_mm256_blendv_epi8(top, bottom, low), i)
    }
}

/// The 8 offsets (`0..4` in 32-bit lanes) as bytes.
#[inline(always)]
fn offsets(i: __m256i) -> [u8; BLOCK] {
    // SAFETY: AVX2 present (only called from the token's kernels); registers only.
    unsafe {
        let b = _mm256_packus_epi16(_mm256_packus_epi32(i, i), _mm256_setzero_si256());
        let lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(b)) as u32;
        let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(b)) as u32;
        (u64::from(lo) | u64::from(hi) << 32).to_le_bytes()
    }
}
