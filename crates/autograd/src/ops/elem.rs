//! Element-generic helpers for the layer ops (conv, pooling, norms,
//! embedding, dropout): a storage type `T` (f64, f32, f16, bf16) paired
//! with its accumulation type (f64 for f64, f32 otherwise), GEMM on slices
//! with FP32 accumulation for the 16-bit types, and the dtype dispatch that
//! turns a [`Tensor`] into a typed slice.

use std::ops::{Add, AddAssign, Div, Mul, Sub};

use half::{bf16, f16};
use mixprec_tensor::kernels::gemm::{self, Transpose};
use mixprec_tensor::{Element, Tensor};

/// An accumulation type: f32 (for f32/f16/bf16 storage) or f64.
pub(crate) trait Real:
    Element
    + Default
    + PartialOrd
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    fn of(x: f64) -> Self;
    fn is_nan(self) -> bool;
}

impl Real for f32 {
    #[inline]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline]
    fn of(x: f64) -> f32 {
        x as f32
    }
}

impl Real for f64 {
    #[inline]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline]
    fn of(x: f64) -> f64 {
        x
    }
}

/// A storage type with its accumulation type and GEMM.
pub(crate) trait Elem: Element {
    type Acc: Real;
    /// Widens to the accumulation type (exact).
    fn acc(self) -> Self::Acc;
    /// Rounds from the accumulation type once (nearest, ties to even).
    fn from_acc(x: Self::Acc) -> Self;
    /// `C = op(A)·op(B) + beta·C`, row-major, `ldc = n`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        beta: Self::Acc,
        c: &mut [Self::Acc],
    );
}

impl Elem for f32 {
    type Acc = f32;
    #[inline]
    fn acc(self) -> f32 {
        self
    }
    #[inline]
    fn from_acc(x: f32) -> f32 {
        x
    }
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
    ) {
        gemm::sgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, n.max(1));
    }
}

impl Elem for f16 {
    type Acc = f32;
    #[inline]
    fn acc(self) -> f32 {
        self.to_f32()
    }
    #[inline]
    fn from_acc(x: f32) -> f16 {
        f16::from_f32(x)
    }
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[f16],
        lda: usize,
        b: &[f16],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
    ) {
        gemm::hgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, n.max(1));
    }
}

impl Elem for bf16 {
    type Acc = f32;
    #[inline]
    fn acc(self) -> f32 {
        self.to_f32()
    }
    #[inline]
    fn from_acc(x: f32) -> bf16 {
        bf16::from_f32(x)
    }
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[bf16],
        lda: usize,
        b: &[bf16],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
    ) {
        gemm::bgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, n.max(1));
    }
}

impl Elem for f64 {
    type Acc = f64;
    #[inline]
    fn acc(self) -> f64 {
        self
    }
    #[inline]
    fn from_acc(x: f64) -> f64 {
        x
    }
    /// The f64 reference (gradient checks): plain loops.
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[f64],
        lda: usize,
        b: &[f64],
        ldb: usize,
        beta: f64,
        c: &mut [f64],
    ) {
        for i in 0..m {
            let row = &mut c[i * n..(i + 1) * n];
            if beta == 0.0 {
                row.fill(0.0);
            } else if beta != 1.0 {
                row.iter_mut().for_each(|v| *v *= beta);
            }
            for p in 0..k {
                let x = if ta == Transpose::No { a[i * lda + p] } else { a[p * lda + i] };
                for (j, v) in row.iter_mut().enumerate() {
                    let y = if tb == Transpose::No { b[p * ldb + j] } else { b[j * ldb + p] };
                    *v += x * y;
                }
            }
        }
    }
}

/// The elements of a contiguous tensor of dtype `T` (callers make it
/// contiguous and dispatch on its dtype first).
pub(crate) fn elems<T: Element>(t: &Tensor) -> &[T] {
    t.as_slice::<T>().expect("a contiguous tensor of the dispatched dtype")
}

/// A tensor of `shape` holding `v`.
pub(crate) fn tensor<T: Element>(v: Vec<T>, shape: &[usize]) -> crate::Result<Tensor> {
    Ok(Tensor::from_vec(v, shape)?)
}

/// Runs `$body` with `$T` bound to the element type of `$dtype`.
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            mixprec_tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            mixprec_tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            mixprec_tensor::DType::F16 => {
                type $T = half::f16;
                $body
            }
            mixprec_tensor::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
        }
    };
}
pub(crate) use dispatch;
