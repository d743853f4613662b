//! The portable layer every hand-written SIMD kernel is written against.
//!
//! [`Simd`] is a tiny per-ISA primitive set (load f32/f16/bf16 lanes into an
//! f32 vector, store with rounding, splat, `mul_add`, compare, …) implemented
//! by zero-sized tokens in `x86/*` and `aarch64/*`; a token can only be made
//! where the CPU has its features, so the methods are safe. Kernel bodies in
//! this module's children are generic over the token and the element types
//! ([`Elem`]) and `#[inline(always)]`: each ISA module instantiates them
//! inside one `#[target_feature]` function per table entry, so mixed-dtype
//! combinations cost one generic body, not one hand-written loop each.
//!
//! Adding a kernel: write the generic body here (with a tail through the
//! `*_partial` primitives), then one `entry!` line per ISA module.

pub(crate) mod amp;
pub(crate) mod cast;
pub(crate) mod ew;
pub(crate) mod loss;
pub(crate) mod lstm;
pub(crate) mod math;
pub(crate) mod norm;
pub(crate) mod optim;
pub(crate) mod pool;
pub(crate) mod reduce;

use half::{bf16, f16};

/// The most f32 lanes any path's vector holds (tail buffers are this long).
pub(crate) const MAX_LANES: usize = 16;

/// One ISA's primitives on `LANES` f32 lanes. Loads and stores touch exactly
/// the first `LANES` elements of the slice they are given (which must hold at
/// least that many: asserted) or, for `*_partial`, exactly `slice.len() <
/// LANES` elements. Semantics are the same on every ISA:
///
/// - stores to f16/bf16 round to nearest, ties to even, keep subnormals,
///   overflow to ±Inf, and map NaN to NaN, bit-identical to `half` 2.x;
/// - `min(a, b)` is `a < b ? a : b` and `max(a, b)` is `a > b ? a : b`
///   (x86's rule): a NaN in either operand returns `b`;
/// - comparisons are ordered (false when either operand is NaN);
/// - `mul_add` is fused (one rounding).
pub(crate) trait Simd: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// A vector of `LANES` f32.
    type F: Copy;
    /// A per-lane boolean mask.
    type M: Copy;
    /// `LANES` i32 (for the bit manipulation of `exp` and `ln`).
    type I: Copy;

    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::F;
    /// The first `LANES` elements.
    fn load_f32(self, s: &[f32]) -> Self::F;
    /// The first `LANES` f16 elements, widened exactly.
    fn load_f16(self, s: &[f16]) -> Self::F;
    /// The first `LANES` bf16 elements, widened exactly.
    fn load_bf16(self, s: &[bf16]) -> Self::F;
    /// Writes the first `LANES` elements.
    fn store_f32(self, d: &mut [f32], v: Self::F);
    /// Rounds to f16 and writes the first `LANES` elements.
    fn store_f16(self, d: &mut [f16], v: Self::F);
    /// Rounds to bf16 and writes the first `LANES` elements.
    fn store_bf16(self, d: &mut [bf16], v: Self::F);

    /// Loads `s.len() < LANES` elements; the other lanes are 0.
    #[inline(always)]
    fn load_f32_partial(self, s: &[f32]) -> Self::F {
        let mut buf = [0.0f32; MAX_LANES];
        buf[..s.len()].copy_from_slice(s);
        self.load_f32(&buf)
    }
    /// Loads `s.len() < LANES` f16 elements; the other lanes are 0.
    #[inline(always)]
    fn load_f16_partial(self, s: &[f16]) -> Self::F {
        let mut buf = [f16::ZERO; MAX_LANES];
        buf[..s.len()].copy_from_slice(s);
        self.load_f16(&buf)
    }
    /// Loads `s.len() < LANES` bf16 elements; the other lanes are 0.
    #[inline(always)]
    fn load_bf16_partial(self, s: &[bf16]) -> Self::F {
        let mut buf = [bf16::ZERO; MAX_LANES];
        buf[..s.len()].copy_from_slice(s);
        self.load_bf16(&buf)
    }
    /// Writes the first `d.len() < LANES` lanes.
    #[inline(always)]
    fn store_f32_partial(self, d: &mut [f32], v: Self::F) {
        let mut buf = [0.0f32; MAX_LANES];
        self.store_f32(&mut buf, v);
        let n = d.len();
        d.copy_from_slice(&buf[..n]);
    }
    /// Rounds and writes the first `d.len() < LANES` lanes.
    #[inline(always)]
    fn store_f16_partial(self, d: &mut [f16], v: Self::F) {
        let mut buf = [f16::ZERO; MAX_LANES];
        self.store_f16(&mut buf, v);
        let n = d.len();
        d.copy_from_slice(&buf[..n]);
    }
    /// Rounds and writes the first `d.len() < LANES` lanes.
    #[inline(always)]
    fn store_bf16_partial(self, d: &mut [bf16], v: Self::F) {
        let mut buf = [bf16::ZERO; MAX_LANES];
        self.store_bf16(&mut buf, v);
        let n = d.len();
        d.copy_from_slice(&buf[..n]);
    }

    /// Non-temporal form of `store_f32` where the ISA has one and `d` is
    /// aligned to the vector's store width (a plain store otherwise). A
    /// kernel that streams calls [`Simd::fence`] before it returns.
    #[inline(always)]
    fn stream_f32(self, d: &mut [f32], v: Self::F) {
        self.store_f32(d, v)
    }
    /// Non-temporal form of `store_f16` (see [`Simd::stream_f32`]).
    #[inline(always)]
    fn stream_f16(self, d: &mut [f16], v: Self::F) {
        self.store_f16(d, v)
    }
    /// Non-temporal form of `store_bf16` (see [`Simd::stream_f32`]).
    #[inline(always)]
    fn stream_bf16(self, d: &mut [bf16], v: Self::F) {
        self.store_bf16(d, v)
    }
    /// Orders earlier non-temporal stores before later stores.
    #[inline(always)]
    fn fence(self) {}

    /// `a + b`.
    fn add(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a - b`.
    fn sub(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a * b`.
    fn mul(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a / b`, correctly rounded.
    fn div(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a * b + c` with one rounding.
    fn mul_add(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// `a < b ? a : b` (NaN in either operand: `b`).
    fn min(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a > b ? a : b` (NaN in either operand: `b`).
    fn max(self, a: Self::F, b: Self::F) -> Self::F;
    /// `|a|` (clears the sign bit, NaN stays NaN).
    fn abs(self, a: Self::F) -> Self::F;
    /// `-a` (flips the sign bit).
    fn neg(self, a: Self::F) -> Self::F;
    /// `√a`, correctly rounded.
    fn sqrt(self, a: Self::F) -> Self::F;
    /// `c - a * b` with one rounding.
    fn neg_mul_add(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// `a * b - c` with one rounding.
    fn mul_sub(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// `a` rounded to an integral value, ties to even.
    fn round(self, a: Self::F) -> Self::F;

    /// The bits of `a`.
    fn to_bits(self, a: Self::F) -> Self::I;
    /// The f32 lanes with bits `a`.
    fn bits_to_float(self, a: Self::I) -> Self::F;
    /// Every lane `x`.
    fn splat_i(self, x: i32) -> Self::I;
    /// `a` (integral, in i32 range) converted exactly.
    fn to_int(self, a: Self::F) -> Self::I;
    /// `a` converted to f32 (exact below 2^24).
    fn to_float(self, a: Self::I) -> Self::F;
    /// `a + b` (wrapping).
    fn add_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// `a & b`.
    fn and_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// `a | b`.
    fn or_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// `a << 23` (an exponent into place).
    fn shl23(self, a: Self::I) -> Self::I;
    /// `a >> 23`, logical (the exponent field out of place).
    fn shr23(self, a: Self::I) -> Self::I;

    /// Lanes where `a < b` (ordered).
    fn lt(self, a: Self::F, b: Self::F) -> Self::M;
    /// Lanes where `a <= b` (ordered).
    fn le(self, a: Self::F, b: Self::F) -> Self::M;
    /// Lanes where `a == b` (ordered: NaN is unequal to everything).
    fn eq(self, a: Self::F, b: Self::F) -> Self::M;
    /// Lanes that hold NaN.
    fn is_nan(self, a: Self::F) -> Self::M;
    /// Lane-wise `!a`.
    fn not(self, a: Self::M) -> Self::M;
    /// Lanes that hold ±Inf or NaN.
    fn non_finite(self, a: Self::F) -> Self::M;
    /// Lanes `< n` (the valid lanes of a tail of `n < LANES`).
    fn first_lanes(self, n: usize) -> Self::M;
    /// Lane-wise `a | b`.
    fn or(self, a: Self::M, b: Self::M) -> Self::M;
    /// Lane-wise `a & b`.
    fn and(self, a: Self::M, b: Self::M) -> Self::M;
    /// No lane set.
    fn none(self) -> Self::M;
    /// Whether any lane is set.
    fn any(self, m: Self::M) -> bool;
    /// `m ? a : b` per lane.
    fn select(self, m: Self::M, a: Self::F, b: Self::F) -> Self::F;

    /// The sum of the lanes (pairwise: lane order is fixed per ISA).
    fn reduce_add(self, v: Self::F) -> f32;

    /// The bits of the largest of the 16-bit floats `x` (f16 or bf16 bits;
    /// `inf` is the type's +Inf), found in 16-bit integer lanes: `None`
    /// when `x` is empty or holds a NaN, or where the path has no such
    /// lanes (the caller then widens). Sign-magnitude bits `b` are ordered
    /// as the integers `b ^ ((b >> 15) & 0x7FFF)` (i16), so `+0 > −0` as
    /// IEEE `maximum` says, and ±Inf and subnormals sort in place.
    fn max_bits16(self, _x: &[u16], _inf: u16) -> Option<u16> {
        None
    }
}

/// The ordered key of 16-bit float bits (and back: the map is its own inverse).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn key16(b: u16) -> i16 {
    let b = b as i16;
    b ^ ((b >> 15) & 0x7FFF)
}

/// The end of [`Simd::max_bits16`]: folds the lanes' key maxima `keys`,
/// magnitude maxima `mags` and the elements of `tail` into the result.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn max_bits16_finish(keys: &[i16], mags: &[u16], tail: &[u16], inf: u16) -> Option<u16> {
    let mut k = keys.iter().copied().max().unwrap_or(i16::MIN);
    let mut a = mags.iter().copied().max().unwrap_or(0);
    for &b in tail {
        k = k.max(key16(b));
        a = a.max(b & 0x7FFF);
    }
    (a <= inf).then_some(key16(k as u16) as u16)
}

/// An element type kernels read and write: f32, f16 or bf16, always computed
/// on in f32 lanes.
pub(crate) trait Elem: Copy + Default + Send + Sync + 'static {
    /// The smallest magnitude that rounds to ±Inf when stored as this type.
    const OVERFLOW: f32;
    /// The first `S::LANES` elements, widened exactly.
    fn load<S: Simd>(s: S, src: &[Self]) -> S::F;
    /// `src.len() < S::LANES` elements, the other lanes 0.
    fn load_partial<S: Simd>(s: S, src: &[Self]) -> S::F;
    /// Rounds and writes the first `S::LANES` elements.
    fn store<S: Simd>(s: S, dst: &mut [Self], v: S::F);
    /// Rounds and writes `dst.len() < S::LANES` elements.
    fn store_partial<S: Simd>(s: S, dst: &mut [Self], v: S::F);
    /// Non-temporal [`Elem::store`].
    fn stream<S: Simd>(s: S, dst: &mut [Self], v: S::F);
}

impl Elem for f32 {
    const OVERFLOW: f32 = f32::INFINITY;
    #[inline(always)]
    fn load<S: Simd>(s: S, src: &[f32]) -> S::F {
        s.load_f32(src)
    }
    #[inline(always)]
    fn load_partial<S: Simd>(s: S, src: &[f32]) -> S::F {
        s.load_f32_partial(src)
    }
    #[inline(always)]
    fn store<S: Simd>(s: S, dst: &mut [f32], v: S::F) {
        s.store_f32(dst, v)
    }
    #[inline(always)]
    fn store_partial<S: Simd>(s: S, dst: &mut [f32], v: S::F) {
        s.store_f32_partial(dst, v)
    }
    #[inline(always)]
    fn stream<S: Simd>(s: S, dst: &mut [f32], v: S::F) {
        s.stream_f32(dst, v)
    }
}

impl Elem for f16 {
    // Halfway between f16::MAX (65504) and 2^16; the tie rounds to even, up.
    const OVERFLOW: f32 = 65520.0;
    #[inline(always)]
    fn load<S: Simd>(s: S, src: &[f16]) -> S::F {
        s.load_f16(src)
    }
    #[inline(always)]
    fn load_partial<S: Simd>(s: S, src: &[f16]) -> S::F {
        s.load_f16_partial(src)
    }
    #[inline(always)]
    fn store<S: Simd>(s: S, dst: &mut [f16], v: S::F) {
        s.store_f16(dst, v)
    }
    #[inline(always)]
    fn store_partial<S: Simd>(s: S, dst: &mut [f16], v: S::F) {
        s.store_f16_partial(dst, v)
    }
    #[inline(always)]
    fn stream<S: Simd>(s: S, dst: &mut [f16], v: S::F) {
        s.stream_f16(dst, v)
    }
}

impl Elem for bf16 {
    // Halfway between bf16::MAX (0x7F7F) and 2^128; the tie rounds to even, up.
    const OVERFLOW: f32 = f32::from_bits(0x7F7F_8000);
    #[inline(always)]
    fn load<S: Simd>(s: S, src: &[bf16]) -> S::F {
        s.load_bf16(src)
    }
    #[inline(always)]
    fn load_partial<S: Simd>(s: S, src: &[bf16]) -> S::F {
        s.load_bf16_partial(src)
    }
    #[inline(always)]
    fn store<S: Simd>(s: S, dst: &mut [bf16], v: S::F) {
        s.store_bf16(dst, v)
    }
    #[inline(always)]
    fn store_partial<S: Simd>(s: S, dst: &mut [bf16], v: S::F) {
        s.store_bf16_partial(dst, v)
    }
    #[inline(always)]
    fn stream<S: Simd>(s: S, dst: &mut [bf16], v: S::F) {
        s.stream_bf16(dst, v)
    }
}
