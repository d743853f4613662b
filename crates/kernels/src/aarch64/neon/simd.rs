//! The `neon` primitives: 8 f32 lanes in a pair of `float32x4_t`, so one
//! vector holds a full 128-bit register of f16/bf16. f16 conversions use the
//! base-ARMv8 `fcvtl`/`fcvtn` (round to nearest even under the default FPCR,
//! no flush); bf16 rounds in integer arithmetic (`bfcvtn` is not in every
//! Armv8 core this path runs on).

use std::arch::aarch64::*;

use half::{bf16, f16};

use crate::simd::Simd;

/// Proof that the CPU has Advanced SIMD (every aarch64 Linux CPU does).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon {
    _private: (),
}

impl Neon {
    /// # Safety
    /// The CPU must have Advanced SIMD.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Neon {
        Neon { _private: () }
    }
}

/// 8 f32 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F8(pub(crate) float32x4_t, pub(crate) float32x4_t);

/// 8 i32 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct I8(pub(crate) int32x4_t, pub(crate) int32x4_t);

/// 8 lane masks (all ones or all zeros per lane).
#[derive(Clone, Copy, Debug)]
pub(crate) struct M8(pub(crate) uint32x4_t, pub(crate) uint32x4_t);

macro_rules! reg_ops {
    ($( fn $name:ident($($a:ident: $t:ty),*) -> $r:ty = $e:expr; )*) => {
        $(
            #[inline(always)]
            fn $name(self, $($a: $t),*) -> $r {
                // SAFETY: a `Neon` token exists only on CPUs with Advanced SIMD,
                // and these intrinsics touch registers only.
                unsafe { $e }
            }
        )*
    };
}

/// Rounds 4 f32 lanes to bf16 bits (ties to even, subnormals kept, NaN → quiet NaN).
#[inline(always)]
fn bf16_bits4(_: Neon, v: float32x4_t) -> uint16x4_t {
    // SAFETY: Advanced SIMD present (token); registers only.
    unsafe {
        let b = vreinterpretq_u32_f32(v);
        let hi = vshrq_n_u32::<16>(b);
        let lsb = vandq_u32(hi, vdupq_n_u32(1));
        let r = vaddq_u32(vaddq_u32(b, vdupq_n_u32(0x7FFF)), lsb);
        let nan = vmvnq_u32(vceqq_f32(v, v));
        let quiet = vorrq_u32(hi, vdupq_n_u32(0x40));
        vmovn_u32(vbslq_u32(nan, quiet, vshrq_n_u32::<16>(r)))
    }
}

impl Simd for Neon {
    const LANES: usize = 8;
    type F = F8;
    type M = M8;
    type I = I8;

    #[inline(always)]
    fn load_f32(self, s: &[f32]) -> F8 {
        assert!(s.len() >= 8);
        // SAFETY: Advanced SIMD present (token); 8 f32 are readable (asserted).
        unsafe { F8(vld1q_f32(s.as_ptr()), vld1q_f32(s.as_ptr().add(4))) }
    }
    #[inline(always)]
    fn load_f16(self, s: &[f16]) -> F8 {
        assert!(s.len() >= 8);
        // SAFETY: Advanced SIMD present (token); 16 bytes are readable (asserted).
        unsafe {
            let p: *const u16 = s.as_ptr().cast();
            let lo = vreinterpret_f16_u16(vld1_u16(p));
            let hi = vreinterpret_f16_u16(vld1_u16(p.add(4)));
            F8(vcvt_f32_f16(lo), vcvt_f32_f16(hi))
        }
    }
    #[inline(always)]
    fn load_bf16(self, s: &[bf16]) -> F8 {
        assert!(s.len() >= 8);
        // SAFETY: Advanced SIMD present (token); 16 bytes are readable (asserted).
        unsafe {
            let h = vld1q_u16(s.as_ptr().cast());
            let lo = vshll_n_u16::<16>(vget_low_u16(h));
            let hi = vshll_n_u16::<16>(vget_high_u16(h));
            F8(vreinterpretq_f32_u32(lo), vreinterpretq_f32_u32(hi))
        }
    }
    #[inline(always)]
    fn store_f32(self, d: &mut [f32], v: F8) {
        assert!(d.len() >= 8);
        // SAFETY: Advanced SIMD present (token); 8 f32 are writable (asserted).
        unsafe {
            vst1q_f32(d.as_mut_ptr(), v.0);
            vst1q_f32(d.as_mut_ptr().add(4), v.1);
        }
    }
    #[inline(always)]
    fn store_f16(self, d: &mut [f16], v: F8) {
        assert!(d.len() >= 8);
        // SAFETY: Advanced SIMD present (token); 16 bytes are writable (asserted).
        unsafe {
            let lo = vreinterpret_u16_f16(vcvt_f16_f32(v.0));
            let hi = vreinterpret_u16_f16(vcvt_f16_f32(v.1));
            vst1q_u16(d.as_mut_ptr().cast(), vcombine_u16(lo, hi));
        }
    }
    #[inline(always)]
    fn store_bf16(self, d: &mut [bf16], v: F8) {
        assert!(d.len() >= 8);
        let (lo, hi) = (bf16_bits4(self, v.0), bf16_bits4(self, v.1));
        // SAFETY: Advanced SIMD present (token); 16 bytes are writable (asserted).
        unsafe { vst1q_u16(d.as_mut_ptr().cast(), vcombine_u16(lo, hi)) }
    }

    #[inline(always)]
    fn first_lanes(self, n: usize) -> M8 {
        let idx = [0u32, 1, 2, 3, 4, 5, 6, 7];
        // SAFETY: Advanced SIMD present (token); `idx` holds the 8 u32 read.
        unsafe {
            let n = vdupq_n_u32(n.min(8) as u32);
            M8(vcltq_u32(vld1q_u32(idx.as_ptr()), n), vcltq_u32(vld1q_u32(idx.as_ptr().add(4)), n))
        }
    }

    reg_ops! {
        fn splat(x: f32) -> F8 = F8(vdupq_n_f32(x), vdupq_n_f32(x));
        fn add(a: F8, b: F8) -> F8 = F8(vaddq_f32(a.0, b.0), vaddq_f32(a.1, b.1));
        fn sub(a: F8, b: F8) -> F8 = F8(vsubq_f32(a.0, b.0), vsubq_f32(a.1, b.1));
        fn mul(a: F8, b: F8) -> F8 = F8(vmulq_f32(a.0, b.0), vmulq_f32(a.1, b.1));
        fn div(a: F8, b: F8) -> F8 = F8(vdivq_f32(a.0, b.0), vdivq_f32(a.1, b.1));
        fn mul_add(a: F8, b: F8, c: F8) -> F8 = F8(vfmaq_f32(c.0, a.0, b.0), vfmaq_f32(c.1, a.1, b.1));
        // x86's rule (`a < b ? a : b`) rather than fmin's NaN propagation, so
        // every path gives the same answer.
        fn min(a: F8, b: F8) -> F8 =
            F8(vbslq_f32(vcltq_f32(a.0, b.0), a.0, b.0), vbslq_f32(vcltq_f32(a.1, b.1), a.1, b.1));
        fn max(a: F8, b: F8) -> F8 =
            F8(vbslq_f32(vcgtq_f32(a.0, b.0), a.0, b.0), vbslq_f32(vcgtq_f32(a.1, b.1), a.1, b.1));
        fn abs(a: F8) -> F8 = F8(vabsq_f32(a.0), vabsq_f32(a.1));
        fn neg(a: F8) -> F8 = F8(vnegq_f32(a.0), vnegq_f32(a.1));
        fn sqrt(a: F8) -> F8 = F8(vsqrtq_f32(a.0), vsqrtq_f32(a.1));
        fn neg_mul_add(a: F8, b: F8, c: F8) -> F8 = F8(vfmsq_f32(c.0, a.0, b.0), vfmsq_f32(c.1, a.1, b.1));
        fn mul_sub(a: F8, b: F8, c: F8) -> F8 =
            F8(vnegq_f32(vfmsq_f32(c.0, a.0, b.0)), vnegq_f32(vfmsq_f32(c.1, a.1, b.1)));
        fn round(a: F8) -> F8 = F8(vrndnq_f32(a.0), vrndnq_f32(a.1));
        fn to_bits(a: F8) -> I8 = I8(vreinterpretq_s32_f32(a.0), vreinterpretq_s32_f32(a.1));
        fn bits_to_float(a: I8) -> F8 = F8(vreinterpretq_f32_s32(a.0), vreinterpretq_f32_s32(a.1));
        fn splat_i(x: i32) -> I8 = I8(vdupq_n_s32(x), vdupq_n_s32(x));
        fn to_int(a: F8) -> I8 = I8(vcvtnq_s32_f32(a.0), vcvtnq_s32_f32(a.1));
        fn to_float(a: I8) -> F8 = F8(vcvtq_f32_s32(a.0), vcvtq_f32_s32(a.1));
        fn add_i(a: I8, b: I8) -> I8 = I8(vaddq_s32(a.0, b.0), vaddq_s32(a.1, b.1));
        fn and_i(a: I8, b: I8) -> I8 = I8(vandq_s32(a.0, b.0), vandq_s32(a.1, b.1));
        fn or_i(a: I8, b: I8) -> I8 = I8(vorrq_s32(a.0, b.0), vorrq_s32(a.1, b.1));
        fn shl23(a: I8) -> I8 = I8(vshlq_n_s32::<23>(a.0), vshlq_n_s32::<23>(a.1));
        fn shr23(a: I8) -> I8 = I8(
            vreinterpretq_s32_u32(vshrq_n_u32::<23>(vreinterpretq_u32_s32(a.0))),
            vreinterpretq_s32_u32(vshrq_n_u32::<23>(vreinterpretq_u32_s32(a.1))),
        );
        fn eq(a: F8, b: F8) -> M8 = M8(vceqq_f32(a.0, b.0), vceqq_f32(a.1, b.1));
        fn is_nan(a: F8) -> M8 = M8(vmvnq_u32(vceqq_f32(a.0, a.0)), vmvnq_u32(vceqq_f32(a.1, a.1)));
        fn not(a: M8) -> M8 = M8(vmvnq_u32(a.0), vmvnq_u32(a.1));
        fn lt(a: F8, b: F8) -> M8 = M8(vcltq_f32(a.0, b.0), vcltq_f32(a.1, b.1));
        fn le(a: F8, b: F8) -> M8 = M8(vcleq_f32(a.0, b.0), vcleq_f32(a.1, b.1));
        // |a| <= f32::MAX is false exactly for ±Inf and NaN.
        fn non_finite(a: F8) -> M8 = M8(
            vmvnq_u32(vcaleq_f32(a.0, vdupq_n_f32(f32::MAX))),
            vmvnq_u32(vcaleq_f32(a.1, vdupq_n_f32(f32::MAX))),
        );
        fn or(a: M8, b: M8) -> M8 = M8(vorrq_u32(a.0, b.0), vorrq_u32(a.1, b.1));
        fn and(a: M8, b: M8) -> M8 = M8(vandq_u32(a.0, b.0), vandq_u32(a.1, b.1));
        fn none() -> M8 = M8(vdupq_n_u32(0), vdupq_n_u32(0));
        fn any(m: M8) -> bool = vmaxvq_u32(vorrq_u32(m.0, m.1)) != 0;
        fn select(m: M8, a: F8, b: F8) -> F8 = F8(vbslq_f32(m.0, a.0, b.0), vbslq_f32(m.1, a.1, b.1));
        fn reduce_add(v: F8) -> f32 = vaddvq_f32(vaddq_f32(v.0, v.1));
    }
}
