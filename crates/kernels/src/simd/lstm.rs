//! The fused LSTM step kernels (`crate::ew::lstm_cell`, `lstm_cell_grad`) on
//! any ISA token: one pass over a batch row's four gates, cell and hidden
//! state. The forward uses the unary kernels' `σ` and `tanh`; the backward
//! is plain f32 arithmetic in the reference's order, so it is bit-identical
//! to it. f64 outputs or inputs run the reference.

use half::{bf16, f16};

use super::ew::widen;
use super::math::{sigmoid, tanh};
use super::{Elem, MAX_LANES, Simd};
use crate::ew::LstmSaved;
use crate::slice::{Dst, Src};

/// `len ≤ LANES` elements of `x` at `at` (the other lanes 0).
#[inline(always)]
fn ld<S: Simd>(s: S, x: &[f32], at: usize, len: usize) -> S::F {
    if len < S::LANES { s.load_f32_partial(&x[at..at + len]) } else { s.load_f32(&x[at..]) }
}

#[inline(always)]
fn st<S: Simd, E: Elem>(s: S, x: &mut [E], at: usize, len: usize, v: S::F) {
    if len < S::LANES { E::store_partial(s, &mut x[at..at + len], v) } else { E::store(s, &mut x[at..], v) }
}

#[inline(always)]
fn cell_body<S: Simd, H: Elem>(
    s: S,
    hs: usize,
    gates: &mut [f32],
    c_prev: &[f32],
    c: &mut [f32],
    tanh_c: &mut [f32],
    h: &mut [H],
) {
    for (r, g) in gates.chunks_exact_mut(4 * hs).enumerate() {
        let at = r * hs;
        let mut j = 0;
        while j < hs {
            let len = S::LANES.min(hs - j);
            let i = sigmoid(s, ld(s, g, j, len));
            let f = sigmoid(s, ld(s, g, hs + j, len));
            let gg = tanh(s, ld(s, g, 2 * hs + j, len));
            let o = sigmoid(s, ld(s, g, 3 * hs + j, len));
            st(s, g, j, len, i);
            st(s, g, hs + j, len, f);
            st(s, g, 2 * hs + j, len, gg);
            st(s, g, 3 * hs + j, len, o);
            let cv = s.add(s.mul(f, ld(s, c_prev, at + j, len)), s.mul(i, gg));
            let tc = tanh(s, cv);
            st(s, c, at + j, len, cv);
            st(s, tanh_c, at + j, len, tc);
            st(s, h, at + j, len, s.mul(o, tc));
            j += len;
        }
    }
}

/// SIMD body of [`crate::ew::lstm_cell`].
#[inline(always)]
pub(crate) fn lstm_cell<S: Simd>(
    s: S,
    hs: usize,
    gates: &mut [f32],
    c_prev: &[f32],
    c: &mut [f32],
    tanh_c: &mut [f32],
    h: Dst<'_>,
) {
    match h {
        Dst::F32(h) => cell_body::<S, f32>(s, hs, gates, c_prev, c, tanh_c, h),
        Dst::F16(h) => cell_body::<S, f16>(s, hs, gates, c_prev, c, tanh_c, h),
        Dst::Bf16(h) => cell_body::<S, bf16>(s, hs, gates, c_prev, c, tanh_c, h),
        h @ Dst::F64(_) => crate::scalar::ew::lstm_cell_scalar(hs, gates, c_prev, c, tanh_c, h),
    }
}

#[inline(always)]
fn grad_body<S: Simd, D: Elem>(
    s: S,
    hs: usize,
    sv: LstmSaved<'_>,
    dy: Src<'_>,
    dh_next: &[f32],
    dc: &mut [f32],
    dg: &mut [D],
) {
    let one = s.splat(1.0);
    let mut buf = [0.0f32; MAX_LANES];
    for (r, a) in sv.act.chunks_exact(4 * hs).enumerate() {
        let (at, ag) = (r * hs, r * 4 * hs);
        let mut j = 0;
        while j < hs {
            let len = S::LANES.min(hs - j);
            let k = at + j;
            let (i, f) = (ld(s, a, j, len), ld(s, a, hs + j, len));
            let (g, o) = (ld(s, a, 2 * hs + j, len), ld(s, a, 3 * hs + j, len));
            let dyv = ld(s, widen(s, dy, k, len, &mut buf), 0, len);
            let dh = s.add(dyv, ld(s, dh_next, k, len));
            let tc = ld(s, sv.tanh_c, k, len);
            let dcv = s.add(ld(s, dc, k, len), s.mul(s.mul(dh, o), s.sub(one, s.mul(tc, tc))));
            st(s, dg, ag + j, len, s.mul(s.mul(dcv, g), s.mul(i, s.sub(one, i))));
            let cp = ld(s, sv.c_prev, k, len);
            st(s, dg, ag + hs + j, len, s.mul(s.mul(dcv, cp), s.mul(f, s.sub(one, f))));
            st(s, dg, ag + 2 * hs + j, len, s.mul(s.mul(dcv, i), s.sub(one, s.mul(g, g))));
            st(s, dg, ag + 3 * hs + j, len, s.mul(s.mul(dh, tc), s.mul(o, s.sub(one, o))));
            st(s, dc, k, len, s.mul(dcv, f));
            j += len;
        }
    }
}

/// SIMD body of [`crate::ew::lstm_cell_grad`].
#[inline(always)]
pub(crate) fn lstm_cell_grad<S: Simd>(
    s: S,
    hs: usize,
    saved: LstmSaved<'_>,
    dy: Src<'_>,
    dh_next: &[f32],
    dc: &mut [f32],
    dgates: Dst<'_>,
) {
    if matches!(dy, Src::F64(_)) {
        return crate::scalar::ew::lstm_cell_grad_scalar(hs, saved, dy, dh_next, dc, dgates);
    }
    match dgates {
        Dst::F32(d) => grad_body::<S, f32>(s, hs, saved, dy, dh_next, dc, d),
        Dst::F16(d) => grad_body::<S, f16>(s, hs, saved, dy, dh_next, dc, d),
        Dst::Bf16(d) => grad_body::<S, bf16>(s, hs, saved, dy, dh_next, dc, d),
        d @ Dst::F64(_) => crate::scalar::ew::lstm_cell_grad_scalar(hs, saved, dy, dh_next, dc, d),
    }
}
