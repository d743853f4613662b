//! The reduction family (`crate::reduce`) on any ISA token: FP32
//! accumulation for every f32/f16/bf16 input, in `4·LANES` independent
//! partial sums per row (added pairwise at the end), so the error stays
//! within `(n/(4L) + log2(4L) + 1)·u·Σ|x|` — inside the documented
//! `2·n·u·Σ|x|`. Softmax runs on rows widened once into an f32 buffer (up
//! to [`ROW`] elements; longer rows in blocks); log-softmax of an f16/bf16
//! row without NaN is widened by its second pass instead — its max in
//! 16-bit integer lanes, the exponential sum widening as it loads and
//! leaving the f32 row for the output pass — which is how those rows run
//! at the element rate of f32 ones. Anything involving f64 runs the
//! reference.
//!
//! Max and min are IEEE `maximum`/`minimum` (NaN wins, `+0 > −0`); argmax
//! keeps the first index among ties and the first NaN, as the reference.

use std::ops::Range;

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::ew::{BLOCK, narrow, widen};
use super::{Elem, Simd, math};
use crate::reduce::{ArgOp, ReduceOp, SoftmaxOp};
use crate::slice::{Dst, Elem as DType, Src};

/// Rows up to this length are widened once and kept in an f32 buffer.
pub(crate) const ROW: usize = 4096;

fn is_f64(x: &Src<'_>) -> bool {
    x.elem() == DType::F64
}

/// Calls `f(block)` on `x[start..start + len]` in f32 blocks of at most [`BLOCK`].
#[inline(always)]
pub(crate) fn for_each_block<S: Simd>(s: S, x: Src<'_>, start: usize, len: usize, mut f: impl FnMut(usize, &[f32])) {
    let mut buf = [0.0f32; BLOCK];
    let mut j = 0;
    while j < len {
        let l = BLOCK.min(len - j);
        f(j, widen(s, x, start + j, l, &mut buf));
        j += l;
    }
}

/// IEEE `maximum`/`minimum` on vectors (NaN wins, `±0` by sign).
#[inline(always)]
fn extreme<S: Simd>(s: S, a: S::F, b: S::F, max: bool) -> S::F {
    let m = if max { s.max(a, b) } else { s.min(a, b) };
    let (ab, bb) = (s.to_bits(a), s.to_bits(b));
    let zeros = if max { s.bits_to_float(s.and_i(ab, bb)) } else { s.bits_to_float(s.or_i(ab, bb)) };
    let m = s.select(s.eq(a, b), zeros, m);
    s.select(s.or(s.is_nan(a), s.is_nan(b)), s.add(a, b), m)
}

/// Four vector accumulators over one row, combined pairwise.
struct Acc<S: Simd> {
    v: [S::F; 4],
}

impl<S: Simd> Acc<S> {
    #[inline(always)]
    fn new(s: S, init: f32) -> Self {
        Acc { v: [s.splat(init); 4] }
    }

    /// Folds `x` (any length) into the accumulators with `f`; tail lanes
    /// take `pad` (the identity of `f`).
    #[inline(always)]
    fn fold(&mut self, s: S, x: &[f32], pad: f32, f: impl Fn(S::F, S::F) -> S::F) {
        let l = S::LANES;
        let mut c4 = x.chunks_exact(4 * l);
        for c in &mut c4 {
            for (j, acc) in self.v.iter_mut().enumerate() {
                *acc = f(*acc, s.load_f32(&c[j * l..]));
            }
        }
        let mut c1 = c4.remainder().chunks_exact(l);
        for (j, c) in (&mut c1).enumerate() {
            self.v[j] = f(self.v[j], s.load_f32(c));
        }
        let t = c1.remainder();
        if !t.is_empty() {
            let v = s.select(s.first_lanes(t.len()), s.load_f32_partial(t), s.splat(pad));
            self.v[3] = f(self.v[3], v);
        }
    }

    #[inline(always)]
    fn combine(&self, f: impl Fn(S::F, S::F) -> S::F) -> S::F {
        f(f(self.v[0], self.v[1]), f(self.v[2], self.v[3]))
    }
}

/// The lanes of `v`, for the final horizontal step of max/min.
#[inline(always)]
fn lanes<S: Simd>(s: S, v: S::F) -> ([f32; 16], usize) {
    let mut out = [0.0f32; 16];
    s.store_f32(&mut out, v);
    (out, S::LANES)
}

pub(crate) fn fold_extreme(vals: &[f32], max: bool) -> f32 {
    let pick = |a: f32, b: f32| crate::ew::maximum(a as f64, b as f64) as f32;
    let pick_min = |a: f32, b: f32| crate::ew::minimum(a as f64, b as f64) as f32;
    vals.iter()
        .copied()
        .reduce(
            #[inline(always)]
            |a, b| if max { pick(a, b) } else { pick_min(a, b) },
        )
        .unwrap_or(0.0)
}

/// One row's reduction in f32.
#[inline(always)]
fn reduce_row<S: Simd>(s: S, op: ReduceOp, x: Src<'_>, start: usize, n: usize) -> f32 {
    match op {
        ReduceOp::Sum | ReduceOp::Mean | ReduceOp::SumSq => {
            let mut acc = Acc::new(s, 0.0);
            for_each_block(
                s,
                x,
                start,
                n,
                #[inline(always)]
                |_, b| {
                    if op == ReduceOp::SumSq {
                        acc.fold(
                            s,
                            b,
                            0.0,
                            #[inline(always)]
                            |a, v| s.mul_add(v, v, a),
                        );
                    } else {
                        acc.fold(
                            s,
                            b,
                            0.0,
                            #[inline(always)]
                            |a, v| s.add(a, v),
                        );
                    }
                },
            );
            let total = s.reduce_add(acc.combine(
                #[inline(always)]
                |a, b| s.add(a, b),
            ));
            if op == ReduceOp::Mean { total / n as f32 } else { total }
        }
        ReduceOp::Max | ReduceOp::Min => {
            let max = op == ReduceOp::Max;
            let id = if max { f32::NEG_INFINITY } else { f32::INFINITY };
            let mut acc = Acc::new(s, id);
            for_each_block(
                s,
                x,
                start,
                n,
                #[inline(always)]
                |_, b| {
                    acc.fold(
                        s,
                        b,
                        id,
                        #[inline(always)]
                        |a, v| extreme(s, a, v, max),
                    )
                },
            );
            let (l, k) = lanes(
                s,
                acc.combine(
                    #[inline(always)]
                    |a, b| extreme(s, a, b, max),
                ),
            );
            fold_extreme(&l[..k], max)
        }
    }
}

/// SIMD body of [`crate::reduce::reduce_rows`].
#[inline(always)]
pub(crate) fn rows<S: Simd>(s: S, op: ReduceOp, x: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    if is_f64(&x) || out.elem() == DType::F64 {
        return crate::scalar::reduce::reduce_rows_scalar(op, x, rows, n, out);
    }
    let mut buf = [0.0f32; BLOCK];
    let mut i = 0;
    while i < rows {
        let c = BLOCK.min(rows - i);
        for (k, o) in buf[..c].iter_mut().enumerate() {
            *o = reduce_row(s, op, x, (i + k) * n, n);
        }
        narrow(s, &buf[..c], &mut out, i);
        i += c;
    }
}

/// SIMD body of [`crate::reduce::reduce_cols`]: one accumulator per column
/// (a block of columns at a time), rows folded in order.
#[inline(always)]
pub(crate) fn cols<S: Simd>(s: S, op: ReduceOp, x: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    if is_f64(&x) || out.elem() == DType::F64 {
        return crate::scalar::reduce::reduce_cols_scalar(op, x, rows, n, out);
    }
    let init = match op {
        ReduceOp::Max => f32::NEG_INFINITY,
        ReduceOp::Min => f32::INFINITY,
        _ => 0.0,
    };
    let (mut acc, mut buf) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut j = 0;
    while j < n {
        let c = BLOCK.min(n - j);
        let acc = &mut acc[..c];
        acc.fill(init);
        for i in 0..rows {
            let v = widen(s, x, i * n + j, c, &mut buf);
            match op {
                ReduceOp::Sum | ReduceOp::Mean => fold_into(
                    s,
                    acc,
                    v,
                    #[inline(always)]
                    |a, b| s.add(a, b),
                ),
                ReduceOp::SumSq => fold_into(
                    s,
                    acc,
                    v,
                    #[inline(always)]
                    |a, b| s.add(a, s.mul(b, b)),
                ),
                ReduceOp::Max => fold_into(
                    s,
                    acc,
                    v,
                    #[inline(always)]
                    |a, b| extreme(s, a, b, true),
                ),
                ReduceOp::Min => fold_into(
                    s,
                    acc,
                    v,
                    #[inline(always)]
                    |a, b| extreme(s, a, b, false),
                ),
            }
        }
        if op == ReduceOp::Mean {
            let k = s.splat(rows as f32);
            fold_into(
                s,
                acc,
                &[],
                #[inline(always)]
                |a, _| s.div(a, k),
            );
        }
        narrow(s, acc, &mut out, j);
        j += c;
    }
}

/// `acc[k] = f(acc[k], v[k])` (or `f(acc[k], 0)` when `v` is empty).
#[inline(always)]
fn fold_into<S: Simd>(s: S, acc: &mut [f32], v: &[f32], f: impl Fn(S::F, S::F) -> S::F) {
    let (l, n) = (S::LANES, acc.len());
    let zero = s.splat(0.0);
    let mut k = 0;
    while k + l <= n {
        let b = if v.is_empty() { zero } else { s.load_f32(&v[k..]) };
        let r = f(s.load_f32(&acc[k..]), b);
        s.store_f32(&mut acc[k..], r);
        k += l;
    }
    if k < n {
        let b = if v.is_empty() { zero } else { s.load_f32_partial(&v[k..]) };
        let r = f(s.load_f32_partial(&acc[k..]), b);
        s.store_f32_partial(&mut acc[k..], r);
    }
}

/// Whether `v` beats `best` for `op` (a NaN beats everything but an earlier NaN).
#[inline(always)]
fn better<S: Simd>(s: S, op: ArgOp, v: S::F, best: S::F) -> S::M {
    let strict = match op {
        ArgOp::Max => s.lt(best, v),
        ArgOp::Min => s.lt(v, best),
    };
    s.and(s.not(s.is_nan(best)), s.or(strict, s.is_nan(v)))
}

/// Lane indices `0, 1, …, LANES − 1`.
#[inline(always)]
fn iota<S: Simd>(s: S) -> S::F {
    const IDX: [f32; 16] = [0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.];
    s.load_f32(&IDX)
}

/// SIMD body of [`crate::reduce::arg_rows`]: per-lane best value and index
/// (indices as f32, exact below 2^24; longer rows take the reference).
#[inline(always)]
pub(crate) fn arg_rows<S: Simd>(s: S, op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) {
    if is_f64(&x) || n >= 1 << 24 {
        return crate::scalar::reduce::arg_rows_scalar(op, x, rows, n, out);
    }
    let l = S::LANES;
    for (i, o) in out.iter_mut().enumerate().take(rows) {
        if n == 0 {
            *o = 0;
            continue;
        }
        // Seed every lane with element 0 so ties resolve to the first index.
        let first = s.splat(x.get_f64(i * n) as f32);
        let (mut best, mut at) = (first, s.splat(0.0));
        for_each_block(
            s,
            x,
            i * n,
            n,
            #[inline(always)]
            |j, b| {
                let mut k = 0;
                while k < b.len() {
                    let m = b.len() - k;
                    let v = if m >= l { s.load_f32(&b[k..]) } else { s.load_f32_partial(&b[k..]) };
                    let idx = s.add(s.splat((j + k) as f32), iota(s));
                    let take = s.and(better(s, op, v, best), s.first_lanes(m));
                    best = s.select(take, v, best);
                    at = s.select(take, idx, at);
                    k += l;
                }
            },
        );
        let (bv, k) = lanes(s, best);
        let (bi, _) = lanes(s, at);
        // Across lanes: the better value, then the smaller index.
        let mut pick = 0;
        for lane in 1..k {
            let (v, b) = (bv[lane], bv[pick]);
            let wins = if b.is_nan() {
                v.is_nan() && bi[lane] < bi[pick]
            } else if v.is_nan() {
                true
            } else {
                let strict = match op {
                    ArgOp::Max => v > b,
                    ArgOp::Min => v < b,
                };
                strict || (v == b && bi[lane] < bi[pick])
            };
            if wins {
                pick = lane;
            }
        }
        *o = bi[pick] as usize;
    }
}

/// SIMD body of [`crate::reduce::arg_cols`]: best value and row per column.
#[inline(always)]
pub(crate) fn arg_cols<S: Simd>(s: S, op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) {
    if is_f64(&x) || rows >= 1 << 24 {
        return crate::scalar::reduce::arg_cols_scalar(op, x, rows, n, out);
    }
    let l = S::LANES;
    let (mut best, mut at, mut buf) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut j = 0;
    while j < n {
        let c = BLOCK.min(n - j);
        at[..c].fill(0.0);
        for i in 0..rows {
            let v = widen(s, x, i * n + j, c, &mut buf);
            if i == 0 {
                best[..c].copy_from_slice(v);
                continue;
            }
            let row = s.splat(i as f32);
            let mut k = 0;
            while k < c {
                let m = c - k;
                let (vv, bb, aa) = if m >= l {
                    (s.load_f32(&v[k..]), s.load_f32(&best[k..]), s.load_f32(&at[k..]))
                } else {
                    (s.load_f32_partial(&v[k..c]), s.load_f32_partial(&best[k..c]), s.load_f32_partial(&at[k..c]))
                };
                let take = better(s, op, vv, bb);
                let (nb, na) = (s.select(take, vv, bb), s.select(take, row, aa));
                if m >= l {
                    s.store_f32(&mut best[k..], nb);
                    s.store_f32(&mut at[k..], na);
                } else {
                    s.store_f32_partial(&mut best[k..c], nb);
                    s.store_f32_partial(&mut at[k..c], na);
                }
                k += l;
            }
        }
        for (o, &a) in out[j..j + c].iter_mut().zip(&at[..c]) {
            *o = a as usize;
        }
        j += c;
    }
}

/// Max of `x` (IEEE: NaN wins).
#[inline(always)]
pub(crate) fn row_max<S: Simd>(s: S, x: &[f32]) -> f32 {
    let mut acc = Acc::new(s, f32::NEG_INFINITY);
    acc.fold(
        s,
        x,
        f32::NEG_INFINITY,
        #[inline(always)]
        |a, v| extreme(s, a, v, true),
    );
    let (l, k) = lanes(
        s,
        acc.combine(
            #[inline(always)]
            |a, b| extreme(s, a, b, true),
        ),
    );
    fold_extreme(&l[..k], true)
}

/// `Σ e^(x − m)`, and (softmax) `out = e^(x − m)` on the way. Without
/// `out` the terms take [`math::exp_sum_term`] (the sum is at least 1 when
/// `m` is the maximum); stored exponentials take the full [`math::exp`].
#[inline(always)]
pub(crate) fn sum_exp<S: Simd>(s: S, x: &[f32], m: f32, out: Option<&mut [f32]>) -> f32 {
    match out {
        Some(o) => sum_exp_with(
            s,
            x,
            m,
            Some(o),
            None,
            #[inline(always)]
            |d| math::exp(s, d),
        ),
        None => sum_exp_with(
            s,
            x,
            m,
            None,
            None,
            #[inline(always)]
            |d| math::exp_sum_term(s, d),
        ),
    }
}

#[inline(always)]
fn sum_exp_with<S: Simd, A: Elem>(
    s: S,
    x: &[A],
    m: f32,
    mut out: Option<&mut [f32]>,
    mut wide: Option<&mut [f32]>,
    exp: impl Fn(S::F) -> S::F,
) -> f32 {
    let (l, n) = (S::LANES, x.len());
    let mv = s.splat(m);
    let mut acc = [s.splat(0.0); 2];
    let mut k = 0;
    while k + 2 * l <= n {
        for (j, a) in acc.iter_mut().enumerate() {
            let v = A::load(s, &x[k + j * l..]);
            if let Some(w) = wide.as_deref_mut() {
                s.store_f32(&mut w[k + j * l..], v);
            }
            let e = exp(s.sub(v, mv));
            if let Some(o) = out.as_deref_mut() {
                s.store_f32(&mut o[k + j * l..], e);
            }
            *a = s.add(*a, e);
        }
        k += 2 * l;
    }
    while k < n {
        let m_ = n - k;
        let v = if m_ >= l { A::load(s, &x[k..]) } else { A::load_partial(s, &x[k..]) };
        if let Some(w) = wide.as_deref_mut() {
            if m_ >= l { s.store_f32(&mut w[k..], v) } else { s.store_f32_partial(&mut w[k..n], v) }
        }
        let e = s.select(s.first_lanes(m_), exp(s.sub(v, mv)), s.splat(0.0));
        if let Some(o) = out.as_deref_mut() {
            if m_ >= l { s.store_f32(&mut o[k..], e) } else { s.store_f32_partial(&mut o[k..], e) }
        }
        acc[0] = s.add(acc[0], e);
        k += l;
    }
    s.reduce_add(s.add(acc[0], acc[1]))
}

/// `ln v` of one f32 through the vector routine (no libm).
#[inline(always)]
pub(crate) fn ln1<S: Simd>(s: S, v: f32) -> f32 {
    lanes(s, math::ln(s, s.splat(v))).0[0]
}

/// Scales `o` in place by `r`.
#[inline(always)]
fn scale_in_place<S: Simd>(s: S, o: &mut [f32], r: f32) {
    let rv = s.splat(r);
    fold_into(
        s,
        o,
        &[],
        #[inline(always)]
        |a, _| s.mul(a, rv),
    );
}

/// `o[k] = f(x[k])` rounded once to `B`.
#[inline(always)]
fn map_store<S: Simd, A: Elem, B: Elem>(s: S, x: &[A], o: &mut [B], f: impl Fn(S::F) -> S::F) {
    let (l, n) = (S::LANES, o.len());
    let mut k = 0;
    while k + l <= n {
        B::store(s, &mut o[k..], f(A::load(s, &x[k..])));
        k += l;
    }
    if k < n {
        B::store_partial(s, &mut o[k..], f(A::load_partial(s, &x[k..n])));
    }
}

/// `x − m − ln s` of one row rounded straight into `out[at]` (no staging pass).
#[inline(always)]
fn log_softmax_store<S: Simd, A: Elem>(s: S, x: &[A], m: f32, sum: f32, out: &mut Dst<'_>, at: Range<usize>) {
    let (mv, ls) = (s.splat(m), s.splat(ln1(s, sum)));
    match out {
        Dst::F32(d) => map_store::<S, A, f32>(
            s,
            x,
            &mut d[at],
            #[inline(always)]
            |v| s.sub(s.sub(v, mv), ls),
        ),
        Dst::F16(d) => map_store::<S, A, f16>(
            s,
            x,
            &mut d[at],
            #[inline(always)]
            |v| s.sub(s.sub(v, mv), ls),
        ),
        Dst::Bf16(d) => map_store::<S, A, bf16>(
            s,
            x,
            &mut d[at],
            #[inline(always)]
            |v| s.sub(s.sub(v, mv), ls),
        ),
        Dst::F64(_) => unreachable!("f64 outputs take the scalar reference"),
    }
}

/// Log-softmax of one f16/bf16 row straight from its storage: the max in
/// 16-bit integer lanes ([`Simd::max_bits16`], exact), then the sum of
/// exponentials widening as it loads (and storing the f32 row into `buf`),
/// then the output from `buf` — the values and the order of operations of
/// the widened row's path, so the same bits. Returns false, having written nothing, where `max_bits16` has no
/// answer (a NaN in the row, or no integer lanes on this path).
#[inline(always)]
fn log_softmax_row16<S: Simd>(s: S, x: Src<'_>, at: Range<usize>, out: &mut Dst<'_>, buf: &mut [f32]) -> bool {
    match x {
        Src::F16(x) => match s.max_bits16(x[at.clone()].reinterpret_cast(), 0x7C00) {
            Some(m) => log_softmax_from(s, &x[at.clone()], f16::from_bits(m).to_f32(), out, at, buf),
            None => return false,
        },
        Src::Bf16(x) => match s.max_bits16(x[at.clone()].reinterpret_cast(), 0x7F80) {
            Some(m) => log_softmax_from(s, &x[at.clone()], bf16::from_bits(m).to_f32(), out, at, buf),
            None => return false,
        },
        _ => return false,
    }
    true
}

/// Log-softmax of the row `x` whose max is `m`, into `out[at]`; the sum's
/// pass leaves the widened row in `buf` for the output's.
#[inline(always)]
fn log_softmax_from<S: Simd, A: Elem>(s: S, x: &[A], m: f32, out: &mut Dst<'_>, at: Range<usize>, buf: &mut [f32]) {
    let w = &mut buf[..x.len()];
    let sum = sum_exp_with(
        s,
        x,
        m,
        None,
        Some(&mut *w),
        #[inline(always)]
        |d| math::exp_sum_term(s, d),
    );
    log_softmax_store(s, w, m, sum, out, at);
}

/// Softmax of one f32 line into `out` (same length): max, then `Σ e^(x−m)`
/// (softmax keeps the exponentials in `out`), then one scaling pass.
#[inline(always)]
fn softmax_line<S: Simd>(s: S, op: SoftmaxOp, x: &[f32], out: &mut [f32]) {
    let m = row_max(s, x);
    match op {
        SoftmaxOp::Softmax => {
            let sum = sum_exp(s, x, m, Some(out));
            scale_in_place(s, out, 1.0 / sum);
        }
        SoftmaxOp::LogSoftmax => {
            let sum = sum_exp(s, x, m, None);
            let (mv, ls) = (s.splat(m), s.splat(ln1(s, sum)));
            super::ew::map1(
                s,
                x,
                out,
                #[inline(always)]
                |v| s.sub(s.sub(v, mv), ls),
            );
        }
    }
}

/// SIMD body of [`crate::reduce::softmax_rows`].
#[inline(always)]
pub(crate) fn softmax_rows<S: Simd>(s: S, op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    if is_f64(&x) || out.elem() == DType::F64 {
        return crate::scalar::reduce::softmax_rows_scalar(op, x, rows, n, out);
    }
    if n <= ROW {
        let (mut xb, mut ob) = ([0.0f32; ROW], [0.0f32; ROW]);
        for i in 0..rows {
            if op == SoftmaxOp::LogSoftmax && log_softmax_row16(s, x, i * n..(i + 1) * n, &mut out, &mut xb) {
                continue;
            }
            let xr = widen(s, x, i * n, n, &mut xb);
            if op == SoftmaxOp::LogSoftmax {
                let m = row_max(s, xr);
                log_softmax_store(s, xr, m, sum_exp(s, xr, m, None), &mut out, i * n..(i + 1) * n);
                continue;
            }
            super::ew::with_out(
                s,
                &mut out,
                i * n,
                n,
                &mut ob,
                #[inline(always)]
                |o| softmax_line(s, op, xr, o),
            );
        }
        return;
    }
    // Long rows: three passes over f32 blocks, recomputing the exponentials.
    for i in 0..rows {
        let mut m = f32::NEG_INFINITY;
        for_each_block(
            s,
            x,
            i * n,
            n,
            #[inline(always)]
            |_, b| m = fold_extreme(&[m, row_max(s, b)], true),
        );
        let mut sum = 0.0f32;
        for_each_block(
            s,
            x,
            i * n,
            n,
            #[inline(always)]
            |_, b| sum += sum_exp(s, b, m, None),
        );
        let (mv, ls, r) = (s.splat(m), s.splat(ln1(s, sum)), s.splat(1.0 / sum));
        let mut ob = [0.0f32; BLOCK];
        for_each_block(
            s,
            x,
            i * n,
            n,
            #[inline(always)]
            |j, b| {
                super::ew::with_out(
                    s,
                    &mut out,
                    i * n + j,
                    b.len(),
                    &mut ob,
                    #[inline(always)]
                    |o| match op {
                        SoftmaxOp::Softmax => super::ew::map1(
                            s,
                            b,
                            o,
                            #[inline(always)]
                            |v| s.mul(math::exp(s, s.sub(v, mv)), r),
                        ),
                        SoftmaxOp::LogSoftmax => super::ew::map1(
                            s,
                            b,
                            o,
                            #[inline(always)]
                            |v| s.sub(s.sub(v, mv), ls),
                        ),
                    },
                )
            },
        );
    }
}

/// SIMD body of [`crate::reduce::softmax_cols`]: vectorised across a block
/// of columns, three passes down the rows.
#[inline(always)]
pub(crate) fn softmax_cols<S: Simd>(s: S, op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    if is_f64(&x) || out.elem() == DType::F64 {
        return crate::scalar::reduce::softmax_cols_scalar(op, x, rows, n, out);
    }
    let (mut mx, mut sm, mut buf, mut ob) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut j = 0;
    while j < n {
        let c = BLOCK.min(n - j);
        let (mx, sm) = (&mut mx[..c], &mut sm[..c]);
        mx.fill(f32::NEG_INFINITY);
        sm.fill(0.0);
        for i in 0..rows {
            fold_into(
                s,
                mx,
                widen(s, x, i * n + j, c, &mut buf),
                #[inline(always)]
                |a, v| extreme(s, a, v, true),
            );
        }
        for i in 0..rows {
            let v = widen(s, x, i * n + j, c, &mut buf);
            let mut k = 0;
            while k < c {
                let l = (c - k).min(S::LANES);
                let e = if l == S::LANES {
                    math::exp(s, s.sub(s.load_f32(&v[k..]), s.load_f32(&mx[k..])))
                } else {
                    math::exp(s, s.sub(s.load_f32_partial(&v[k..]), s.load_f32_partial(&mx[k..c])))
                };
                let acc = if l == S::LANES { s.load_f32(&sm[k..]) } else { s.load_f32_partial(&sm[k..c]) };
                if l == S::LANES {
                    s.store_f32(&mut sm[k..], s.add(acc, e));
                } else {
                    s.store_f32_partial(&mut sm[k..c], s.add(acc, e));
                }
                k += l;
            }
        }
        // Softmax multiplies by 1/Σ; log-softmax subtracts m + ln Σ.
        match op {
            SoftmaxOp::Softmax => fold_into(
                s,
                sm,
                &[],
                #[inline(always)]
                |a, _| s.div(s.splat(1.0), a),
            ),
            SoftmaxOp::LogSoftmax => fold_into(
                s,
                sm,
                &[],
                #[inline(always)]
                |a, _| math::ln(s, a),
            ),
        }
        for i in 0..rows {
            let v = widen(s, x, i * n + j, c, &mut buf);
            let (mxr, smr): (&[f32], &[f32]) = (mx, sm);
            super::ew::with_out(
                s,
                &mut out,
                i * n + j,
                c,
                &mut ob,
                #[inline(always)]
                |o| {
                    let (mv, sv) = (super::ew::View::Slice(mxr), super::ew::View::Slice(smr));
                    let mut t = [0.0f32; BLOCK];
                    super::ew::map2(
                        s,
                        super::ew::View::Slice(v),
                        mv,
                        &mut t[..c],
                        #[inline(always)]
                        |a, b| s.sub(a, b),
                    );
                    match op {
                        SoftmaxOp::Softmax => super::ew::map2(
                            s,
                            super::ew::View::Slice(&t[..c]),
                            sv,
                            o,
                            #[inline(always)]
                            |d, r| s.mul(math::exp(s, d), r),
                        ),
                        SoftmaxOp::LogSoftmax => super::ew::map2(
                            s,
                            super::ew::View::Slice(&t[..c]),
                            sv,
                            o,
                            #[inline(always)]
                            |d, l| s.sub(d, l),
                        ),
                    }
                },
            );
        }
        j += c;
    }
}

/// SIMD body of [`crate::reduce::softmax_grad_rows`]: `y·(g − Σ g·y)` or
/// `g − e^y·Σ g`, the row sum in four FP32 accumulators.
#[inline(always)]
pub(crate) fn softmax_grad_rows<S: Simd>(
    s: S,
    op: SoftmaxOp,
    g: Src<'_>,
    y: Src<'_>,
    rows: usize,
    n: usize,
    mut out: Dst<'_>,
) {
    if is_f64(&g) || is_f64(&y) || out.elem() == DType::F64 {
        return crate::scalar::reduce::softmax_grad_rows_scalar(op, g, y, rows, n, out);
    }
    let (mut gb, mut yb, mut ob) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    for i in 0..rows {
        let mut acc = Acc::new(s, 0.0);
        let mut j = 0;
        while j < n {
            let c = BLOCK.min(n - j);
            let gv = widen(s, g, i * n + j, c, &mut gb);
            match op {
                SoftmaxOp::Softmax => {
                    let yv = widen(s, y, i * n + j, c, &mut yb);
                    let mut p = [0.0f32; BLOCK];
                    super::ew::map2(
                        s,
                        super::ew::View::Slice(gv),
                        super::ew::View::Slice(yv),
                        &mut p[..c],
                        #[inline(always)]
                        |a, b| s.mul(a, b),
                    );
                    acc.fold(
                        s,
                        &p[..c],
                        0.0,
                        #[inline(always)]
                        |a, v| s.add(a, v),
                    );
                }
                SoftmaxOp::LogSoftmax => acc.fold(
                    s,
                    gv,
                    0.0,
                    #[inline(always)]
                    |a, v| s.add(a, v),
                ),
            }
            j += c;
        }
        let sum = s.splat(s.reduce_add(acc.combine(
            #[inline(always)]
            |a, b| s.add(a, b),
        )));
        let mut j = 0;
        while j < n {
            let c = BLOCK.min(n - j);
            let gv = super::ew::View::Slice(widen(s, g, i * n + j, c, &mut gb));
            let yv = super::ew::View::Slice(widen(s, y, i * n + j, c, &mut yb));
            super::ew::with_out(
                s,
                &mut out,
                i * n + j,
                c,
                &mut ob,
                #[inline(always)]
                |o| match op {
                    SoftmaxOp::Softmax => super::ew::map2(
                        s,
                        gv,
                        yv,
                        o,
                        #[inline(always)]
                        |a, b| s.mul(b, s.sub(a, sum)),
                    ),
                    SoftmaxOp::LogSoftmax => super::ew::map2(
                        s,
                        gv,
                        yv,
                        o,
                        #[inline(always)]
                        |a, b| s.neg_mul_add(math::exp(s, b), sum, a),
                    ),
                },
            );
            j += c;
        }
    }
}

/// SIMD body of [`crate::reduce::dot`]: `Σ a·b` in four FP32 accumulators (FMA).
#[inline(always)]
pub(crate) fn dot<S: Simd>(s: S, a: Src<'_>, b: Src<'_>) -> f64 {
    if is_f64(&a) || is_f64(&b) {
        return crate::scalar::reduce::dot_scalar(a, b);
    }
    let (mut ab, mut bb) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut acc = [s.splat(0.0); 4];
    let l = S::LANES;
    let n = a.len();
    let mut j = 0;
    while j < n {
        let c = BLOCK.min(n - j);
        let (av, bv) = (widen(s, a, j, c, &mut ab), widen(s, b, j, c, &mut bb));
        let mut k = 0;
        while k + 4 * l <= c {
            for (q, acc) in acc.iter_mut().enumerate() {
                *acc = s.mul_add(s.load_f32(&av[k + q * l..]), s.load_f32(&bv[k + q * l..]), *acc);
            }
            k += 4 * l;
        }
        while k < c {
            let m = c - k;
            let (x, y) = if m >= l {
                (s.load_f32(&av[k..]), s.load_f32(&bv[k..]))
            } else {
                (s.load_f32_partial(&av[k..]), s.load_f32_partial(&bv[k..]))
            };
            acc[0] = s.mul_add(x, y, acc[0]);
            k += l;
        }
        j += c;
    }
    s.reduce_add(s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3]))) as f64
}

/// Mean and biased variance of one row, two passes (`Σ(x − mean)²/n`).
#[inline(always)]
fn row_moments<S: Simd>(s: S, x: Src<'_>, start: usize, n: usize) -> (f32, f32) {
    let mean = reduce_row(s, ReduceOp::Sum, x, start, n) / n as f32;
    let mv = s.splat(mean);
    let mut acc = Acc::new(s, 0.0);
    for_each_block(
        s,
        x,
        start,
        n,
        #[inline(always)]
        |_, b| {
            let l = S::LANES;
            let mut k = 0;
            while k < b.len() {
                let m = b.len() - k;
                let v = if m >= l { s.load_f32(&b[k..]) } else { s.load_f32_partial(&b[k..]) };
                let d = s.select(s.first_lanes(m), s.sub(v, mv), s.splat(0.0));
                acc.v[(k / l) % 4] = s.mul_add(d, d, acc.v[(k / l) % 4]);
                k += l;
            }
        },
    );
    (
        mean,
        s.reduce_add(acc.combine(
            #[inline(always)]
            |a, b| s.add(a, b),
        )) / n as f32,
    )
}

/// SIMD body of [`crate::reduce::moments_rows`].
#[inline(always)]
pub(crate) fn moments_rows<S: Simd>(s: S, x: Src<'_>, rows: usize, n: usize, mut mean: Dst<'_>, mut var: Dst<'_>) {
    if is_f64(&x) || mean.elem() == DType::F64 || var.elem() == DType::F64 {
        return crate::scalar::reduce::moments_rows_scalar(x, rows, n, mean, var);
    }
    let (mut mb, mut vb) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut i = 0;
    while i < rows {
        let c = BLOCK.min(rows - i);
        for k in 0..c {
            (mb[k], vb[k]) = row_moments(s, x, (i + k) * n, n);
        }
        narrow(s, &mb[..c], &mut mean, i);
        narrow(s, &vb[..c], &mut var, i);
        i += c;
    }
}

/// SIMD body of [`crate::reduce::moments_cols`]: per column block, one pass
/// for the sums and one for the squared deviations.
#[inline(always)]
pub(crate) fn moments_cols<S: Simd>(s: S, x: Src<'_>, rows: usize, n: usize, mut mean: Dst<'_>, mut var: Dst<'_>) {
    if is_f64(&x) || mean.elem() == DType::F64 || var.elem() == DType::F64 {
        return crate::scalar::reduce::moments_cols_scalar(x, rows, n, mean, var);
    }
    let (mut mb, mut vb, mut buf) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut j = 0;
    while j < n {
        let c = BLOCK.min(n - j);
        let (m, v) = (&mut mb[..c], &mut vb[..c]);
        m.fill(0.0);
        v.fill(0.0);
        for i in 0..rows {
            fold_into(
                s,
                m,
                widen(s, x, i * n + j, c, &mut buf),
                #[inline(always)]
                |a, b| s.add(a, b),
            );
        }
        let k = s.splat(rows as f32);
        fold_into(
            s,
            m,
            &[],
            #[inline(always)]
            |a, _| s.div(a, k),
        );
        for i in 0..rows {
            let xv = widen(s, x, i * n + j, c, &mut buf);
            let mut d = [0.0f32; BLOCK];
            super::ew::map2(
                s,
                super::ew::View::Slice(xv),
                super::ew::View::Slice(m),
                &mut d[..c],
                #[inline(always)]
                |a, b| s.sub(a, b),
            );
            fold_into(
                s,
                v,
                &d[..c],
                #[inline(always)]
                |a, b| s.mul_add(b, b, a),
            );
        }
        fold_into(
            s,
            v,
            &[],
            #[inline(always)]
            |a, _| s.div(a, k),
        );
        narrow(s, m, &mut mean, j);
        narrow(s, v, &mut var, j);
        j += c;
    }
}
