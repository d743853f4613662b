//! General matrix products with BLAS semantics, row-major:
//! `C = alpha·op(A)·op(B) + beta·C`, FP32 accumulation for every input type.
//!
//! op(A) is m×k: with [`Transpose::No`] A is stored m×k with row stride
//! `lda ≥ k`; with [`Transpose::Yes`] it is stored k×m with `lda ≥ m`.
//! Likewise B (k×n, `ldb ≥ n`; or n×k, `ldb ≥ k`); C is m×n with `ldc ≥ n`.
//! `beta == 0`: C is never read (it may hold NaN). `alpha == 0` or `k == 0`:
//! A and B are not read and `C = beta·C`. `m == 0` or `n == 0`: no-op.

use half::{bf16, f16};

use crate::dispatch::{active, kernel_table};

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transpose {
    /// op(X) = X.
    No,
    /// op(X) = Xᵀ.
    Yes,
}

/// Signature shared by the GEMM entry points, generic in the input type.
pub type GemmFn<T> =
    fn(Transpose, Transpose, usize, usize, usize, f32, &[T], usize, &[T], usize, f32, &mut [f32], usize);

kernel_table! {
    /// The GEMM drivers of one ISA path.
    pub struct Table {
        /// f32 inputs.
        sgemm: GemmFn<f32>,
        /// f16 inputs, FP32 accumulation.
        hgemm: GemmFn<f16>,
        /// bf16 inputs, FP32 accumulation.
        bgemm: GemmFn<bf16>,
    }
}

/// Elements a slice must hold for a `rows × cols` matrix with row stride `ld`.
#[inline]
pub fn required_len(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 { 0 } else { (rows - 1) * ld + cols }
}

/// Checks the BLAS preconditions shared by every GEMM.
///
/// # Panics
/// If a leading dimension is smaller than its row or a slice is too short.
#[allow(clippy::too_many_arguments)]
pub fn check_args(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    a_len: usize,
    lda: usize,
    b_len: usize,
    ldb: usize,
    c_len: usize,
    ldc: usize,
) {
    let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
    assert!(lda >= ac, "gemm: lda = {lda} is smaller than the {ac} columns of A as stored");
    assert!(ldb >= bc, "gemm: ldb = {ldb} is smaller than the {bc} columns of B as stored");
    assert!(ldc >= n, "gemm: ldc = {ldc} is smaller than n = {n}");
    let need = required_len(ar, ac, lda);
    assert!(a_len >= need, "gemm: A holds {a_len} elements, {ar}×{ac} with lda {lda} needs {need}");
    let need = required_len(br, bc, ldb);
    assert!(b_len >= need, "gemm: B holds {b_len} elements, {br}×{bc} with ldb {ldb} needs {need}");
    let need = required_len(m, n, ldc);
    assert!(c_len >= need, "gemm: C holds {c_len} elements, {m}×{n} with ldc {ldc} needs {need}");
}

/// `C = alpha·op(A)·op(B) + beta·C` for f32 A and B (see the module docs).
///
/// Runs on the current rayon pool (call inside `pool.install` to choose the
/// threads); results are bit-identical for any thread count.
///
/// # Panics
/// If a leading dimension is smaller than its row, or a slice holds fewer
/// than `(rows−1)·ld + cols` elements.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    check_args(ta, tb, m, n, k, a.len(), lda, b.len(), ldb, c.len(), ldc);
    (active().gemm.sgemm.f)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// `C = alpha·op(A)·op(B) + beta·C` for f16 A and B, accumulated in FP32.
///
/// Runs on the current rayon pool; results are bit-identical for any thread count.
///
/// # Panics
/// As [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub fn hgemm(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f16],
    lda: usize,
    b: &[f16],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    check_args(ta, tb, m, n, k, a.len(), lda, b.len(), ldb, c.len(), ldc);
    (active().gemm.hgemm.f)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// `C = alpha·op(A)·op(B) + beta·C` for bf16 A and B, accumulated in FP32.
///
/// Runs on the current rayon pool; results are bit-identical for any thread count.
///
/// # Panics
/// As [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub fn bgemm(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[bf16],
    lda: usize,
    b: &[bf16],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    check_args(ta, tb, m, n, k, a.len(), lda, b.len(), ldb, c.len(), ldc);
    (active().gemm.bgemm.f)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
