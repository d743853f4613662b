//! The batch-norm kernels (`crate::norm`) on any ISA token: f32, f16 or
//! bf16 rows loaded straight into f32 lanes (no widened copy), the
//! reference's operations per lane, one rounding per stored element. The
//! elementwise passes are bit-identical to the reference; the sums keep two
//! vector accumulators per quantity (fused multiply-add for `Σ m·(x − μ)`).
//! f64 operands, or operands of different types, run the reference.

use half::{bf16, f16};

use super::{Elem, Simd};
use crate::scalar::norm as reference;
use crate::slice::{Dst, Src};

/// The typed slice of a [`Src`] or [`Dst`] of this element type.
trait Pick: Elem {
    fn src<'a>(s: &Src<'a>) -> Option<&'a [Self]>;
    fn dst<'a, 'b>(d: &'b mut Dst<'a>) -> Option<&'b mut [Self]>;
}

macro_rules! pick {
    ($t:ty, $v:ident) => {
        impl Pick for $t {
            #[inline(always)]
            fn src<'a>(s: &Src<'a>) -> Option<&'a [$t]> {
                if let Src::$v(v) = *s { Some(v) } else { None }
            }
            #[inline(always)]
            fn dst<'a, 'b>(d: &'b mut Dst<'a>) -> Option<&'b mut [$t]> {
                if let Dst::$v(v) = d { Some(&mut **v) } else { None }
            }
        }
    };
}
pick!(f32, F32);
pick!(f16, F16);
pick!(bf16, Bf16);

/// `mask` typed as `E` (`Some(None)` when absent), or `None` on a type mismatch.
#[inline(always)]
fn pick_mask<'a, E: Pick>(mask: &Option<Src<'a>>) -> Option<Option<&'a [E]>> {
    match mask {
        None => Some(None),
        Some(y) => E::src(y).map(Some),
    }
}

/// `LANES` (or `len < LANES`, other lanes 0) elements at `at`.
#[inline(always)]
fn ld<S: Simd, E: Elem>(s: S, v: &[E], at: usize, len: usize) -> S::F {
    if len < S::LANES { E::load_partial(s, &v[at..at + len]) } else { E::load(s, &v[at..]) }
}

#[inline(always)]
fn st<S: Simd, E: Elem>(s: S, v: &mut [E], at: usize, len: usize, x: S::F) {
    if len < S::LANES { E::store_partial(s, &mut v[at..at + len], x) } else { E::store(s, &mut v[at..], x) }
}

/// The masked gradient of `len` lanes at `at`.
#[inline(always)]
fn masked<S: Simd, E: Elem>(s: S, g: &[E], y: Option<&[E]>, at: usize, len: usize) -> S::F {
    let gv = ld(s, g, at, len);
    match y {
        None => gv,
        Some(y) => {
            let zero = s.splat(0.0);
            s.select(s.lt(zero, ld(s, y, at, len)), gv, zero)
        }
    }
}

/// A row's four constants rounded to f32 and splatted. (Every helper that
/// calls the token's methods is a function marked `#[inline(always)]`, not
/// a closure, so it inlines into the caller's `#[target_feature]` body.)
#[inline(always)]
fn splat4<S: Simd>(s: S, k: &[f64; 4]) -> [S::F; 4] {
    [s.splat(k[0] as f32), s.splat(k[1] as f32), s.splat(k[2] as f32), s.splat(k[3] as f32)]
}

/// `act(((v − μ)·σ⁻¹)·γ + β)` for `c = [μ, σ⁻¹, γ, β]`.
#[inline(always)]
fn affine<S: Simd>(s: S, v: S::F, c: [S::F; 4], relu: bool) -> S::F {
    let t = s.add(s.mul(s.mul(s.sub(v, c[0]), c[1]), c[2]), c[3]);
    if relu {
        let zero = s.splat(0.0);
        s.select(s.le(t, zero), zero, t)
    } else {
        t
    }
}

/// `((a·m) + (b·(x − μ))) + c` for `k = [a, b, c, μ]`.
#[inline(always)]
fn dx_of<S: Simd>(s: S, m: S::F, x: S::F, k: [S::F; 4]) -> S::F {
    s.add(s.add(s.mul(k[0], m), s.mul(k[1], s.sub(x, k[3]))), k[2])
}

#[inline(always)]
fn affine_body<S: Simd, E: Elem>(s: S, x: &[E], n: usize, k: &[[f64; 4]], relu: bool, y: &mut [E]) {
    let l = S::LANES;
    for (r, kr) in k.iter().enumerate() {
        let c = splat4(s, kr);
        let (x, y) = (&x[r * n..(r + 1) * n], &mut y[r * n..(r + 1) * n]);
        let mut j = 0;
        while j + 2 * l <= n {
            let (a, b) = (E::load(s, &x[j..]), E::load(s, &x[j + l..]));
            E::store(s, &mut y[j..], affine(s, a, c, relu));
            E::store(s, &mut y[j + l..], affine(s, b, c, relu));
            j += 2 * l;
        }
        while j < n {
            let len = l.min(n - j);
            st(s, y, j, len, affine(s, ld(s, x, j, len), c, relu));
            j += len;
        }
    }
}

/// SIMD body of [`crate::norm::affine_rows`].
#[inline(always)]
pub(crate) fn affine_rows<S: Simd>(
    s: S,
    x: Src<'_>,
    rows: usize,
    n: usize,
    k: &[[f64; 4]],
    relu: bool,
    mut y: Dst<'_>,
) {
    #[inline(always)]
    fn typed<S: Simd, E: Pick>(s: S, x: &Src<'_>, n: usize, k: &[[f64; 4]], relu: bool, y: &mut Dst<'_>) -> bool {
        let (Some(x), Some(y)) = (E::src(x), E::dst(y)) else { return false };
        affine_body::<S, E>(s, x, n, k, relu, y);
        true
    }
    let k = &k[..rows];
    let done = match x {
        Src::F32(_) => typed::<S, f32>(s, &x, n, k, relu, &mut y),
        Src::F16(_) => typed::<S, f16>(s, &x, n, k, relu, &mut y),
        Src::Bf16(_) => typed::<S, bf16>(s, &x, n, k, relu, &mut y),
        Src::F64(_) => false,
    };
    if !done {
        reference::affine_rows_scalar(x, rows, n, k, relu, y)
    }
}

#[inline(always)]
fn sums_body<S: Simd, E: Elem>(s: S, g: &[E], y: Option<&[E]>, x: &[E], n: usize, mu: &[f64], sums: &mut [[f64; 2]]) {
    let l = S::LANES;
    for (r, (&mur, out)) in mu.iter().zip(sums.iter_mut()).enumerate() {
        let m0 = s.splat(mur as f32);
        let (g, x, y) = (&g[r * n..(r + 1) * n], &x[r * n..(r + 1) * n], y.map(|y| &y[r * n..(r + 1) * n]));
        let zero = s.splat(0.0);
        let (mut s0, mut s1, mut t0, mut t1) = (zero, zero, zero, zero);
        let mut j = 0;
        while j + 2 * l <= n {
            let (ma, mb) = (masked(s, g, y, j, l), masked(s, g, y, j + l, l));
            let (xa, xb) = (E::load(s, &x[j..]), E::load(s, &x[j + l..]));
            s0 = s.add(s0, ma);
            s1 = s.add(s1, mb);
            t0 = s.mul_add(ma, s.sub(xa, m0), t0);
            t1 = s.mul_add(mb, s.sub(xb, m0), t1);
            j += 2 * l;
        }
        while j < n {
            let len = l.min(n - j);
            let m = masked(s, g, y, j, len);
            let mut d = s.sub(ld(s, x, j, len), m0);
            if len < l {
                // Lanes past the row add +0, not 0·(0 − μ) (NaN for μ = ±Inf).
                d = s.select(s.first_lanes(len), d, zero);
            }
            s0 = s.add(s0, m);
            t0 = s.mul_add(m, d, t0);
            j += len;
        }
        *out = [s.reduce_add(s.add(s0, s1)) as f64, s.reduce_add(s.add(t0, t1)) as f64];
    }
}

/// SIMD body of [`crate::norm::grad_sums_rows`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn grad_sums_rows<S: Simd>(
    s: S,
    g: Src<'_>,
    mask: Option<Src<'_>>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    mu: &[f64],
    sums: &mut [[f64; 2]],
) {
    #[inline(always)]
    fn typed<S: Simd, E: Pick>(
        s: S,
        g: &Src<'_>,
        mask: &Option<Src<'_>>,
        x: &Src<'_>,
        n: usize,
        mu: &[f64],
        sums: &mut [[f64; 2]],
    ) -> bool {
        let (Some(g), Some(y), Some(x)) = (E::src(g), pick_mask::<E>(mask), E::src(x)) else { return false };
        sums_body::<S, E>(s, g, y, x, n, mu, sums);
        true
    }
    let (mu, sums_r) = (&mu[..rows], &mut sums[..rows]);
    let done = match x {
        Src::F32(_) => typed::<S, f32>(s, &g, &mask, &x, n, mu, sums_r),
        Src::F16(_) => typed::<S, f16>(s, &g, &mask, &x, n, mu, sums_r),
        Src::Bf16(_) => typed::<S, bf16>(s, &g, &mask, &x, n, mu, sums_r),
        Src::F64(_) => false,
    };
    if !done {
        reference::grad_sums_rows_scalar(g, mask, x, rows, n, mu, sums)
    }
}

#[inline(always)]
fn grad_body<S: Simd, E: Elem>(s: S, g: &[E], y: Option<&[E]>, x: &[E], n: usize, k: &[[f64; 4]], dx: &mut [E]) {
    let l = S::LANES;
    for (r, kr) in k.iter().enumerate() {
        let c = splat4(s, kr);
        let (g, x, y, d) = (
            &g[r * n..(r + 1) * n],
            &x[r * n..(r + 1) * n],
            y.map(|y| &y[r * n..(r + 1) * n]),
            &mut dx[r * n..(r + 1) * n],
        );
        let mut j = 0;
        while j + 2 * l <= n {
            let (ma, mb) = (masked(s, g, y, j, l), masked(s, g, y, j + l, l));
            let (xa, xb) = (E::load(s, &x[j..]), E::load(s, &x[j + l..]));
            E::store(s, &mut d[j..], dx_of(s, ma, xa, c));
            E::store(s, &mut d[j + l..], dx_of(s, mb, xb, c));
            j += 2 * l;
        }
        while j < n {
            let len = l.min(n - j);
            st(s, d, j, len, dx_of(s, masked(s, g, y, j, len), ld(s, x, j, len), c));
            j += len;
        }
    }
}

/// SIMD body of [`crate::norm::grad_rows`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn grad_rows<S: Simd>(
    s: S,
    g: Src<'_>,
    mask: Option<Src<'_>>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    k: &[[f64; 4]],
    mut dx: Dst<'_>,
) {
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn typed<S: Simd, E: Pick>(
        s: S,
        g: &Src<'_>,
        mask: &Option<Src<'_>>,
        x: &Src<'_>,
        n: usize,
        k: &[[f64; 4]],
        dx: &mut Dst<'_>,
    ) -> bool {
        let (Some(g), Some(y), Some(x), Some(d)) = (E::src(g), pick_mask::<E>(mask), E::src(x), E::dst(dx)) else {
            return false;
        };
        grad_body::<S, E>(s, g, y, x, n, k, d);
        true
    }
    let k = &k[..rows];
    let done = match x {
        Src::F32(_) => typed::<S, f32>(s, &g, &mask, &x, n, k, &mut dx),
        Src::F16(_) => typed::<S, f16>(s, &g, &mask, &x, n, k, &mut dx),
        Src::Bf16(_) => typed::<S, bf16>(s, &g, &mask, &x, n, k, &mut dx),
        Src::F64(_) => false,
    };
    if !done {
        reference::grad_rows_scalar(g, mask, x, rows, n, k, dx)
    }
}
