//! Vectorised FP32 transcendentals on any [`Simd`] token, used by the
//! elementwise, softmax, loss and optimizer kernels: `exp`, `ln`, `tanh`,
//! `sigmoid`, both GELU forms and the derivatives autograd needs. Each is
//! within 4 ulp of the exact result for every f32 input (measured bounds in
//! `docs/numerics.md`); nothing calls a scalar libm function.
//!
//! Where an argument is computed rather than given (GELU's `t = 2√(2/π)(x +
//! 0.044715x³)`, erf's `x/√2`) and the result is exponentially sensitive to
//! it, the argument is carried as an unevaluated sum `hi + lo` of two f32
//! (Dekker's double-float, via FMA) and `e^(hi + lo)` is taken as
//! `e^hi·(1 + lo)`. Where a derivative cancels (GELU's derivative has a zero
//! near x = −0.752), it is evaluated as `(x − x0)·H(x)` with the zero `x0`
//! held to 48 bits and `H` a fitted polynomial, so its relative accuracy
//! holds right up to the zero. Polynomial coefficients are Chebyshev fits
//! (mpmath `chebyfit`) rounded to f32.
//!
//! Special values follow the scalar reference: NaN in, NaN out; `exp(−Inf) =
//! 0`, `exp(+Inf) = +Inf`; `ln(±0) = −Inf`, `ln(x < 0) = NaN`, `ln(+Inf) =
//! +Inf`; subnormal inputs and results are handled exactly as normal ones.

use super::Simd;

/// `e^r = 1 + r + r²·P(r)` on `|r| ≤ ln2/2`.
const EXP_P: [f32; 6] = [0.000_198_909_81, 0.001_393_364_2, 0.008_333_310_5, 0.041_666_467, 0.166_666_67, 0.5];
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2 = LN2_HI + LN2_LO`, `LN2_HI` with 9 significant bits so `n·LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `ln(1 + f) = f − f²/2 + f³·P(f)` on `f ∈ [√½ − 1, √2 − 1]`.
const LN_P: [f32; 9] = [
    0.069_716_12,
    -0.114_797_34,
    0.116_854_2,
    -0.124_256_87,
    0.142_490_58,
    -0.166_678_03,
    0.200_007_16,
    -0.25,
    0.333_333_3,
];

/// `tanh x = x + x³·T(x²)` on `|x| < 0.625`.
const TANH_T: [f32; 6] = [0.002_292_744_8, -0.008_343_945, 0.021_768_918, -0.053_959_258, 0.133_333_04, -0.333_333_34];

/// `(1 + 2a)·erfcx(a) − 1` as a polynomial in `q = (a − 2)/(a + 2)`, `a ∈ [0, 14.2]`.
const ERFCX_P: [f32; 11] = [
    6.300_271e-5,
    -2.949_124_3e-4,
    -0.001_256_345,
    0.001_206_107_7,
    0.008_619_714,
    -0.008_023_252,
    -0.054_197_855,
    0.164_050_68,
    -0.166_032_09,
    -0.092_763_82,
    0.276_978_4,
];

/// `F(a) = erfcx(a)/2 − a/√π = u·(ERF_H(u) + ERF_H0)` with `u = a − A0`,
/// for `a ∈ [0, 1.2]` (`F`'s zero held to 48 bits, the constant term as `hi + lo`).
const ERF_H: [f32; 9] = [
    3.631_597_2e-4,
    -0.001_184_483_6,
    0.002_700_219_6,
    -0.006_206_448,
    0.013_895_789,
    -0.029_215_604,
    0.057_255_715,
    -0.103_468_26,
    0.169_512_72,
];
const ERF_H0: (f32, f32) = (-0.809_504_6, -8.280_213e-9);
const A0: (f32, f32) = (0.531_596_9, -1.388_32e-8);

/// `B(x) = 1 + x·σ(−t)·t' = u·(TANH_H(u) + TANH_H0)` with `u = x − X0`,
/// for `x ∈ [−1.6, −0.1]` (the bracket of the tanh-form GELU derivative).
const TANH_H: [f32; 10] = [
    -1.682_498_4e-5,
    -5.864_276e-5,
    7.792_722e-5,
    3.660_920_5e-4,
    -8.442_387e-4,
    -0.001_740_445_8,
    0.010_205_897,
    0.002_321_050_7,
    0.061_605_11,
    -0.816_318_5,
];
const TANH_H0: (f32, f32) = (1.904_599_1, 5.349_807_4e-8);
const X0: (f32, f32) = (-0.752_461_43, 1.133_962_8e-8);

/// `Φ(x) + x·φ(x) = 1/2 + x·(ERF_W(x²) + ERF_W0)` for `x ∈ [0, 0.8]` (the
/// erf-form GELU derivative where `1 − e^(−a²)·F(a)` would halve).
const ERF_W: [f32; 6] = [7.963_619e-6, -1.121_719_2e-4, 0.001_153_845_7, -0.009_498_514, 0.059_841_33, -0.265_961_53];
const ERF_W0: (f32, f32) = (0.797_884_6, -2.267_342_4e-8);

/// `2·√(2/π)` and GELU's cubic coefficient, each as `hi + lo`.
const C2: (f32, f32) = (1.595_769_2, -4.534_068e-8);
const K: (f32, f32) = (0.044_715, 1.546_144_4e-9);
/// `1/√2` and `1/√π` as `hi + lo`.
const RSQRT2: (f32, f32) = (std::f32::consts::FRAC_1_SQRT_2, 1.210_161_7e-8);
const RSQRTPI: (f32, f32) = (0.564_189_6, -2.931_769_2e-8);

#[inline(always)]
fn horner<S: Simd>(s: S, x: S::F, c: &[f32]) -> S::F {
    let mut p = s.splat(c[0]);
    for &k in &c[1..] {
        p = s.mul_add(p, x, s.splat(k));
    }
    p
}

/// `a + b` as `(sum, error)` exactly (Knuth's TwoSum).
#[inline(always)]
fn two_sum<S: Simd>(s: S, a: S::F, b: S::F) -> (S::F, S::F) {
    let sum = s.add(a, b);
    let bb = s.sub(sum, a);
    let err = s.add(s.sub(a, s.sub(sum, bb)), s.sub(b, bb));
    (sum, err)
}

/// `2^k` for integral `k ∈ [−126, 127]`.
#[inline(always)]
fn pow2<S: Simd>(s: S, k: S::F) -> S::F {
    s.bits_to_float(s.shl23(s.add_i(s.to_int(k), s.splat_i(127))))
}

/// `m·2^k` for integral `k` of any size, rounded once: the scaling is
/// applied as three normal factors of about `k/3` each, so no intermediate
/// underflows (or overflows) before the result does.
#[inline(always)]
pub(crate) fn ldexp<S: Simd>(s: S, m: S::F, k: S::F) -> S::F {
    // |k| > 360 moves any |m| ∈ [2^-30, 2^30] past ±Inf or below 2^-150 anyway.
    let k = s.min(s.max(k, s.splat(-360.0)), s.splat(360.0));
    let k1 = s.round(s.mul(k, s.splat(1.0 / 3.0)));
    let k2 = s.round(s.mul(s.sub(k, k1), s.splat(0.5)));
    let k3 = s.sub(s.sub(k, k1), k2);
    s.mul(s.mul(s.mul(m, pow2(s, k1)), pow2(s, k2)), pow2(s, k3))
}

/// `e^(x + xl) = (1 + q)·2^n` with `|q| ≤ 0.42` and integral `n`
/// (Cody–Waite: `r = x − n·ln2 + xl`, `q = r + r²·P(r)`). Keeping `q`
/// rather than `1 + q` lets callers form `m·e^x` as `fma(m, q, m)`, one
/// rounding. `x` is clamped to `[−250, 89]`, beyond which `m·e^x` is 0 or
/// ±Inf for any `|m| < 2^100`; `xl` is a low-order correction (`|xl| ≤
/// 2^-20·|x|`). NaN is not propagated: callers restore it.
#[inline(always)]
pub(crate) fn exp_parts<S: Simd>(s: S, x: S::F, xl: S::F) -> (S::F, S::F) {
    let xc = s.min(s.max(x, s.splat(-250.0)), s.splat(89.0));
    let n = s.round(s.mul(xc, s.splat(LOG2E)));
    let r = s.mul_add(n, s.splat(-LN2_HI), xc);
    let r = s.add(s.mul_add(n, s.splat(-LN2_LO), r), xl);
    (s.mul_add(s.mul(r, r), horner(s, r, &EXP_P), r), n)
}

/// `m·e^x` from [`exp_parts`], rounded once at the end.
#[inline(always)]
fn mul_exp<S: Simd>(s: S, m: S::F, (q, n): (S::F, S::F)) -> S::F {
    ldexp(s, s.mul_add(m, q, m), n)
}

/// `e^x` within 1 ulp (subnormal results rounded once).
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::F) -> S::F {
    let e = mul_exp(s, s.splat(1.0), exp_parts(s, x, s.splat(0.0)));
    s.select(s.is_nan(x), x, e)
}

/// `e^x` as a term of a sum that is at least 1 (`Σ e^(x − max)` of softmax,
/// log-softmax and cross-entropy): within 1 ulp of `e^x` where `e^x ≥ e^-87`,
/// and `e^-87 ≈ 1.6e-38` below that. Each such term is off by less than
/// 1.7e-38 absolute, far below one rounding of a sum ≥ 1, so the sum keeps
/// its bound; in exchange the scaling is one exponent insertion instead of
/// [`ldexp`]'s three (about half the work of [`exp`]). NaN propagates.
#[inline(always)]
pub(crate) fn exp_sum_term<S: Simd>(s: S, x: S::F) -> S::F {
    let xc = s.min(s.max(x, s.splat(-87.0)), s.splat(88.0));
    let n = s.round(s.mul(xc, s.splat(LOG2E)));
    let r = s.mul_add(n, s.splat(-LN2_HI), xc);
    let r = s.mul_add(n, s.splat(-LN2_LO), r);
    let q = s.mul_add(s.mul(r, r), horner(s, r, &EXP_P), r);
    // n ∈ [−126, 127]: 2^n is a normal number and (1 + q)·2^n rounds once.
    let p = pow2(s, n);
    s.select(s.is_nan(x), x, s.mul_add(p, q, p))
}

/// `x = m·2^e` with `|m| ∈ [1, 2)` (sign kept) and integral `e`, for finite
/// non-zero `x`, subnormals included.
#[inline(always)]
fn frexp<S: Simd>(s: S, x: S::F) -> (S::F, S::F) {
    let tiny = s.lt(s.abs(x), s.splat(f32::MIN_POSITIVE));
    let xs = s.select(tiny, s.mul(x, s.splat(1.844_674_4e19)), x);
    let bits = s.to_bits(xs);
    let e = s.sub(s.to_float(s.shr23(s.and_i(bits, s.splat_i(0x7FFF_FFFF)))), s.splat(127.0));
    let e = s.select(tiny, s.sub(e, s.splat(64.0)), e);
    let m = s.bits_to_float(s.or_i(s.and_i(bits, s.splat_i(0x807F_FFFF_u32 as i32)), s.splat_i(0x3F80_0000)));
    (m, e)
}

/// `c·f[0]·f[1]·…` rounded once (`c` a power of two or its negation):
/// mantissas multiplied, exponents added, one final scaling, so a subnormal
/// factor or an intermediate beyond f32's range costs nothing. If any
/// factor is zero, ±Inf or NaN the plain product is taken.
#[inline(always)]
pub(crate) fn product<S: Simd, const N: usize>(s: S, c: f32, f: [S::F; N]) -> S::F {
    let zero = s.splat(0.0);
    let (mut m, mut e, mut plain, mut special) = (s.splat(c), zero, s.splat(c), s.none());
    for x in f {
        let (xm, xe) = frexp(s, x);
        m = s.mul(m, xm);
        e = s.add(e, xe);
        plain = s.mul(plain, x);
        special = s.or(special, s.or(s.non_finite(x), s.eq(x, zero)));
    }
    s.select(special, plain, ldexp(s, m, e))
}

/// `g·f·e^x` (with `e^x` from [`exp_parts`]) rounded once, for any `g`: its
/// exponent joins `e^x`'s, so a large gradient times a subnormal factor
/// keeps every bit. `|f| ∈ [2^-30, 2^30]` or `f = 0`. Zero, ±Inf and NaN
/// `g` give `g·sign(f)`.
#[inline(always)]
fn scaled_mul_exp<S: Simd>(s: S, g: S::F, f: S::F, (q, n): (S::F, S::F)) -> S::F {
    let (gm, ge) = frexp(s, g);
    // gm·f·(1 + q) = m + (m·q + m_err) with m = gm·f: one rounding.
    let m = s.mul(gm, f);
    let m_err = s.mul_sub(gm, f, m);
    let r = ldexp(s, s.add(m, s.mul_add(m, q, m_err)), s.add(n, ge));
    let special = s.or(s.non_finite(g), s.eq(g, s.splat(0.0)));
    s.select(special, s.mul(g, copysign(s, s.splat(1.0), f)), r)
}

/// `ln x` within 1 ulp.
#[inline(always)]
pub(crate) fn ln<S: Simd>(s: S, x: S::F) -> S::F {
    // Subnormals: scale by 2^23 (exact) and take 23 off the exponent.
    let tiny = s.lt(x, s.splat(f32::MIN_POSITIVE));
    let xs = s.select(tiny, s.mul(x, s.splat(8_388_608.0)), x);
    let bits = s.to_bits(xs);
    let e = s.sub(s.to_float(s.shr23(s.and_i(bits, s.splat_i(0x7FFF_FFFF)))), s.splat(127.0));
    let e = s.select(tiny, s.sub(e, s.splat(23.0)), e);
    let m = s.bits_to_float(s.or_i(s.and_i(bits, s.splat_i(0x007F_FFFF)), s.splat_i(0x3F80_0000)));
    // m ∈ [1, 2): bring it to [√½, √2) so f = m − 1 is small (and exact).
    let big = s.lt(s.splat(std::f32::consts::SQRT_2), m);
    let m = s.select(big, s.mul(m, s.splat(0.5)), m);
    let e = s.select(big, s.add(e, s.splat(1.0)), e);
    let f = s.sub(m, s.splat(1.0));
    let z = s.mul(f, f);
    let y = s.mul(s.mul(f, z), horner(s, f, &LN_P));
    let y = s.mul_add(e, s.splat(LN2_LO), y);
    let y = s.neg_mul_add(s.splat(0.5), z, y);
    let r = s.mul_add(e, s.splat(LN2_HI), s.add(f, y));
    // ln(±0) = −Inf, ln(x < 0) = NaN, ln(+Inf) = +Inf, ln(NaN) = NaN.
    let zero = s.splat(0.0);
    let r = s.select(s.eq(x, zero), s.splat(f32::NEG_INFINITY), r);
    let r = s.select(s.lt(x, zero), s.splat(f32::NAN), r);
    let r = s.select(s.eq(x, s.splat(f32::INFINITY)), x, r);
    s.select(s.is_nan(x), x, r)
}

/// `x` with the sign of `sign`.
#[inline(always)]
fn copysign<S: Simd>(s: S, x: S::F, sign: S::F) -> S::F {
    let mag = s.and_i(s.to_bits(x), s.splat_i(0x7FFF_FFFF));
    let sgn = s.and_i(s.to_bits(sign), s.splat_i(i32::MIN));
    s.bits_to_float(s.or_i(mag, sgn))
}

/// `tanh x`: an odd polynomial below 0.625, `1 − 2/(e^(2|x|) + 1)` above.
#[inline(always)]
pub(crate) fn tanh<S: Simd>(s: S, x: S::F) -> S::F {
    let ax = s.abs(x);
    let x2 = s.mul(x, x);
    let small = s.mul_add(s.mul(x2, x), horner(s, x2, &TANH_T), x);
    let e = exp(s, s.mul(s.min(ax, s.splat(10.0)), s.splat(2.0)));
    let big = s.sub(s.splat(1.0), s.div(s.splat(2.0), s.add(e, s.splat(1.0))));
    let r = s.select(s.lt(ax, s.splat(0.625)), small, copysign(s, big, x));
    s.select(s.is_nan(x), x, r)
}

/// `σ(x) = 1/(1 + e^−x)`, as `e^x/(1 + e^x)` for negative `x` (no
/// overflow, no cancellation).
#[inline(always)]
pub(crate) fn sigmoid<S: Simd>(s: S, x: S::F) -> S::F {
    let e = exp(s, s.neg(s.abs(x)));
    let one = s.splat(1.0);
    let num = s.select(s.lt(x, s.splat(0.0)), e, one);
    s.div(num, s.add(one, e))
}

/// GELU's tanh-form argument `t = 2√(2/π)·(x + 0.044715x³)` as `(hi, lo)`,
/// and `x²` (the derivative reuses it).
#[inline(always)]
fn gelu_t<S: Simd>(s: S, x: S::F) -> (S::F, S::F, S::F) {
    let x2 = s.mul(x, x);
    let x2l = s.mul_sub(x, x, x2);
    let x3 = s.mul(x2, x);
    let x3l = s.mul_add(x2l, x, s.mul_sub(x2, x, x3));
    let kx3 = s.mul(s.splat(K.0), x3);
    let kx3l = s.add(s.mul_sub(s.splat(K.0), x3, kx3), s.mul_add(s.splat(K.0), x3l, s.mul(s.splat(K.1), x3)));
    let (p, pe) = two_sum(s, x, kx3);
    let pl = s.add(pe, kx3l);
    let t = s.mul(s.splat(C2.0), p);
    let tl = s.add(s.mul_sub(s.splat(C2.0), p, t), s.mul_add(s.splat(C2.0), pl, s.mul(s.splat(C2.1), p)));
    (t, tl, x2)
}

/// `E = e^(−|t + tl|)` as [`exp_parts`] and `d = 1 + E`: `σ(t) = 1/d` for
/// `t ≥ 0` and `E/d` for `t < 0`.
#[inline(always)]
fn sigmoid_parts<S: Simd>(s: S, t: S::F, tl: S::F) -> ((S::F, S::F), S::F) {
    let neg = s.lt(t, s.splat(0.0));
    let parts = exp_parts(s, s.neg(s.abs(t)), s.select(neg, tl, s.neg(tl)));
    let d = s.add(s.splat(1.0), mul_exp(s, s.splat(1.0), parts));
    (parts, d)
}

/// GELU, tanh form: `x·σ(t)` (= `0.5x(1 + tanh(t/2))` without its
/// cancellation): `x/d` for `t ≥ 0`, `x·E/d` for `t < 0`, the latter scaled
/// by `2^n` once at the end.
#[inline(always)]
pub(crate) fn gelu_tanh<S: Simd>(s: S, x: S::F) -> S::F {
    let xc = s.min(s.max(x, s.splat(-20.0)), s.splat(20.0));
    let (t, tl, _) = gelu_t(s, xc);
    let ((q, n), d) = sigmoid_parts(s, t, tl);
    let neg = s.lt(t, s.splat(0.0));
    let xd = s.div(xc, d);
    let r = s.select(neg, ldexp(s, s.mul_add(xd, q, xd), n), xd);
    // Beyond ±20 the result is x, or −0 (σ(t) < 2^-800).
    let r = s.select(s.lt(s.splat(20.0), x), x, r);
    let r = s.select(s.lt(x, s.splat(-20.0)), s.splat(-0.0), r);
    s.select(s.is_nan(x), x, r)
}

/// The pieces of `erfc(|x|/√2)`: `a = |x|/√2` as `(a, al)`, `y =
/// erfcx(a)`, `−(a + al)² = −s2 + s2l` and `al·d ln erfcx/da` (so that
/// `erfc(a + al) = y·e^(−s2 + s2l + corr)`; low-order terms ride in the
/// exponent, where they cost no rounding).
#[inline(always)]
fn erf_parts<S: Simd>(s: S, x: S::F) -> ErfParts<S> {
    let ax = s.abs(x);
    let a = s.mul(ax, s.splat(RSQRT2.0));
    let al = s.mul_add(ax, s.splat(RSQRT2.1), s.mul_sub(ax, s.splat(RSQRT2.0), a));
    // q = (a − 2)/(a + 2), refined by one residual step.
    let (one, two) = (s.splat(1.0), s.splat(2.0));
    let rp = s.div(one, s.add(a, two));
    let q0 = s.mul(s.sub(a, two), rp);
    let res = s.neg_mul_add(q0, a, s.neg_mul_add(s.add(q0, one), two, a));
    let q = s.mul_add(rp, res, q0);
    let p = horner(s, q, &ERFCX_P);
    // erfcx(a) = (1 + p)/(1 + 2a), divided with one residual correction.
    let d = s.mul_add(two, a, one);
    let rd = s.div(one, d);
    let y0 = s.mul_add(p, rd, rd);
    let res = s.add(s.neg_mul_add(y0, d, one), p);
    let y = s.mul_add(res, rd, y0);
    let s2 = s.mul(a, a);
    let s2l = s.neg(s.mul_add(s.mul(two, a), al, s.mul_sub(a, a, s2)));
    let corr = s.mul(al, s.sub(s.mul(two, a), s.div(s.splat(2.0 * RSQRTPI.0), y)));
    ErfParts { a, al, y, s2, s2l, corr }
}

/// See [`erf_parts`].
struct ErfParts<S: Simd> {
    a: S::F,
    al: S::F,
    y: S::F,
    s2: S::F,
    s2l: S::F,
    corr: S::F,
}

/// GELU, erf form: `0.5·x·erfc(−x/√2)`: `c = 0.5·x·erfc(|x|/√2)` rounded
/// once, then `c` for `x ≤ 0` and `x − c` for `x > 0` (`erfc(−a) = 2 − erfc(a)`).
#[inline(always)]
pub(crate) fn gelu_erf<S: Simd>(s: S, x: S::F) -> S::F {
    let xc = s.min(s.max(x, s.splat(-16.0)), s.splat(16.0));
    let ErfParts { y, s2, s2l, corr, .. } = erf_parts(s, xc);
    let c = mul_exp(s, s.mul(s.mul(s.splat(0.5), xc), y), exp_parts(s, s.neg(s2), s.add(s2l, corr)));
    let r = s.select(s.lt(s.splat(0.0), xc), s.sub(xc, c), c);
    let r = s.select(s.lt(s.splat(16.0), x), x, r);
    let r = s.select(s.lt(x, s.splat(-16.0)), s.splat(-0.0), r);
    s.select(s.is_nan(x), x, r)
}

/// `g · d/dx gelu_erf(x) = g·(Φ(x) + x·φ(x))`. With `a = |x|/√2` and
/// `F(a) = erfcx(a)/2 − a/√π`: `Φ + xφ = e^(−a²)·F(a)` for `x ≤ 0` and
/// `1 − e^(−a²)·F(a)` for `x > 0`; `F` is `u·H(u)`, `u = a − A0`, near its
/// zero (`a < 1.2`), and `1/2 + x·W(x²)` replaces `1 − e^(−a²)·F` for `x ∈ (0, 0.8)`.
#[inline(always)]
pub(crate) fn gelu_erf_grad<S: Simd>(s: S, g: S::F, x: S::F) -> S::F {
    let xc = s.min(s.max(x, s.splat(-20.0)), s.splat(20.0));
    let ErfParts { a, al, y, s2, s2l, .. } = erf_parts(s, xc);
    // F(a + al): near A0 as u·H(u) with u exact in double-float, else
    // erfcx/2 − (a + al)/√π + al·(a·y − 2/√π).
    let (uh, ue) = two_sum(s, a, s.splat(-A0.0));
    let ul = s.add(ue, s.sub(al, s.splat(A0.1)));
    let u = s.add(uh, ul);
    let h = s.add(s.mul_add(horner(s, u, &ERF_H), u, s.splat(ERF_H0.1)), s.splat(ERF_H0.0));
    let f_near = s.mul_add(uh, h, s.mul(ul, h));
    let small = s.mul_add(al, s.mul_sub(a, y, s.splat(2.0 * RSQRTPI.0)), s.mul(a, s.splat(-RSQRTPI.1)));
    let f_far = s.neg_mul_add(a, s.splat(RSQRTPI.0), s.mul_add(s.splat(0.5), y, small));
    let f = s.select(s.lt(a, s.splat(1.2)), f_near, f_far);
    let e = exp_parts(s, s.neg(s2), s2l);
    let x2 = s.mul(xc, xc);
    let w = s.add(s.mul_add(horner(s, x2, &ERF_W), x2, s.splat(ERF_W0.1)), s.splat(ERF_W0.0));
    let d_small = s.mul_add(xc, w, s.splat(0.5));
    let d_pos = s.select(s.lt(xc, s.splat(0.8)), d_small, s.sub(s.splat(1.0), mul_exp(s, f, e)));
    let r = s.select(s.lt(s.splat(0.0), xc), s.mul(g, d_pos), scaled_mul_exp(s, g, f, e));
    let r = s.select(s.lt(s.splat(20.0), x), g, r);
    let r = s.select(s.lt(x, s.splat(-20.0)), times_negative_tiny(s, g), r);
    s.select(s.is_nan(x), x, r)
}

/// `g · d/dx gelu_tanh(x) = g·σ(t)·B(x)`, `B = 1 + x·σ(−t)·t'`,
/// `t' = 2√(2/π)(1 + 3·0.044715x²)`. For `t ≥ 0` (`E = e^−t`, `d = 1 + E`):
/// `σ(t)·B = (1 + x·t'·E/d)/d`. For `t < 0` (`E = e^t`): `σ(t)·B = E·N/d²`
/// with `N = d + x·t'` (`x·t' = 3t − 2·c2·x`, `d` and `d²` all in
/// double-float), or `E·B/d` with `B = u·H(u)`, `u = x − X0`, near `B`'s zero.
#[inline(always)]
pub(crate) fn gelu_tanh_grad<S: Simd>(s: S, g: S::F, x: S::F) -> S::F {
    let xc = s.min(s.max(x, s.splat(-20.0)), s.splat(20.0));
    let (t, tl, _) = gelu_t(s, xc);
    let neg = s.lt(t, s.splat(0.0));
    let e = exp_parts(s, s.neg(s.abs(t)), s.select(neg, tl, s.neg(tl)));
    let big_e = mul_exp(s, s.splat(1.0), e);
    let one = s.splat(1.0);
    let d = s.add(one, big_e);
    let dl = s.sub(big_e, s.sub(d, one));
    // x·t' = c2·x + 3·c2·k·x³ = 3t − 2·c2·x, in double-float.
    let cx = s.mul(s.splat(C2.0), xc);
    let cxl = s.mul_add(s.splat(C2.1), xc, s.mul_sub(s.splat(C2.0), xc, cx));
    let t3 = s.mul(s.splat(3.0), t);
    let t3l = s.mul_add(s.splat(3.0), tl, s.mul_sub(s.splat(3.0), t, t3));
    let (xt, xte) = two_sum(s, t3, s.mul(s.splat(-2.0), cx));
    let xtl = s.add(xte, s.mul_add(s.splat(-2.0), cxl, t3l));
    // t ≥ 0.
    let b_pos = s.mul_add(s.div(s.add(xt, xtl), d), big_e, one);
    // B/d ≤ 1.13 first: g·B could overflow where g·B/d does not.
    let r_pos = s.mul(g, s.div(b_pos, d));
    // t < 0: B/d, far from B's zero as N/d², near it as u·H(u)/d.
    let (nh, ne) = two_sum(s, d, xt);
    let nl = s.add(ne, s.add(xtl, dl));
    let dd = s.mul(d, d);
    let ddl = s.mul_add(s.add(d, d), dl, s.mul_sub(d, d, dd));
    let bd_far = s.div(s.add(nh, s.neg_mul_add(nh, s.div(ddl, dd), nl)), dd);
    let (uh, ue) = two_sum(s, xc, s.splat(-X0.0));
    let ul = s.sub(ue, s.splat(X0.1));
    let u = s.add(uh, ul);
    let h = s.add(s.mul_add(horner(s, u, &TANH_H), u, s.splat(TANH_H0.1)), s.splat(TANH_H0.0));
    let bd_near = s.div(s.mul_add(uh, h, s.mul(ul, h)), d);
    let near = s.and(s.lt(s.splat(-1.6), xc), s.lt(xc, s.splat(-0.1)));
    let r_neg = scaled_mul_exp(s, g, s.select(near, bd_near, bd_far), e);
    let r = s.select(neg, r_neg, r_pos);
    let r = s.select(s.lt(s.splat(20.0), x), g, r);
    let r = s.select(s.lt(x, s.splat(-20.0)), times_negative_tiny(s, g), r);
    s.select(s.is_nan(x), x, r)
}

/// `g·d` where `d < 0` is below any f32 for every `g` (`|x| > 20`): the
/// derivative is taken as `−0`, so an infinite `g` gives NaN (`Inf·0`), as
/// in PyTorch's FP32 kernels and in the f64 reference once its own
/// exponential underflows.
#[inline(always)]
fn times_negative_tiny<S: Simd>(s: S, g: S::F) -> S::F {
    s.mul(g, s.splat(-0.0))
}
