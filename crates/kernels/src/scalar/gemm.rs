//! Reference GEMM: `C = alpha·op(A)·op(B) + beta·C` with FP32 accumulation,
//! one dot product per element in increasing `p`. Arguments were checked by
//! `gemm::check_args`.
//!
//! NaN and ±Inf propagate as IEEE arithmetic says, except where BLAS says an
//! operand is not read: with `beta == 0` C is overwritten (a NaN there does
//! not survive), with `alpha == 0` or `k == 0` A and B are not read.

use half::{bf16, f16};

use crate::gemm::Transpose;

/// An element type GEMM can read: widened exactly to f32.
pub trait GemmInput: Copy + Send + Sync + 'static {
    /// The exact f32 value.
    fn to_f32(self) -> f32;
}

impl GemmInput for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
}

impl GemmInput for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        super::convert::f16_bits_to_f32(self.to_bits())
    }
}

impl GemmInput for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        super::convert::bf16_bits_to_f32(self.to_bits())
    }
}

/// The reference for every GEMM element type.
#[allow(clippy::too_many_arguments)]
pub fn gemm_ref<T: GemmInput>(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    crate::gemm::check_args(ta, tb, m, n, k, a.len(), lda, b.len(), ldb, c.len(), ldc);
    if m == 0 || n == 0 {
        return;
    }
    let at = |i: usize, p: usize| match ta {
        Transpose::No => a[i * lda + p],
        Transpose::Yes => a[p * lda + i],
    };
    let bt = |p: usize, j: usize| match tb {
        Transpose::No => b[p * ldb + j],
        Transpose::Yes => b[j * ldb + p],
    };
    let skip_product = alpha == 0.0 || k == 0;
    for i in 0..m {
        for j in 0..n {
            let ab = if skip_product {
                0.0
            } else {
                let mut acc = 0.0f32;
                for p in 0..k {
                    acc += at(i, p).to_f32() * bt(p, j).to_f32();
                }
                alpha * acc
            };
            let cij = &mut c[i * ldc + j];
            *cij = match (beta == 0.0, skip_product) {
                (true, _) => ab,
                (false, true) => beta * *cij,
                (false, false) => ab + beta * *cij,
            };
        }
    }
}

/// Reference sgemm (see [`crate::gemm::sgemm`]).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_scalar(
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
    gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// Reference hgemm (see [`crate::gemm::hgemm`]).
#[allow(clippy::too_many_arguments)]
pub fn hgemm_scalar(
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
    gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// Reference bgemm (see [`crate::gemm::bgemm`]).
#[allow(clippy::too_many_arguments)]
pub fn bgemm_scalar(
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
    gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
