//! The loss family (`crate::loss`) on any ISA token: rows widened once into
//! an f32 buffer (long rows in blocks), the max, `Σ e^(x − m)` and the
//! gradient's exponentials vectorised as in softmax. f64 logits (or f64
//! outputs) run the reference.

use super::ew::{BLOCK, View, map1, narrow, widen, with_out};
use super::reduce::{ROW, fold_extreme, ln1, row_max, sum_exp};
use super::{Simd, math};
use crate::slice::{Dst, Elem as DType, Src};

/// `(max, Σ e^(x − max))` of row `x[start..start + n]`.
#[inline(always)]
fn row_stats<S: Simd>(s: S, x: Src<'_>, start: usize, n: usize, buf: &mut [f32; ROW]) -> (f32, f32) {
    if n <= ROW {
        let r = widen(s, x, start, n, buf);
        let m = row_max(s, r);
        return (m, sum_exp(s, r, m, None));
    }
    let mut m = f32::NEG_INFINITY;
    super::reduce::for_each_block(
        s,
        x,
        start,
        n,
        #[inline(always)]
        |_, b| m = fold_extreme(&[m, row_max(s, b)], true),
    );
    let mut sum = 0.0f32;
    super::reduce::for_each_block(
        s,
        x,
        start,
        n,
        #[inline(always)]
        |_, b| sum += sum_exp(s, b, m, None),
    );
    (m, sum)
}

/// SIMD body of [`crate::loss::cross_entropy`].
#[inline(always)]
pub(crate) fn cross_entropy<S: Simd>(
    s: S,
    logits: Src<'_>,
    rows: usize,
    n: usize,
    targets: &[usize],
    mut loss: Dst<'_>,
    mut lse: Dst<'_>,
) {
    if [logits.elem(), loss.elem(), lse.elem()].contains(&DType::F64) {
        return crate::scalar::loss::cross_entropy_scalar(logits, rows, n, targets, loss, lse);
    }
    let mut buf = [0.0f32; ROW];
    let (mut lb, mut eb) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut i = 0;
    while i < rows {
        let c = BLOCK.min(rows - i);
        for k in 0..c {
            let r = i + k;
            let (m, sum) = row_stats(s, logits, r * n, n, &mut buf);
            let l = m + ln1(s, sum);
            eb[k] = l;
            lb[k] = l - logits.get_f64(r * n + targets[r]) as f32;
        }
        narrow(s, &lb[..c], &mut loss, i);
        narrow(s, &eb[..c], &mut lse, i);
        i += c;
    }
}

/// SIMD body of [`crate::loss::cross_entropy_grad`]: one pass per row,
/// `p = e^(x − lse)` into a block buffer, the target lane zeroed before the
/// `Σ_{j≠t} p` accumulation, `g·p` written, then the target's `−g·Σ`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn cross_entropy_grad<S: Simd>(
    s: S,
    logits: Src<'_>,
    rows: usize,
    n: usize,
    targets: &[usize],
    lse: Src<'_>,
    g: Src<'_>,
    mut grad: Dst<'_>,
) {
    if [logits.elem(), lse.elem(), g.elem(), grad.elem()].contains(&DType::F64) {
        return crate::scalar::loss::cross_entropy_grad_scalar(logits, rows, n, targets, lse, g, grad);
    }
    let (mut xb, mut pb, mut ob) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    for (i, &t) in targets.iter().enumerate().take(rows) {
        let l = s.splat(lse.get_f64(i) as f32);
        let gi = g.get_f64(if g.len() == 1 { 0 } else { i }) as f32;
        let gv = s.splat(gi);
        let mut others = [s.splat(0.0); 2];
        let mut j = 0;
        while j < n {
            let c = BLOCK.min(n - j);
            let x = widen(s, logits, i * n + j, c, &mut xb);
            let p = &mut pb[..c];
            map1(
                s,
                x,
                p,
                #[inline(always)]
                |v| math::exp(s, s.sub(v, l)),
            );
            if (j..j + c).contains(&t) {
                p[t - j] = 0.0;
            }
            let mut k = 0;
            while k < c {
                let m = c - k;
                let v = if m >= S::LANES { s.load_f32(&p[k..]) } else { s.load_f32_partial(&p[k..]) };
                others[(k / S::LANES) & 1] = s.add(others[(k / S::LANES) & 1], v);
                k += S::LANES;
            }
            with_out(
                s,
                &mut grad,
                i * n + j,
                c,
                &mut ob,
                #[inline(always)]
                |o| {
                    super::ew::map2(
                        s,
                        View::Slice(p),
                        View::Splat(gi),
                        o,
                        #[inline(always)]
                        |a, _| s.mul(a, gv),
                    )
                },
            );
            j += c;
        }
        let sum = s.reduce_add(s.add(others[0], others[1]));
        narrow(s, &[-(gi * sum)], &mut grad, i * n + t);
    }
}
