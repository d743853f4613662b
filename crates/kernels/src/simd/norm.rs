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

/// An element type of the SIMD paths: its typed slice of a [`Src`] or
/// [`Dst`], and the largest f32 that rounds to +0 in it.
trait Pick: Elem {
    const ROUNDS_TO_ZERO: f32;
    fn src<'a>(s: &Src<'a>) -> Option<&'a [Self]>;
    fn dst<'a, 'b>(d: &'b mut Dst<'a>) -> Option<&'b mut [Self]>;
}

macro_rules! pick {
    ($t:ty, $v:ident, $zero:expr) => {
        impl Pick for $t {
            const ROUNDS_TO_ZERO: f32 = $zero;
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
pick!(f32, F32, 0.0);
pick!(f16, F16, crate::scalar::norm::F16_ROUNDS_TO_ZERO);
pick!(bf16, Bf16, crate::scalar::norm::BF16_ROUNDS_TO_ZERO);

/// Runs `$typed` with `$E` the element type of `$x` (f32, f16 or bf16)
/// where every `$v = $pick` picks its operand as that type (`Some`), else
/// (f64, or operands of different types) `$reference`. A macro, not a
/// closure, so everything inlines into the `#[target_feature]` entry.
macro_rules! typed_or_reference {
    ($x:expr, $E:ident, ($($v:ident = $pick:expr),+) => $typed:expr, else $reference:expr) => {{
        let done = match $x {
            Src::F32(_) => typed_or_reference!(@as f32, $E, ($($v = $pick),+) => $typed),
            Src::F16(_) => typed_or_reference!(@as f16, $E, ($($v = $pick),+) => $typed),
            Src::Bf16(_) => typed_or_reference!(@as bf16, $E, ($($v = $pick),+) => $typed),
            Src::F64(_) => false,
        };
        if !done {
            $reference
        }
    }};
    (@as $t:ty, $E:ident, ($($v:ident = $pick:expr),+) => $typed:expr) => {{
        type $E = $t;
        if let ($(Some($v)),+) = ($($pick),+) {
            $typed;
            true
        } else {
            false
        }
    }};
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

/// A row's four constants rounded to f32 and splatted. (Every helper that
/// calls the token's methods is a function marked `#[inline(always)]`, not
/// a closure, so it inlines into the caller's `#[target_feature]` body.)
#[inline(always)]
fn splat4<S: Simd>(s: S, k: &[f64; 4]) -> [S::F; 4] {
    [s.splat(k[0] as f32), s.splat(k[1] as f32), s.splat(k[2] as f32), s.splat(k[3] as f32)]
}

/// The forward constants of row `r`, if the gradient is masked by the ReLU.
/// (A `match`, not `Option::map`: the closure would not inline.)
#[inline(always)]
#[allow(clippy::manual_map)]
fn relu_row<S: Simd>(s: S, relu: Option<&[[f64; 4]]>, r: usize) -> Option<[S::F; 4]> {
    match relu {
        Some(k) => Some(splat4(s, &k[r])),
        None => None,
    }
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

/// `g`, or with the forward constants `c`, `g` where the forward's output
/// (recomputed from `x`) is positive once rounded (`t > thr`) and +0 elsewhere.
#[inline(always)]
fn masked<S: Simd>(s: S, g: S::F, x: S::F, c: Option<[S::F; 4]>, thr: S::F) -> S::F {
    match c {
        None => g,
        Some(c) => s.select(s.lt(thr, affine(s, x, c, false)), g, s.splat(0.0)),
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
    let k = &k[..rows];
    typed_or_reference!(x, E, (xe = E::src(&x), ye = E::dst(&mut y)) => affine_body::<S, E>(s, xe, n, k, relu, ye),
        else reference::affine_rows_scalar(x, rows, n, k, relu, y))
}

#[inline(always)]
fn sums_body<S: Simd, E: Pick>(
    s: S,
    g: &[E],
    relu: Option<&[[f64; 4]]>,
    x: &[E],
    n: usize,
    mu: &[f64],
    sums: &mut [[f64; 2]],
) {
    let l = S::LANES;
    let (zero, thr) = (s.splat(0.0), s.splat(E::ROUNDS_TO_ZERO));
    for (r, (&mur, out)) in mu.iter().zip(sums.iter_mut()).enumerate() {
        let (m0, c) = (s.splat(mur as f32), relu_row(s, relu, r));
        let (g, x) = (&g[r * n..(r + 1) * n], &x[r * n..(r + 1) * n]);
        let (mut s0, mut s1, mut t0, mut t1) = (zero, zero, zero, zero);
        let mut j = 0;
        while j + 2 * l <= n {
            let (xa, xb) = (E::load(s, &x[j..]), E::load(s, &x[j + l..]));
            let ma = masked(s, E::load(s, &g[j..]), xa, c, thr);
            let mb = masked(s, E::load(s, &g[j + l..]), xb, c, thr);
            s0 = s.add(s0, ma);
            s1 = s.add(s1, mb);
            t0 = s.mul_add(ma, s.sub(xa, m0), t0);
            t1 = s.mul_add(mb, s.sub(xb, m0), t1);
            j += 2 * l;
        }
        while j < n {
            let len = l.min(n - j);
            let xv = ld(s, x, j, len);
            let m = masked(s, ld(s, g, j, len), xv, c, thr);
            let mut d = s.sub(xv, m0);
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
    relu: Option<&[[f64; 4]]>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    mu: &[f64],
    sums: &mut [[f64; 2]],
) {
    let (mu, sums_r) = (&mu[..rows], &mut sums[..rows]);
    typed_or_reference!(x, E, (ge = E::src(&g), xe = E::src(&x)) => sums_body::<S, E>(s, ge, relu, xe, n, mu, sums_r),
        else reference::grad_sums_rows_scalar(g, relu, x, rows, n, mu, sums))
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn grad_body<S: Simd, E: Pick>(
    s: S,
    g: &[E],
    relu: Option<&[[f64; 4]]>,
    x: &[E],
    n: usize,
    k: &[[f64; 4]],
    dx: &mut [E],
) {
    let l = S::LANES;
    let thr = s.splat(E::ROUNDS_TO_ZERO);
    for (r, kr) in k.iter().enumerate() {
        let (k, c) = (splat4(s, kr), relu_row(s, relu, r));
        let (g, x, d) = (&g[r * n..(r + 1) * n], &x[r * n..(r + 1) * n], &mut dx[r * n..(r + 1) * n]);
        let mut j = 0;
        while j + 2 * l <= n {
            let (xa, xb) = (E::load(s, &x[j..]), E::load(s, &x[j + l..]));
            let ma = masked(s, E::load(s, &g[j..]), xa, c, thr);
            let mb = masked(s, E::load(s, &g[j + l..]), xb, c, thr);
            E::store(s, &mut d[j..], dx_of(s, ma, xa, k));
            E::store(s, &mut d[j + l..], dx_of(s, mb, xb, k));
            j += 2 * l;
        }
        while j < n {
            let len = l.min(n - j);
            let xv = ld(s, x, j, len);
            st(s, d, j, len, dx_of(s, masked(s, ld(s, g, j, len), xv, c, thr), xv, k));
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
    relu: Option<&[[f64; 4]]>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    k: &[[f64; 4]],
    mut dx: Dst<'_>,
) {
    let k = &k[..rows];
    typed_or_reference!(x, E, (ge = E::src(&g), xe = E::src(&x), de = E::dst(&mut dx)) => grad_body::<S, E>(s, ge, relu, xe, n, k, de),
        else reference::grad_rows_scalar(g, relu, x, rows, n, k, dx))
}
