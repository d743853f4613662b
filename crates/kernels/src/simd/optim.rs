//! The optimizer family (`crate::optim`) on any ISA token: the exact FP32
//! operation sequence of the reference (so every path is bit-identical to
//! it), one pass over weights, gradients and state, the working copy
//! rounded and stored from the same registers. An f64 copy runs the
//! reference. The `*_scaled` entries read an f32/f16/bf16 gradient and
//! multiply it by the inverse loss scale as they load it.

use half::{bf16, f16};

use super::{Elem, Simd};
use crate::optim::{AdamStep, Sgd};
use crate::slice::{Dst, Src};

/// Loads `LANES` (or the `len < LANES` tail) elements at `k`.
#[inline(always)]
fn ld<S: Simd>(s: S, x: &[f32], k: usize, tail: bool) -> S::F {
    if tail { s.load_f32_partial(&x[k..]) } else { s.load_f32(&x[k..]) }
}

/// Loads `LANES` (or the tail) gradient elements at `k`, widened exactly
/// and, with `scale`, multiplied by it (one rounding).
#[inline(always)]
fn ld_g<S: Simd, G: Elem>(s: S, g: &[G], k: usize, tail: bool, scale: Option<S::F>) -> S::F {
    let v = if tail { G::load_partial(s, &g[k..]) } else { G::load(s, &g[k..]) };
    match scale {
        Some(c) => s.mul(v, c),
        None => v,
    }
}

/// `c` splatted, if any. (A `match`, not `Option::map`: the closure would be
/// compiled without the entry's target features.)
#[inline(always)]
#[allow(clippy::manual_map)]
fn splat_some<S: Simd>(s: S, c: Option<f32>) -> Option<S::F> {
    match c {
        Some(c) => Some(s.splat(c)),
        None => None,
    }
}

#[inline(always)]
fn st<S: Simd>(s: S, x: &mut [f32], k: usize, tail: bool, v: S::F) {
    if tail { s.store_f32_partial(&mut x[k..], v) } else { s.store_f32(&mut x[k..], v) }
}

#[inline(always)]
fn st_copy<S: Simd, B: Elem>(s: S, c: &mut Option<&mut [B]>, k: usize, tail: bool, v: S::F) {
    if let Some(c) = c {
        if tail { B::store_partial(s, &mut c[k..], v) } else { B::store(s, &mut c[k..], v) }
    }
}

/// Runs `$body::<S, G, B>(…, copy)` with the copy's element type `B`
/// (`G`: the gradient's).
macro_rules! by_copy {
    ($copy:expr, $body:ident, $g:ty, $s:expr, $($a:expr),*; $reference:expr) => {
        match $copy {
            None => $body::<S, $g, f32>($s, $($a),*, None),
            Some(Dst::F32(c)) => $body::<S, $g, f32>($s, $($a),*, Some(c)),
            Some(Dst::F16(c)) => $body::<S, $g, f16>($s, $($a),*, Some(c)),
            Some(Dst::Bf16(c)) => $body::<S, $g, bf16>($s, $($a),*, Some(c)),
            copy @ Some(Dst::F64(_)) => $reference(copy),
        }
    };
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sgd_body<S: Simd, G: Elem, B: Elem>(
    s: S,
    p: &Sgd,
    w: &mut [f32],
    g: &[G],
    scale: Option<f32>,
    mut buf: Option<&mut [f32]>,
    first: bool,
    mut copy: Option<&mut [B]>,
) {
    let (wd, mom, keep, lr) =
        (s.splat(p.weight_decay), s.splat(p.momentum), s.splat((1.0 - p.dampening as f64) as f32), s.splat(-p.lr));
    let (use_wd, use_mom) = (p.weight_decay != 0.0, p.momentum != 0.0);
    let scale = splat_some(s, scale);
    let n = w.len();
    let mut k = 0;
    while k < n {
        let tail = n - k < S::LANES;
        let wv = ld(s, w, k, tail);
        let mut d = ld_g(s, g, k, tail, scale);
        if use_wd {
            d = s.mul_add(wd, wv, d);
        }
        if use_mom {
            let b = buf.as_deref_mut().expect("optim::sgd: momentum needs a buffer");
            let bv = if first { d } else { s.mul_add(keep, d, s.mul(mom, ld(s, b, k, tail))) };
            st(s, b, k, tail, bv);
            d = if p.nesterov { s.mul_add(mom, bv, d) } else { bv };
        }
        let wn = s.mul_add(lr, d, wv);
        st(s, w, k, tail, wn);
        st_copy(s, &mut copy, k, tail, wn);
        k += S::LANES;
    }
}

/// SIMD body of [`crate::optim::sgd`].
#[inline(always)]
pub(crate) fn sgd<S: Simd>(
    s: S,
    p: &Sgd,
    w: &mut [f32],
    g: &[f32],
    buf: Option<&mut [f32]>,
    first: bool,
    copy: Option<Dst<'_>>,
) {
    assert_eq!(w.len(), g.len(), "optim::sgd: weights and gradients lengths differ");
    by_copy!(copy, sgd_body, f32, s, p, w, g, None, buf, first; |c| crate::scalar::optim::sgd_scalar(p, w, g, buf, first, c))
}

/// SIMD body of [`crate::optim::sgd_scaled`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd_scaled<S: Simd>(
    s: S,
    p: &Sgd,
    w: &mut [f32],
    g: Src<'_>,
    inv_scale: f32,
    buf: Option<&mut [f32]>,
    first: bool,
    copy: Option<Dst<'_>>,
) {
    assert_eq!(w.len(), g.len(), "optim::sgd_scaled: weights and gradients lengths differ");
    let (src, sc) = (g, Some(inv_scale));
    use crate::scalar::optim::sgd_scaled_scalar as reference;
    match g {
        Src::F32(g) => {
            by_copy!(copy, sgd_body, f32, s, p, w, g, sc, buf, first; |c| reference(p, w, src, inv_scale, buf, first, c))
        }
        Src::F16(g) => {
            by_copy!(copy, sgd_body, f16, s, p, w, g, sc, buf, first; |c| reference(p, w, src, inv_scale, buf, first, c))
        }
        Src::Bf16(g) => {
            by_copy!(copy, sgd_body, bf16, s, p, w, g, sc, buf, first; |c| reference(p, w, src, inv_scale, buf, first, c))
        }
        Src::F64(_) => reference(p, w, src, inv_scale, buf, first, copy),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adam_body<S: Simd, G: Elem, B: Elem>(
    s: S,
    a: &AdamStep,
    w: &mut [f32],
    g: &[G],
    scale: Option<f32>,
    m: &mut [f32],
    v: &mut [f32],
    mut copy: Option<&mut [B]>,
) {
    let (decay, l2) = (s.splat(a.decay), s.splat(a.l2));
    let (b1c, b2c, b2) = (s.splat(a.one_minus_beta1), s.splat(a.one_minus_beta2), s.splat(a.beta2));
    let (bc2_sqrt, eps, step) = (s.splat(a.bc2_sqrt), s.splat(a.eps), s.splat(-a.step_size));
    let (small, big) = (a.one_minus_beta1.abs() < 0.5, s.splat(a.one_minus_beta1 - 1.0));
    let (use_decay, use_l2) = (a.decay != 1.0, a.l2 != 0.0);
    let scale = splat_some(s, scale);
    let n = w.len();
    let mut k = 0;
    while k < n {
        let tail = n - k < S::LANES;
        let mut wv = ld(s, w, k, tail);
        if use_decay {
            wv = s.mul(wv, decay);
        }
        let mut gv = ld_g(s, g, k, tail, scale);
        if use_l2 {
            gv = s.mul_add(l2, wv, gv);
        }
        let mv = ld(s, m, k, tail);
        let mv = if small { s.mul_add(b1c, s.sub(gv, mv), mv) } else { s.mul_add(big, s.sub(gv, mv), gv) };
        let vv = s.mul_add(s.mul(b2c, gv), gv, s.mul(b2, ld(s, v, k, tail)));
        let den = s.add(s.div(s.sqrt(vv), bc2_sqrt), eps);
        let wn = s.add(wv, s.div(s.mul(step, mv), den));
        st(s, m, k, tail, mv);
        st(s, v, k, tail, vv);
        st(s, w, k, tail, wn);
        st_copy(s, &mut copy, k, tail, wn);
        k += S::LANES;
    }
}

/// SIMD body of [`crate::optim::adam`].
#[inline(always)]
pub(crate) fn adam<S: Simd>(
    s: S,
    a: &AdamStep,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    copy: Option<Dst<'_>>,
) {
    let n = w.len();
    assert!(g.len() == n && m.len() == n && v.len() == n, "optim::adam: weights, gradients and moments lengths differ");
    by_copy!(copy, adam_body, f32, s, a, w, g, None, m, v; |c| crate::scalar::optim::adam_scalar(a, w, g, m, v, c))
}

/// SIMD body of [`crate::optim::adam_scaled`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam_scaled<S: Simd>(
    s: S,
    a: &AdamStep,
    w: &mut [f32],
    g: Src<'_>,
    inv_scale: f32,
    m: &mut [f32],
    v: &mut [f32],
    copy: Option<Dst<'_>>,
) {
    let n = w.len();
    assert!(
        g.len() == n && m.len() == n && v.len() == n,
        "optim::adam_scaled: weights, gradients and moments lengths differ"
    );
    let (src, sc) = (g, Some(inv_scale));
    use crate::scalar::optim::adam_scaled_scalar as reference;
    match g {
        Src::F32(g) => {
            by_copy!(copy, adam_body, f32, s, a, w, g, sc, m, v; |c| reference(a, w, src, inv_scale, m, v, c))
        }
        Src::F16(g) => {
            by_copy!(copy, adam_body, f16, s, a, w, g, sc, m, v; |c| reference(a, w, src, inv_scale, m, v, c))
        }
        Src::Bf16(g) => {
            by_copy!(copy, adam_body, bf16, s, a, w, g, sc, m, v; |c| reference(a, w, src, inv_scale, m, v, c))
        }
        Src::F64(_) => reference(a, w, src, inv_scale, m, v, copy),
    }
}
