//! Reference of the batch-norm kernels (`crate::norm`): row by row, the
//! documented operations in their order in the compute type (FP32 unless an
//! operand is f64), sums strictly sequential.

use crate::scalar::reduce::{Acc, with_acc};
use crate::slice::{Dst, Elem, Src, computes_in_f64};

/// The largest f32 that rounds to +0 as f16 (2^-25, the tie with the
/// smallest subnormal, rounds to even: 0).
pub const F16_ROUNDS_TO_ZERO: f32 = f32::from_bits(0x3300_0000);
/// The largest f32 that rounds to +0 as bf16 (2^-134, the tie with the
/// smallest subnormal).
pub const BF16_ROUNDS_TO_ZERO: f32 = f32::from_bits(0x0000_8000);

/// A compute type that row constants (given in f64) are rounded to.
trait Real: Acc {
    fn of(v: f64) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
}

fn load<A: Acc>(src: &Src<'_>, start: usize, n: usize) -> Vec<A> {
    let mut v = vec![A::ZERO; n];
    A::load(src, start, &mut v);
    v
}

/// `affine_rows`' value before the ReLU, `((x − μ)·σ⁻¹)·γ + β`.
fn affine<A: Real>(x: A, k: &[f64; 4]) -> A {
    let [mu, is, ga, be] = k.map(A::of);
    (x - mu) * is * ga + be
}

/// The largest value that `x`'s type rounds to +0, in the compute type.
fn rounds_to_zero<A: Real>(x: &Src<'_>) -> A {
    match x.elem() {
        Elem::F16 => A::of(F16_ROUNDS_TO_ZERO as f64),
        Elem::Bf16 => A::of(BF16_ROUNDS_TO_ZERO as f64),
        Elem::F32 | Elem::F64 => A::ZERO,
    }
}

/// Row `r` of `g`, masked where the forward output recomputed from `x`
/// (with `relu[r]`) is not positive once rounded to `x`'s type.
fn masked<A: Real>(g: &Src<'_>, relu: Option<&[[f64; 4]]>, x: &Src<'_>, r: usize, n: usize) -> Vec<A> {
    let mut m = load::<A>(g, r * n, n);
    if let Some(k) = relu {
        let thr = rounds_to_zero::<A>(x);
        for (mv, xv) in m.iter_mut().zip(load::<A>(x, r * n, n)) {
            if affine(xv, &k[r]).partial_cmp(&thr) != Some(std::cmp::Ordering::Greater) {
                *mv = A::ZERO;
            }
        }
    }
    m
}

/// Reference of [`crate::norm::affine_rows`].
pub fn affine_rows_scalar(x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], relu: bool, mut y: Dst<'_>) {
    with_acc!(&[x.elem()], y.elem(), A => {
        for (r, kr) in k.iter().enumerate().take(rows) {
            let mut v = load::<A>(&x, r * n, n);
            for e in v.iter_mut() {
                let t = affine(*e, kr);
                *e = if relu && t <= A::ZERO { A::ZERO } else { t };
            }
            A::store(&mut y, r * n, &v);
        }
    })
}

/// Reference of [`crate::norm::grad_sums_rows`].
pub fn grad_sums_rows_scalar(
    g: Src<'_>,
    relu: Option<&[[f64; 4]]>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    mu: &[f64],
    sums: &mut [[f64; 2]],
) {
    with_acc!(&[g.elem(), x.elem()], Elem::F32, A => {
        for r in 0..rows {
            let m = masked::<A>(&g, relu, &x, r, n);
            let xs = load::<A>(&x, r * n, n);
            let mur = A::of(mu[r]);
            let (mut s0, mut s1) = (A::ZERO, A::ZERO);
            for (&mv, &xv) in m.iter().zip(&xs) {
                s0 += mv;
                s1 += mv * (xv - mur);
            }
            sums[r] = [s0.widen(), s1.widen()];
        }
    })
}

/// Reference of [`crate::norm::grad_rows`].
pub fn grad_rows_scalar(
    g: Src<'_>,
    relu: Option<&[[f64; 4]]>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    k: &[[f64; 4]],
    mut dx: Dst<'_>,
) {
    with_acc!(&[g.elem(), x.elem()], dx.elem(), A => {
        for (r, kr) in k.iter().enumerate().take(rows) {
            let [a, b, c, mur] = kr.map(A::of);
            let mut d = masked::<A>(&g, relu, &x, r, n);
            let xs = load::<A>(&x, r * n, n);
            for (dv, &xv) in d.iter_mut().zip(&xs) {
                *dv = a * *dv + b * (xv - mur) + c;
            }
            A::store(&mut dx, r * n, &d);
        }
    })
}
