//! Reductions and softmax over a `rows × n` row-major block: along each row
//! (`*_rows`: one result per row) or down each column (`*_cols`: one result
//! per column). A tensor reduces any axis by viewing itself as
//! `(outer, axis, inner)`: `inner == 1` is the row form, otherwise each of
//! the `outer` blocks is an `axis × inner` column reduction.
//!
//! Accumulation is FP32 for f32/f16/bf16 inputs and f64 for f64 inputs (or
//! f64 output), rounded once to the output type. Error bounds are in
//! `docs/numerics.md`.

use crate::dispatch::{active, kernel_table};
use crate::slice::{Dst, Src};

/// A reduction to one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// `Σ x` (0 for an empty reduction).
    Sum,
    /// `Σ x / count` (NaN for an empty reduction).
    Mean,
    /// The largest element, NaN if any is NaN (−Inf for an empty reduction).
    Max,
    /// The smallest element, NaN if any is NaN (+Inf for an empty reduction).
    Min,
    /// `Σ x²` (0 for an empty reduction).
    SumSq,
}

impl ReduceOp {
    /// Every op.
    pub const ALL: [ReduceOp; 5] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::SumSq];
}

/// Which extreme an arg-reduction looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgOp {
    /// Index of the largest element; the first NaN counts as the largest,
    /// ties give the first index.
    Max,
    /// Index of the smallest element; the first NaN counts as the smallest,
    /// ties give the first index.
    Min,
}

/// Softmax or its logarithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SoftmaxOp {
    /// `y = e^(x − m) / Σ e^(x − m)` with `m = max x`.
    Softmax,
    /// `y = (x − m) − ln Σ e^(x − m)`.
    LogSoftmax,
}

kernel_table! {
    /// The reduction kernels of one ISA path.
    pub struct Table {
        /// `out[i] = reduce(x[i, ·])`.
        rows: fn(ReduceOp, Src<'_>, usize, usize, Dst<'_>),
        /// `out[j] = reduce(x[·, j])`.
        cols: fn(ReduceOp, Src<'_>, usize, usize, Dst<'_>),
        /// `out[i] = argmax/argmin(x[i, ·])`.
        arg_rows: fn(ArgOp, Src<'_>, usize, usize, &mut [usize]),
        /// `out[j] = argmax/argmin(x[·, j])`.
        arg_cols: fn(ArgOp, Src<'_>, usize, usize, &mut [usize]),
        /// 2×2 stride-2 max pooling of planes, with the arg-max offsets.
        max_pool2x2: fn(usize, usize, usize, Src<'_>, Dst<'_>, &mut [u8]),
        /// Softmax along each row.
        softmax_rows: fn(SoftmaxOp, Src<'_>, usize, usize, Dst<'_>),
        /// Softmax down each column.
        softmax_cols: fn(SoftmaxOp, Src<'_>, usize, usize, Dst<'_>),
        /// Softmax backward along each row, from the gradient and the forward output.
        softmax_grad_rows: fn(SoftmaxOp, Src<'_>, Src<'_>, usize, usize, Dst<'_>),
        /// `Σ a·b`.
        dot: fn(Src<'_>, Src<'_>) -> f64,
        /// Mean and biased variance of each row.
        moments_rows: fn(Src<'_>, usize, usize, Dst<'_>, Dst<'_>),
        /// Mean and biased variance of each column.
        moments_cols: fn(Src<'_>, usize, usize, Dst<'_>, Dst<'_>),
    }
}

fn check(what: &str, x: &Src<'_>, rows: usize, n: usize, out_len: usize, want_out: usize) {
    assert_eq!(
        x.len(),
        rows * n,
        "reduce::{what}: x holds {} elements, a {rows}×{n} block needs {}",
        x.len(),
        rows * n
    );
    assert_eq!(out_len, want_out, "reduce::{what}: out holds {out_len} elements, needs {want_out}");
}

/// `out[i] = op(x[i, 0..n])` for each of `rows` rows.
///
/// # Panics
/// If `x` does not hold `rows × n` elements or `out` does not hold `rows`.
pub fn reduce_rows(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) {
    check("reduce_rows", &x, rows, n, out.len(), rows);
    (active().reduce.rows.f)(op, x, rows, n, out)
}

/// `out[j] = op(x[0..rows, j])` for each of `n` columns.
///
/// # Panics
/// If `x` does not hold `rows × n` elements or `out` does not hold `n`.
pub fn reduce_cols(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) {
    check("reduce_cols", &x, rows, n, out.len(), n);
    (active().reduce.cols.f)(op, x, rows, n, out)
}

/// `out[i]` = the column index of the max (min) of row `i` (0 for `n == 0`).
///
/// # Panics
/// If `x` does not hold `rows × n` elements or `out` does not hold `rows`.
pub fn arg_rows(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) {
    check("arg_rows", &x, rows, n, out.len(), rows);
    (active().reduce.arg_rows.f)(op, x, rows, n, out)
}

/// 2×2 max pooling of stride 2 (PyTorch's `F.max_pool2d(x, 2)`, floor
/// mode) of `planes` row-major `h × w` planes of `x` into `planes` planes of
/// `⌊h/2⌋ × ⌊w/2⌋` of `y`, with `idx` the offset `2·i + j` of each output's
/// element inside its window `[x00 x01; x10 x11]`.
///
/// The chosen element is the first NaN of the window in row-major order,
/// else the first maximum; `−0` and `+0` tie (the first wins); ±Inf and
/// subnormals order as their values. `y` gets the element's stored bits:
/// no widening, no rounding, a NaN keeps its payload and sign. Every path
/// is bit-identical to the reference (compares of order-preserving integer
/// keys of the bits, not float compares).
///
/// # Panics
/// If `x` and `y` differ in element type, `x` does not hold `planes·h·w`
/// elements, or `y` and `idx` do not hold `planes·⌊h/2⌋·⌊w/2⌋`.
pub fn max_pool2x2(planes: usize, h: usize, w: usize, x: Src<'_>, y: Dst<'_>, idx: &mut [u8]) {
    assert_eq!(x.elem(), y.elem(), "reduce::max_pool2x2: x is {:?}, y is {:?}", x.elem(), y.elem());
    check("max_pool2x2", &x, planes, h * w, y.len(), planes * (h / 2) * (w / 2));
    assert_eq!(idx.len(), y.len(), "reduce::max_pool2x2: idx holds {} offsets, y {} outputs", idx.len(), y.len());
    (active().reduce.max_pool2x2.f)(planes, h, w, x, y, idx)
}

/// `out[j]` = the row index of the max (min) of column `j` (0 for `rows == 0`).
///
/// # Panics
/// If `x` does not hold `rows × n` elements or `out` does not hold `n`.
pub fn arg_cols(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) {
    check("arg_cols", &x, rows, n, out.len(), n);
    (active().reduce.arg_cols.f)(op, x, rows, n, out)
}

/// Softmax (or log-softmax) of every row, max-subtracted.
///
/// # Panics
/// If `x` or `out` does not hold `rows × n` elements.
pub fn softmax_rows(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) {
    check("softmax_rows", &x, rows, n, out.len(), rows * n);
    (active().reduce.softmax_rows.f)(op, x, rows, n, out)
}

/// Softmax (or log-softmax) of every column, max-subtracted.
///
/// # Panics
/// If `x` or `out` does not hold `rows × n` elements.
pub fn softmax_cols(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) {
    check("softmax_cols", &x, rows, n, out.len(), rows * n);
    (active().reduce.softmax_cols.f)(op, x, rows, n, out)
}

/// The input gradient of a row softmax from the output gradient `g` and the
/// forward output `y`: `y·(g − Σ g·y)` for softmax, `g − e^y·Σ g` for
/// log-softmax (FP32 accumulation, one rounding).
///
/// # Panics
/// If `g`, `y` or `out` does not hold `rows × n` elements.
pub fn softmax_grad_rows(op: SoftmaxOp, g: Src<'_>, y: Src<'_>, rows: usize, n: usize, out: Dst<'_>) {
    check("softmax_grad_rows", &g, rows, n, out.len(), rows * n);
    assert_eq!(y.len(), rows * n, "reduce::softmax_grad_rows: y holds {} elements, needs {}", y.len(), rows * n);
    (active().reduce.softmax_grad_rows.f)(op, g, y, rows, n, out)
}

/// `Σ a[i]·b[i]`, FP32 accumulation for f32/f16/bf16 inputs (f64 if either
/// is f64), returned exactly as f64. NaN propagates; `Inf·0` is NaN.
///
/// # Panics
/// If the lengths differ.
pub fn dot(a: Src<'_>, b: Src<'_>) -> f64 {
    assert_eq!(a.len(), b.len(), "reduce::dot: a holds {} elements, b {}", a.len(), b.len());
    (active().reduce.dot.f)(a, b)
}

/// Mean and biased (population) variance `Σ(x − mean)²/n` of each row, in
/// two passes (no cancellation from `E[x²] − E[x]²`); NaN for `n == 0`.
///
/// # Panics
/// If `x` does not hold `rows × n` elements or `mean`/`var` do not hold `rows`.
pub fn moments_rows(x: Src<'_>, rows: usize, n: usize, mean: Dst<'_>, var: Dst<'_>) {
    check("moments_rows", &x, rows, n, mean.len(), rows);
    assert_eq!(var.len(), rows, "reduce::moments_rows: var holds {} elements, needs {rows}", var.len());
    (active().reduce.moments_rows.f)(x, rows, n, mean, var)
}

/// Mean and biased variance of each column (as [`moments_rows`]).
///
/// # Panics
/// If `x` does not hold `rows × n` elements or `mean`/`var` do not hold `n`.
pub fn moments_cols(x: Src<'_>, rows: usize, n: usize, mean: Dst<'_>, var: Dst<'_>) {
    check("moments_cols", &x, rows, n, mean.len(), n);
    assert_eq!(var.len(), n, "reduce::moments_cols: var holds {} elements, needs {n}", var.len());
    (active().reduce.moments_cols.f)(x, rows, n, mean, var)
}
