//! Loss-scaling and master-weight kernels, generic over the ISA token: one
//! pass each, FP32 arithmetic, the non-finite check folded into the pass.

use super::{Elem, Simd};
use crate::slice::Src;

/// `g[i] *= inv`; true if any product is ±Inf or NaN. A non-finite input
/// always gives a non-finite product (Inf·0 = NaN, NaN·s = NaN), so checking
/// the products covers the inputs too.
#[inline(always)]
pub(crate) fn unscale_in_place<S: Simd>(s: S, g: &mut [f32], inv: f32) -> bool {
    let k = s.splat(inv);
    let mut bad = s.none();
    let mut chunks = g.chunks_exact_mut(S::LANES);
    for c in &mut chunks {
        let r = s.mul(s.load_f32(c), k);
        bad = s.or(bad, s.non_finite(r));
        s.store_f32(c, r);
    }
    let t = chunks.into_remainder();
    if !t.is_empty() {
        let r = s.mul(s.load_f32_partial(t), k);
        bad = s.or(bad, s.and(s.non_finite(r), s.first_lanes(t.len())));
        s.store_f32_partial(t, r);
    }
    s.any(bad)
}

/// `out[i] = f32(g[i]) * inv`; true if any product is ±Inf or NaN.
///
/// # Panics
/// If the lengths differ.
#[inline(always)]
pub(crate) fn unscale_into<S: Simd, A: Elem>(s: S, g: &[A], inv: f32, out: &mut [f32]) -> bool {
    assert_eq!(g.len(), out.len(), "unscale: grads and out lengths differ");
    let k = s.splat(inv);
    let mut bad = s.none();
    let mut gc = g.chunks_exact(S::LANES);
    let mut oc = out.chunks_exact_mut(S::LANES);
    for (a, o) in (&mut gc).zip(&mut oc) {
        let r = s.mul(A::load(s, a), k);
        bad = s.or(bad, s.non_finite(r));
        s.store_f32(o, r);
    }
    let (a, o) = (gc.remainder(), oc.into_remainder());
    if !a.is_empty() {
        let r = s.mul(A::load_partial(s, a), k);
        bad = s.or(bad, s.and(s.non_finite(r), s.first_lanes(a.len())));
        s.store_f32_partial(o, r);
    }
    s.any(bad)
}

/// Whether any element is ±Inf or NaN.
#[inline(always)]
pub(crate) fn has_non_finite<S: Simd, A: Elem>(s: S, x: &[A]) -> bool {
    // Two masks so consecutive vectors do not wait on one `or` chain.
    let (mut b0, mut b1) = (s.none(), s.none());
    let mut c2 = x.chunks_exact(2 * S::LANES);
    for c in &mut c2 {
        b0 = s.or(b0, s.non_finite(A::load(s, c)));
        b1 = s.or(b1, s.non_finite(A::load(s, &c[S::LANES..])));
    }
    let rest = c2.remainder();
    let (full, tail) = rest.split_at(rest.len() / S::LANES * S::LANES);
    if !full.is_empty() {
        b0 = s.or(b0, s.non_finite(A::load(s, full)));
    }
    if !tail.is_empty() {
        // Padding lanes load as 0, which is finite.
        b1 = s.or(b1, s.non_finite(A::load_partial(s, tail)));
    }
    s.any(s.or(b0, b1))
}

/// `out[i] = B(master[i])` (round to nearest even); true if any written
/// value is ±Inf or NaN: a non-finite master weight, or one beyond `B`'s range.
///
/// # Panics
/// If the lengths differ.
#[inline(always)]
pub(crate) fn copy_master<S: Simd, B: Elem>(s: S, master: &[f32], out: &mut [B]) -> bool {
    assert_eq!(master.len(), out.len(), "copy_master: master and working-copy lengths differ");
    let limit = s.splat(B::OVERFLOW);
    let mut bad = s.none();
    let mut mc = master.chunks_exact(S::LANES);
    let mut oc = out.chunks_exact_mut(S::LANES);
    for (m, o) in (&mut mc).zip(&mut oc) {
        let v = s.load_f32(m);
        bad = s.or(bad, s.or(s.non_finite(v), s.le(limit, s.abs(v))));
        B::store(s, o, v);
    }
    let (m, o) = (mc.remainder(), oc.into_remainder());
    if !m.is_empty() {
        let v = s.load_f32_partial(m);
        bad = s.or(bad, s.or(s.non_finite(v), s.le(limit, s.abs(v))));
        B::store_partial(s, o, v);
    }
    s.any(bad)
}

/// `Σ_slices Σ_i x_i²` accumulated in FP32 in `4·LANES` independent partial
/// sums (summed pairwise at the end): `|err| ≤ (n/(4·LANES) + log2(4·LANES) + 1)·u·Σx²`.
#[inline(always)]
pub(crate) fn sum_squares<S: Simd>(s: S, slices: &[&[f32]]) -> f32 {
    let l = S::LANES;
    let zero = s.splat(0.0);
    let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
    for x in slices {
        let mut c4 = x.chunks_exact(4 * l);
        for c in &mut c4 {
            let (v0, v1) = (s.load_f32(c), s.load_f32(&c[l..]));
            let (v2, v3) = (s.load_f32(&c[2 * l..]), s.load_f32(&c[3 * l..]));
            a0 = s.mul_add(v0, v0, a0);
            a1 = s.mul_add(v1, v1, a1);
            a2 = s.mul_add(v2, v2, a2);
            a3 = s.mul_add(v3, v3, a3);
        }
        let mut c1 = c4.remainder().chunks_exact(l);
        for c in &mut c1 {
            let v = s.load_f32(c);
            a0 = s.mul_add(v, v, a0);
        }
        let t = c1.remainder();
        if !t.is_empty() {
            let v = s.load_f32_partial(t);
            a1 = s.mul_add(v, v, a1);
        }
    }
    s.reduce_add(s.add(s.add(a0, a1), s.add(a2, a3)))
}

/// `|v|`, NaN and ±Inf lanes replaced by +0. A function, not a closure: a
/// closure is compiled without the entry's target features, so its token
/// methods would stay out-of-line calls.
#[inline(always)]
fn finite_abs<S: Simd>(s: S, v: S::F) -> S::F {
    s.select(s.non_finite(v), s.splat(0.0), s.abs(v))
}

/// The largest finite `|x|` of each lane's elements (NaN and ±Inf replaced
/// by +0 before the max), then of the lanes: a max returns one of its
/// inputs and the widening is exact, so the result is the reference's.
#[inline(always)]
fn max_abs_finite_of<S: Simd, A: Elem>(s: S, x: &[A]) -> f32 {
    let zero = s.splat(0.0);
    // Two accumulators so consecutive vectors do not wait on one `max` chain.
    let (mut m0, mut m1) = (zero, zero);
    let mut c2 = x.chunks_exact(2 * S::LANES);
    for c in &mut c2 {
        m0 = s.max(m0, finite_abs(s, A::load(s, c)));
        m1 = s.max(m1, finite_abs(s, A::load(s, &c[S::LANES..])));
    }
    let rest = c2.remainder();
    let (full, tail) = rest.split_at(rest.len() / S::LANES * S::LANES);
    if !full.is_empty() {
        m0 = s.max(m0, finite_abs(s, A::load(s, full)));
    }
    if !tail.is_empty() {
        // Padding lanes load as +0, which never exceeds a magnitude.
        m1 = s.max(m1, finite_abs(s, A::load_partial(s, tail)));
    }
    let mut lanes = [0.0f32; 16];
    s.store_f32(&mut lanes[..S::LANES], s.max(m0, m1));
    lanes[..S::LANES].iter().copied().fold(0.0, f32::max)
}

/// [`crate::amp::max_abs_finite`]; f64 values take the reference (which refuses them).
#[inline(always)]
pub(crate) fn max_abs_finite<S: Simd>(s: S, x: Src<'_>) -> f32 {
    match x {
        Src::F32(x) => max_abs_finite_of(s, x),
        Src::F16(x) => max_abs_finite_of(s, x),
        Src::Bf16(x) => max_abs_finite_of(s, x),
        Src::F64(_) => crate::scalar::amp::max_abs_finite_scalar(x),
    }
}
