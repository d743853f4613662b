//! Reference of the batch-norm kernels (`crate::norm`): row by row, the
//! documented operations in their order in the compute type (FP32 unless an
//! operand is f64), sums strictly sequential.

use crate::scalar::reduce::{Acc, with_acc};
use crate::slice::{Dst, Elem, Src, computes_in_f64};

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

/// `g` masked by `y > 0` (NaN `y` masks), or `g` itself.
fn masked<A: Acc>(g: &Src<'_>, mask: &Option<Src<'_>>, start: usize, n: usize) -> Vec<A> {
    let mut m = load::<A>(g, start, n);
    if let Some(y) = mask {
        for (mv, yv) in m.iter_mut().zip(load::<A>(y, start, n)) {
            if yv.partial_cmp(&A::ZERO) != Some(std::cmp::Ordering::Greater) {
                *mv = A::ZERO;
            }
        }
    }
    m
}

fn elems(srcs: &[&Src<'_>], mask: &Option<Src<'_>>) -> Vec<Elem> {
    srcs.iter().map(|s| s.elem()).chain(mask.iter().map(|y| y.elem())).collect()
}

/// Reference of [`crate::norm::affine_rows`].
pub fn affine_rows_scalar(x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], relu: bool, mut y: Dst<'_>) {
    with_acc!(&[x.elem()], y.elem(), A => {
        for (r, kr) in k.iter().enumerate().take(rows) {
            let [mu, is, ga, be] = kr.map(A::of);
            let mut v = load::<A>(&x, r * n, n);
            for e in v.iter_mut() {
                let t = (*e - mu) * is * ga + be;
                *e = if relu && t <= A::ZERO { A::ZERO } else { t };
            }
            A::store(&mut y, r * n, &v);
        }
    })
}

/// Reference of [`crate::norm::grad_sums_rows`].
pub fn grad_sums_rows_scalar(
    g: Src<'_>,
    mask: Option<Src<'_>>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    mu: &[f64],
    sums: &mut [[f64; 2]],
) {
    with_acc!(&elems(&[&g, &x], &mask), Elem::F32, A => {
        for r in 0..rows {
            let m = masked::<A>(&g, &mask, r * n, n);
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
    mask: Option<Src<'_>>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    k: &[[f64; 4]],
    mut dx: Dst<'_>,
) {
    with_acc!(&elems(&[&g, &x], &mask), dx.elem(), A => {
        for (r, kr) in k.iter().enumerate().take(rows) {
            let [a, b, c, mur] = kr.map(A::of);
            let mut d = masked::<A>(&g, &mask, r * n, n);
            let xs = load::<A>(&x, r * n, n);
            for (dv, &xv) in d.iter_mut().zip(&xs) {
                *dv = a * *dv + b * (xv - mur) + c;
            }
            A::store(&mut dx, r * n, &d);
        }
    })
}
