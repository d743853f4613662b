//! Reference cross-entropy: FP32 (f64 for f64 logits), one row at a time,
//! sums strictly in order, each exponential and logarithm evaluated in f64
//! and rounded once (as the reduction reference does).

use super::reduce::{Acc, with_acc};
use crate::slice::{Dst, Src, computes_in_f64};

/// Reference of [`crate::loss::cross_entropy`].
pub fn cross_entropy_scalar(
    logits: Src<'_>,
    rows: usize,
    n: usize,
    targets: &[usize],
    mut loss: Dst<'_>,
    mut lse: Dst<'_>,
) {
    let wide = computes_in_f64(&[logits.elem()], loss.elem()) || lse.elem() == crate::slice::Elem::F64;
    let out = if wide { crate::slice::Elem::F64 } else { crate::slice::Elem::F32 };
    with_acc!(&[logits.elem()], out, T => {
        let mut row = vec![T::ZERO; n];
        for (i, &t) in targets.iter().enumerate().take(rows) {
            T::load(&logits, i * n, &mut row);
            let m = row.iter().fold(T::INF.neg(), |a, &v| Acc::maximum(a, v));
            let mut s = T::ZERO;
            for &v in &row {
                s += (v - m).exp();
            }
            let l = m + s.ln();
            T::store(&mut lse, i, &[l]);
            T::store(&mut loss, i, &[l - row[t]]);
        }
    })
}

/// Reference of [`crate::loss::cross_entropy_grad`].
pub fn cross_entropy_grad_scalar(
    logits: Src<'_>,
    rows: usize,
    n: usize,
    targets: &[usize],
    lse: Src<'_>,
    g: Src<'_>,
    mut grad: Dst<'_>,
) {
    with_acc!(&[logits.elem(), lse.elem(), g.elem()], grad.elem(), T => {
        let mut row = vec![T::ZERO; n];
        let mut one = [T::ZERO; 1];
        for (i, &t) in targets.iter().enumerate().take(rows) {
            T::load(&logits, i * n, &mut row);
            T::load(&lse, i, &mut one);
            let l = one[0];
            T::load(&g, if g.len() == 1 { 0 } else { i }, &mut one);
            let gi = one[0];
            // The target's p − 1 as −Σ_{j≠t} p_j: no cancellation near p = 1.
            let mut others = T::ZERO;
            for (j, v) in row.iter_mut().enumerate() {
                let p = (*v - l).exp();
                if j != t {
                    others += p;
                }
                *v = gi * p;
            }
            row[t] = (gi * others).neg();
            T::store(&mut grad, i * n, &row);
        }
    })
}
