//! 2×2 stride-2 max pooling on AVX2 integer lanes (`reduce::max_pool2x2`).
//!
//! Eight windows at a time: the stored bits of two input rows become
//! order-preserving integer keys (every NaN the largest key, `−0` and `+0`
//! equal), the window's two pairs are compared as a tree `(x00 vs x01) vs
//! (x10 vs x11)`, a later candidate winning only with a strictly larger key,
//! which is the reference's row-major scan; the winner's bits are selected,
//! not converted. Tails run the same code on masked loads.

use std::arch::x86_64::*;

use super::Avx2;
use crate::simd::pool::{BLOCK, Bits16, Block, F32};

/// Lanes `< n` of 8 32-bit lanes set.
#[inline(always)]
fn first(n: usize) -> __m256i {
    // SAFETY: AVX2 present (only called from the token's kernels); registers only.
    unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(BLOCK) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
}

/// The 16-bit elements of `r` (at most 16, an even count) as 32-bit lanes
/// of pairs; lanes past the end are 0.
#[inline(always)]
fn load_pairs(r: &[u16]) -> __m256i {
    assert!(r.len() <= 2 * BLOCK && r.len().is_multiple_of(2));
    // SAFETY: AVX2 present (only called from the token's kernels); a full
    // load reads the 16 elements of `r`, a masked one only its first
    // `r.len()` (masked-off lanes are not accessed and cannot fault).
    unsafe {
        if r.len() == 2 * BLOCK {
            _mm256_loadu_si256(r.as_ptr().cast())
        } else {
            _mm256_maskload_epi32(r.as_ptr().cast(), first(r.len() / 2))
        }
    }
}

/// The left and right elements of the pairs of `r` (at most 16 f32, an
/// even count) in the lane order `[0 1 4 5 | 2 3 6 7]` that `shuffle_ps`
/// gives; lanes past the end are 0.
#[inline(always)]
fn split(r: &[f32]) -> (__m256i, __m256i) {
    assert!(r.len() <= 2 * BLOCK);
    // SAFETY: AVX2 present (only called from the token's kernels); full
    // loads read 8 elements of `r` each, masked ones only the elements of
    // `r` their lanes cover (masked-off lanes are not accessed).
    unsafe {
        let (a, b) = if r.len() == 2 * BLOCK {
            (_mm256_loadu_ps(r.as_ptr()), _mm256_loadu_ps(r.as_ptr().add(BLOCK)))
        } else if r.len() <= BLOCK {
            (_mm256_maskload_ps(r.as_ptr(), first(r.len())), _mm256_setzero_ps())
        } else {
            (_mm256_loadu_ps(r.as_ptr()), _mm256_maskload_ps(r.as_ptr().add(BLOCK), first(r.len() - BLOCK)))
        };
        (
            _mm256_castps_si256(_mm256_shuffle_ps::<0b1000_1000>(a, b)),
            _mm256_castps_si256(_mm256_shuffle_ps::<0b1101_1101>(a, b)),
        )
    }
}

impl Block<u16> for Bits16<Avx2> {
    #[inline(always)]
    fn block(self, r0: &[u16], r1: &[u16], y: &mut [u16], idx: &mut [u8]) {
        let n = y.len();
        assert!(n <= BLOCK && r0.len() == 2 * n && r1.len() == 2 * n && idx.len() == n);
        let (x0, x1) = (load_pairs(r0), load_pairs(r1));
        // SAFETY: AVX2 present (the `Avx2` token); registers, and the store
        // of the 8 elements of `y` when it holds 8.
        unsafe {
            let (k0, k1) = (keys16(x0, self.1), keys16(x1, self.1));
            // Each 32-bit lane holds one pair: the left element in its low half.
            let lo = _mm256_set1_epi32(0xFFFF);
            let (v, i) = tree(
                [
                    _mm256_and_si256(x0, lo),
                    _mm256_srli_epi32::<16>(x0),
                    _mm256_and_si256(x1, lo),
                    _mm256_srli_epi32::<16>(x1),
                ],
                [low16(k0), _mm256_srai_epi32::<16>(k0), low16(k1), _mm256_srai_epi32::<16>(k1)],
            );
            // Values fit 16 bits unsigned: pack, then gather the two halves.
            let v = _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(v, v)));
            if n == BLOCK {
                _mm_storeu_si128(y.as_mut_ptr().cast(), v);
            } else {
                let mut buf = [0u16; BLOCK];
                _mm_storeu_si128(buf.as_mut_ptr().cast(), v);
                y.copy_from_slice(&buf[..n]);
            }
            idx.copy_from_slice(&offsets(i)[..n]);
        }
    }
}

impl Block<f32> for F32<Avx2> {
    #[inline(always)]
    fn block(self, r0: &[f32], r1: &[f32], y: &mut [f32], idx: &mut [u8]) {
        let n = y.len();
        assert!(n <= BLOCK && r0.len() == 2 * n && r1.len() == 2 * n && idx.len() == n);
        // Lanes in `split`'s order, undone at the end.
        let ((l0, r0), (l1, r1)) = (split(r0), split(r1));
        // SAFETY: AVX2 present (the `Avx2` token); registers, and the store
        // of the 8 elements of `y` when it holds 8.
        unsafe {
            let (v, i) = tree([l0, r0, l1, r1], [keys32(l0), keys32(r0), keys32(l1), keys32(r1)]);
            let (v, i) = (_mm256_permute4x64_epi64::<0b1101_1000>(v), _mm256_permute4x64_epi64::<0b1101_1000>(i));
            if n == BLOCK {
                _mm256_storeu_si256(y.as_mut_ptr().cast(), v);
            } else {
                let mut buf = [0f32; BLOCK];
                _mm256_storeu_si256(buf.as_mut_ptr().cast(), v);
                y.copy_from_slice(&buf[..n]);
            }
            idx.copy_from_slice(&offsets(i)[..n]);
        }
    }
}

/// The low 16 bits of each 32-bit lane, sign-extended.
#[inline(always)]
fn low16(k: __m256i) -> __m256i {
    // SAFETY: AVX2 present (only called from the token's kernels); registers only.
    unsafe { _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(k)) }
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
