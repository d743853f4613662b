//! The `avx2` primitives: 8 f32 lanes in a `__m256`, F16C for f16, integer
//! round-to-nearest-even for bf16 (AVX2 has no bf16 instruction).

use std::arch::x86_64::*;

use half::{bf16, f16};

use crate::simd::Simd;

/// Proof that the CPU has AVX2, FMA and F16C.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2 {
    _private: (),
}

impl Avx2 {
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Avx2 {
        Avx2 { _private: () }
    }
}

/// Register-only operations: their one safety condition is the token.
macro_rules! reg_ops {
    ($( fn $name:ident($($a:ident: $t:ty),*) -> $r:ty = $e:expr; )*) => {
        $(
            #[inline(always)]
            fn $name(self, $($a: $t),*) -> $r {
                // SAFETY: an `Avx2` token exists only on CPUs with AVX2, FMA and F16C,
                // and these intrinsics touch registers only.
                unsafe { $e }
            }
        )*
    };
}

/// Rounds 8 f32 lanes to bf16 bits (ties to even; NaN → quiet NaN), in the
/// low 16 bits of each 32-bit lane.
#[inline(always)]
pub(crate) fn bf16_bits_avx2(_: Avx2, v: __m256) -> __m256i {
    // SAFETY: called with an `Avx2` token (AVX2 present); registers only.
    unsafe {
        let b = _mm256_castps_si256(v);
        let hi = _mm256_srli_epi32::<16>(b);
        let lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
        let r = _mm256_srli_epi32::<16>(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7FFF)), lsb));
        let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
        let quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
        _mm256_blendv_epi8(r, quiet, nan)
    }
}

impl Simd for Avx2 {
    const LANES: usize = 8;
    type F = __m256;
    type M = __m256;
    type I = __m256i;

    #[inline(always)]
    fn load_f32(self, s: &[f32]) -> __m256 {
        assert!(s.len() >= 8);
        // SAFETY: AVX present (token); 8 f32 are readable (asserted).
        unsafe { _mm256_loadu_ps(s.as_ptr()) }
    }
    #[inline(always)]
    fn load_f16(self, s: &[f16]) -> __m256 {
        assert!(s.len() >= 8);
        // SAFETY: F16C present (token); 16 bytes are readable (asserted).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(s.as_ptr().cast())) }
    }
    #[inline(always)]
    fn load_bf16(self, s: &[bf16]) -> __m256 {
        assert!(s.len() >= 8);
        // SAFETY: AVX2 present (token); 16 bytes are readable (asserted).
        unsafe {
            let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(s.as_ptr().cast()));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(h))
        }
    }
    #[inline(always)]
    fn store_f32(self, d: &mut [f32], v: __m256) {
        assert!(d.len() >= 8);
        // SAFETY: AVX present (token); 8 f32 are writable (asserted).
        unsafe { _mm256_storeu_ps(d.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn store_f16(self, d: &mut [f16], v: __m256) {
        assert!(d.len() >= 8);
        // SAFETY: F16C present (token); 16 bytes are writable (asserted). F16C
        // rounds to nearest even and keeps f16 subnormals (MXCSR.DAZ is clear).
        unsafe { _mm_storeu_si128(d.as_mut_ptr().cast(), _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v)) }
    }
    #[inline(always)]
    fn store_bf16(self, d: &mut [bf16], v: __m256) {
        assert!(d.len() >= 8);
        let r = bf16_bits_avx2(self, v);
        // SAFETY: AVX2 present (token); 16 bytes are writable (asserted). The
        // lanes hold values ≤ 0xFFFF, so the unsigned-saturating pack is exact.
        unsafe {
            let p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256::<1>(r));
            _mm_storeu_si128(d.as_mut_ptr().cast(), p)
        }
    }

    #[inline(always)]
    fn load_f32_partial(self, s: &[f32]) -> __m256 {
        assert!(s.len() < 8);
        let m = self.first_lanes(s.len());
        // SAFETY: AVX present (token); masked-off lanes are not accessed, the
        // others are within the slice.
        unsafe { _mm256_maskload_ps(s.as_ptr(), _mm256_castps_si256(m)) }
    }
    #[inline(always)]
    fn store_f32_partial(self, d: &mut [f32], v: __m256) {
        assert!(d.len() < 8);
        let m = self.first_lanes(d.len());
        // SAFETY: AVX present (token); masked-off lanes are not accessed, the
        // others are within the slice.
        unsafe { _mm256_maskstore_ps(d.as_mut_ptr(), _mm256_castps_si256(m), v) }
    }

    #[inline(always)]
    fn stream_f32(self, d: &mut [f32], v: __m256) {
        assert!(d.len() >= 8);
        if !(d.as_ptr() as usize).is_multiple_of(32) {
            return self.store_f32(d, v);
        }
        // SAFETY: AVX present (token); 32 writable bytes at a 32-byte boundary.
        unsafe { _mm256_stream_ps(d.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn stream_f16(self, d: &mut [f16], v: __m256) {
        assert!(d.len() >= 8);
        if !(d.as_ptr() as usize).is_multiple_of(16) {
            return self.store_f16(d, v);
        }
        // SAFETY: F16C present (token); 16 writable bytes at a 16-byte boundary.
        unsafe { _mm_stream_si128(d.as_mut_ptr().cast(), _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v)) }
    }
    #[inline(always)]
    fn stream_bf16(self, d: &mut [bf16], v: __m256) {
        assert!(d.len() >= 8);
        if !(d.as_ptr() as usize).is_multiple_of(16) {
            return self.store_bf16(d, v);
        }
        let r = bf16_bits_avx2(self, v);
        // SAFETY: AVX2 present (token); 16 writable bytes at a 16-byte boundary.
        unsafe {
            let p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256::<1>(r));
            _mm_stream_si128(d.as_mut_ptr().cast(), p)
        }
    }
    #[inline(always)]
    fn fence(self) {
        // SAFETY: SSE is part of x86-64.
        unsafe { _mm_sfence() }
    }

    reg_ops! {
        fn splat(x: f32) -> __m256 = _mm256_set1_ps(x);
        fn add(a: __m256, b: __m256) -> __m256 = _mm256_add_ps(a, b);
        fn sub(a: __m256, b: __m256) -> __m256 = _mm256_sub_ps(a, b);
        fn mul(a: __m256, b: __m256) -> __m256 = _mm256_mul_ps(a, b);
        fn div(a: __m256, b: __m256) -> __m256 = _mm256_div_ps(a, b);
        fn mul_add(a: __m256, b: __m256, c: __m256) -> __m256 = _mm256_fmadd_ps(a, b, c);
        fn min(a: __m256, b: __m256) -> __m256 = _mm256_min_ps(a, b);
        fn max(a: __m256, b: __m256) -> __m256 = _mm256_max_ps(a, b);
        fn abs(a: __m256) -> __m256 = _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF)));
        fn lt(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_LT_OQ>(a, b);
        fn le(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_LE_OQ>(a, b);
        fn non_finite(a: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_NLE_UQ>(
            _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF))),
            _mm256_set1_ps(f32::MAX),
        );
        fn first_lanes(n: usize) -> __m256 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
            _mm256_set1_epi32(n.min(8) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        ));
        fn neg(a: __m256) -> __m256 = _mm256_xor_ps(a, _mm256_set1_ps(-0.0));
        fn sqrt(a: __m256) -> __m256 = _mm256_sqrt_ps(a);
        fn neg_mul_add(a: __m256, b: __m256, c: __m256) -> __m256 = _mm256_fnmadd_ps(a, b, c);
        fn mul_sub(a: __m256, b: __m256, c: __m256) -> __m256 = _mm256_fmsub_ps(a, b, c);
        fn round(a: __m256) -> __m256 = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a);
        fn to_bits(a: __m256) -> __m256i = _mm256_castps_si256(a);
        fn bits_to_float(a: __m256i) -> __m256 = _mm256_castsi256_ps(a);
        fn splat_i(x: i32) -> __m256i = _mm256_set1_epi32(x);
        fn to_int(a: __m256) -> __m256i = _mm256_cvtps_epi32(a);
        fn to_float(a: __m256i) -> __m256 = _mm256_cvtepi32_ps(a);
        fn add_i(a: __m256i, b: __m256i) -> __m256i = _mm256_add_epi32(a, b);
        fn and_i(a: __m256i, b: __m256i) -> __m256i = _mm256_and_si256(a, b);
        fn or_i(a: __m256i, b: __m256i) -> __m256i = _mm256_or_si256(a, b);
        fn shl23(a: __m256i) -> __m256i = _mm256_slli_epi32::<23>(a);
        fn shr23(a: __m256i) -> __m256i = _mm256_srli_epi32::<23>(a);
        fn eq(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b);
        fn is_nan(a: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_UNORD_Q>(a, a);
        fn not(a: __m256) -> __m256 = _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
        fn or(a: __m256, b: __m256) -> __m256 = _mm256_or_ps(a, b);
        fn and(a: __m256, b: __m256) -> __m256 = _mm256_and_ps(a, b);
        fn none() -> __m256 = _mm256_setzero_ps();
        fn any(m: __m256) -> bool = _mm256_movemask_ps(m) != 0;
        fn select(m: __m256, a: __m256, b: __m256) -> __m256 = _mm256_blendv_ps(b, a, m);
        fn reduce_add(v: __m256) -> f32 = {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        };
    }

    #[inline(always)]
    fn max_bits16(self, x: &[u16], inf: u16) -> Option<u16> {
        if x.is_empty() {
            return None;
        }
        let mut chunks = x.chunks_exact(16);
        let (mut keys, mut mags) = ([0i16; 16], [0u16; 16]);
        // SAFETY: AVX2 present (token); each load reads one whole
        // 16-element chunk, the stores write arrays of 16 lanes.
        unsafe {
            let mag = _mm256_set1_epi16(0x7FFF);
            let (mut k, mut a) = (_mm256_set1_epi16(i16::MIN), _mm256_setzero_si256());
            for c in &mut chunks {
                let b = _mm256_loadu_si256(c.as_ptr().cast());
                k = _mm256_max_epi16(k, _mm256_xor_si256(b, _mm256_and_si256(_mm256_srai_epi16::<15>(b), mag)));
                a = _mm256_max_epu16(a, _mm256_and_si256(b, mag));
            }
            _mm256_storeu_si256(keys.as_mut_ptr().cast(), k);
            _mm256_storeu_si256(mags.as_mut_ptr().cast(), a);
        }
        crate::simd::max_bits16_finish(&keys, &mags, chunks.remainder(), inf)
    }
}
