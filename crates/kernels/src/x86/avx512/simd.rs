//! The `avx512` primitives: 16 f32 lanes in a `__m512`, masks in `__mmask16`,
//! masked loads and stores for tails. `Avx512<true>` also proves AVX-512-BF16
//! and narrows to bf16 with `vcvtneps2bf16`, whose flush of subnormal inputs
//! is undone lane by lane (casts stay bit-exact).

use std::arch::x86_64::*;

use half::{bf16, f16};

use crate::simd::Simd;

/// Proof that the CPU has AVX-512 F/BW/VL/DQ (and AVX2, FMA, F16C); with
/// `BF16 = true`, AVX-512-BF16 as well.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512<const BF16: bool> {
    _private: (),
}

impl<const BF16: bool> Avx512<BF16> {
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VL/DQ, AVX2, FMA and F16C, and
    /// AVX-512-BF16 if `BF16`.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Self {
        Avx512 { _private: () }
    }
}

macro_rules! reg_ops {
    ($( fn $name:ident($($a:ident: $t:ty),*) -> $r:ty = $e:expr; )*) => {
        $(
            #[inline(always)]
            fn $name(self, $($a: $t),*) -> $r {
                // SAFETY: an `Avx512` token exists only on CPUs with AVX-512
                // F/BW/VL/DQ, and these intrinsics touch registers only.
                unsafe { $e }
            }
        )*
    };
}

#[inline(always)]
fn tail_mask(n: usize) -> __mmask16 {
    if n >= 16 { 0xFFFF } else { ((1u32 << n) - 1) as __mmask16 }
}

/// Rounds 16 f32 lanes to bf16 bits in integer arithmetic (ties to even,
/// subnormals kept, NaN → quiet NaN), one result in the low half of each
/// 32-bit lane.
#[inline(always)]
fn bf16_lanes_int<const BF16: bool>(_: Avx512<BF16>, v: __m512) -> __m512i {
    // SAFETY: AVX-512F present (token); registers only.
    unsafe {
        let b = _mm512_castps_si512(v);
        let hi = _mm512_srli_epi32::<16>(b);
        let lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
        let r = _mm512_srli_epi32::<16>(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7FFF)), lsb));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
        _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x40))
    }
}

/// [`bf16_lanes_int`] packed to 16 × u16.
#[inline(always)]
fn bf16_bits_int<const BF16: bool>(t: Avx512<BF16>, v: __m512) -> __m256i {
    let r = bf16_lanes_int(t, v);
    // SAFETY: AVX-512F present (token); registers only.
    unsafe { _mm512_cvtepi32_epi16(r) }
}

/// Rounds 16 f32 lanes to bf16 bits, bit-identical to [`bf16_bits_int`].
#[inline(always)]
fn bf16_bits<const BF16: bool>(t: Avx512<BF16>, v: __m512) -> __m256i {
    if !BF16 {
        return bf16_bits_int(t, v);
    }
    // SAFETY: `Avx512<true>` proves AVX-512-BF16; registers only.
    unsafe {
        // vcvtneps2bf16 rounds to nearest even but reads subnormal inputs as
        // ±0; those lanes (0 < |x| < 2^-126) take the integer path instead.
        let mag = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFF_FFFF));
        let sub = _mm512_mask_cmplt_epu32_mask(_mm512_test_epi32_mask(mag, mag), mag, _mm512_set1_epi32(0x0080_0000));
        let fast: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
        if sub == 0 { fast } else { _mm256_mask_mov_epi16(fast, sub, bf16_bits_int(t, v)) }
    }
}

impl<const BF16: bool> Simd for Avx512<BF16> {
    const LANES: usize = 16;
    type F = __m512;
    type M = __mmask16;
    type I = __m512i;

    #[inline(always)]
    fn load_f32(self, s: &[f32]) -> __m512 {
        assert!(s.len() >= 16);
        // SAFETY: AVX-512F present (token); 16 f32 are readable (asserted).
        unsafe { _mm512_loadu_ps(s.as_ptr()) }
    }
    #[inline(always)]
    fn load_f16(self, s: &[f16]) -> __m512 {
        assert!(s.len() >= 16);
        // SAFETY: AVX-512F present (token); 32 bytes are readable (asserted).
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(s.as_ptr().cast())) }
    }
    #[inline(always)]
    fn load_bf16(self, s: &[bf16]) -> __m512 {
        assert!(s.len() >= 16);
        // SAFETY: AVX-512F present (token); 32 bytes are readable (asserted).
        unsafe {
            let h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(s.as_ptr().cast()));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(h))
        }
    }
    #[inline(always)]
    fn store_f32(self, d: &mut [f32], v: __m512) {
        assert!(d.len() >= 16);
        // SAFETY: AVX-512F present (token); 16 f32 are writable (asserted).
        unsafe { _mm512_storeu_ps(d.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn store_f16(self, d: &mut [f16], v: __m512) {
        assert!(d.len() >= 16);
        // SAFETY: AVX-512F present (token); 32 bytes are writable (asserted).
        // vcvtps2ph rounds to nearest even and keeps f16 subnormals.
        unsafe {
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            _mm256_storeu_si256(d.as_mut_ptr().cast(), h)
        }
    }
    #[inline(always)]
    fn store_bf16(self, d: &mut [bf16], v: __m512) {
        assert!(d.len() >= 16);
        let h = bf16_bits(self, v);
        // SAFETY: AVX present (token); 32 bytes are writable (asserted).
        unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), h) }
    }

    #[inline(always)]
    fn load_f32_partial(self, s: &[f32]) -> __m512 {
        assert!(s.len() < 16);
        // SAFETY: AVX-512F present (token); masked-off lanes are not accessed
        // (and cannot fault), the others are within the slice.
        unsafe { _mm512_maskz_loadu_ps(tail_mask(s.len()), s.as_ptr()) }
    }
    #[inline(always)]
    fn load_f16_partial(self, s: &[f16]) -> __m512 {
        assert!(s.len() < 16);
        // SAFETY: AVX-512 BW/VL present (token); masked-off lanes are not
        // accessed, the others are within the slice.
        unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(s.len()), s.as_ptr().cast())) }
    }
    #[inline(always)]
    fn load_bf16_partial(self, s: &[bf16]) -> __m512 {
        assert!(s.len() < 16);
        // SAFETY: AVX-512 BW/VL present (token); masked-off lanes are not
        // accessed, the others are within the slice.
        unsafe {
            let h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(tail_mask(s.len()), s.as_ptr().cast()));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(h))
        }
    }
    #[inline(always)]
    fn store_f32_partial(self, d: &mut [f32], v: __m512) {
        assert!(d.len() < 16);
        // SAFETY: AVX-512F present (token); masked-off lanes are not accessed.
        unsafe { _mm512_mask_storeu_ps(d.as_mut_ptr(), tail_mask(d.len()), v) }
    }
    #[inline(always)]
    fn store_f16_partial(self, d: &mut [f16], v: __m512) {
        assert!(d.len() < 16);
        // SAFETY: AVX-512 F/BW/VL present (token); masked-off lanes are not accessed.
        unsafe {
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            _mm256_mask_storeu_epi16(d.as_mut_ptr().cast(), tail_mask(d.len()), h)
        }
    }
    #[inline(always)]
    fn store_bf16_partial(self, d: &mut [bf16], v: __m512) {
        assert!(d.len() < 16);
        let m = tail_mask(d.len());
        if BF16 {
            let h = bf16_bits(self, v);
            // SAFETY: AVX-512 BW/VL present (token); masked-off lanes are not accessed.
            unsafe { _mm256_mask_storeu_epi16(d.as_mut_ptr().cast(), m, h) }
        } else {
            // The truncating masked store (`vpmovdw` to memory): a masked
            // `_mm256_mask_storeu_epi16` of `_mm512_cvtepi32_epi16`'s result
            // with a constant one-lane mask was compiled into a 32-bit scalar
            // store that clobbered the next element.
            let r = bf16_lanes_int(self, v);
            // SAFETY: AVX-512F present (token); masked-off lanes are not accessed.
            unsafe { _mm512_mask_cvtepi32_storeu_epi16(d.as_mut_ptr().cast(), m, r) }
        }
    }

    #[inline(always)]
    fn stream_f32(self, d: &mut [f32], v: __m512) {
        assert!(d.len() >= 16);
        if !(d.as_ptr() as usize).is_multiple_of(64) {
            return self.store_f32(d, v);
        }
        // SAFETY: AVX-512F present (token); 64 writable bytes at a 64-byte boundary.
        unsafe { _mm512_stream_ps(d.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn stream_f16(self, d: &mut [f16], v: __m512) {
        assert!(d.len() >= 16);
        if !(d.as_ptr() as usize).is_multiple_of(32) {
            return self.store_f16(d, v);
        }
        // SAFETY: AVX-512F present (token); 32 writable bytes at a 32-byte boundary.
        unsafe {
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            _mm256_stream_si256(d.as_mut_ptr().cast(), h)
        }
    }
    #[inline(always)]
    fn stream_bf16(self, d: &mut [bf16], v: __m512) {
        assert!(d.len() >= 16);
        if !(d.as_ptr() as usize).is_multiple_of(32) {
            return self.store_bf16(d, v);
        }
        let h = bf16_bits(self, v);
        // SAFETY: AVX present (token); 32 writable bytes at a 32-byte boundary.
        unsafe { _mm256_stream_si256(d.as_mut_ptr().cast(), h) }
    }
    #[inline(always)]
    fn fence(self) {
        // SAFETY: SSE is part of x86-64.
        unsafe { _mm_sfence() }
    }

    reg_ops! {
        fn splat(x: f32) -> __m512 = _mm512_set1_ps(x);
        fn add(a: __m512, b: __m512) -> __m512 = _mm512_add_ps(a, b);
        fn sub(a: __m512, b: __m512) -> __m512 = _mm512_sub_ps(a, b);
        fn mul(a: __m512, b: __m512) -> __m512 = _mm512_mul_ps(a, b);
        fn div(a: __m512, b: __m512) -> __m512 = _mm512_div_ps(a, b);
        fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 = _mm512_fmadd_ps(a, b, c);
        fn min(a: __m512, b: __m512) -> __m512 = _mm512_min_ps(a, b);
        fn max(a: __m512, b: __m512) -> __m512 = _mm512_max_ps(a, b);
        fn abs(a: __m512) -> __m512 = _mm512_abs_ps(a);
        fn neg(a: __m512) -> __m512 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(i32::MIN)));
        fn sqrt(a: __m512) -> __m512 = _mm512_sqrt_ps(a);
        fn neg_mul_add(a: __m512, b: __m512, c: __m512) -> __m512 = _mm512_fnmadd_ps(a, b, c);
        fn mul_sub(a: __m512, b: __m512, c: __m512) -> __m512 = _mm512_fmsub_ps(a, b, c);
        fn round(a: __m512) -> __m512 = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a);
        fn to_bits(a: __m512) -> __m512i = _mm512_castps_si512(a);
        fn bits_to_float(a: __m512i) -> __m512 = _mm512_castsi512_ps(a);
        fn splat_i(x: i32) -> __m512i = _mm512_set1_epi32(x);
        fn to_int(a: __m512) -> __m512i = _mm512_cvtps_epi32(a);
        fn to_float(a: __m512i) -> __m512 = _mm512_cvtepi32_ps(a);
        fn add_i(a: __m512i, b: __m512i) -> __m512i = _mm512_add_epi32(a, b);
        fn and_i(a: __m512i, b: __m512i) -> __m512i = _mm512_and_si512(a, b);
        fn or_i(a: __m512i, b: __m512i) -> __m512i = _mm512_or_si512(a, b);
        fn shl23(a: __m512i) -> __m512i = _mm512_slli_epi32::<23>(a);
        fn shr23(a: __m512i) -> __m512i = _mm512_srli_epi32::<23>(a);
        fn eq(a: __m512, b: __m512) -> __mmask16 = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b);
        fn is_nan(a: __m512) -> __mmask16 = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a);
        fn lt(a: __m512, b: __m512) -> __mmask16 = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b);
        fn le(a: __m512, b: __m512) -> __mmask16 = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(a, b);
        // fpclass 0x99: QNaN | +Inf | -Inf | SNaN.
        fn non_finite(a: __m512) -> __mmask16 = _mm512_fpclass_ps_mask::<0x99>(a);
        fn select(m: __mmask16, a: __m512, b: __m512) -> __m512 = _mm512_mask_blend_ps(m, b, a);
        fn reduce_add(v: __m512) -> f32 = {
            let s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps::<1>(v));
            let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        };
    }

    #[inline(always)]
    fn first_lanes(self, n: usize) -> __mmask16 {
        tail_mask(n)
    }
    #[inline(always)]
    fn or(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a | b
    }
    #[inline(always)]
    fn and(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a & b
    }
    #[inline(always)]
    fn none(self) -> __mmask16 {
        0
    }
    #[inline(always)]
    fn not(self, a: __mmask16) -> __mmask16 {
        !a
    }
    #[inline(always)]
    fn any(self, m: __mmask16) -> bool {
        m != 0
    }

    #[inline(always)]
    fn max_bits16(self, x: &[u16], inf: u16) -> Option<u16> {
        if x.is_empty() {
            return None;
        }
        let mut chunks = x.chunks_exact(32);
        let (mut keys, mut mags) = ([0i16; 32], [0u16; 32]);
        // SAFETY: AVX-512 F/BW present (token); each load reads one whole
        // 32-element chunk, the stores write arrays of 32 lanes.
        unsafe {
            let mag = _mm512_set1_epi16(0x7FFF);
            let (mut k, mut a) = (_mm512_set1_epi16(i16::MIN), _mm512_setzero_si512());
            for c in &mut chunks {
                let b = _mm512_loadu_si512(c.as_ptr().cast());
                k = _mm512_max_epi16(k, _mm512_xor_si512(b, _mm512_and_si512(_mm512_srai_epi16::<15>(b), mag)));
                a = _mm512_max_epu16(a, _mm512_and_si512(b, mag));
            }
            _mm512_storeu_si512(keys.as_mut_ptr().cast(), k);
            _mm512_storeu_si512(mags.as_mut_ptr().cast(), a);
        }
        crate::simd::max_bits16_finish(&keys, &mags, chunks.remainder(), inf)
    }
}
