//! GEMM on 2-D tensors for `matmul` and `linear`, forward and backward:
//! transposes are flags (a transposed view is read as stored, never
//! copied), gradients accumulate through `beta = 1`, and a linear layer's
//! bias and ReLU are applied to the product before it is stored.
//!
//! f32/f16/bf16 inputs run on `kernels::gemm::gemm_ex` (FP32 accumulation;
//! an f16 or bf16 destination gets the FP32 result rounded once, in the
//! micro-kernel's store). f64 inputs (the gradient checks) run a plain f64
//! loop.

use half::{bf16, f16};
use mixprec_tensor::kernels::gemm::{self, Transpose};
use mixprec_tensor::{DType, Tensor};

use crate::error::{AutogradError, Result};
use crate::graph::Grads;
use crate::param::GradBuffer;
use crate::pool;
use crate::util;

/// A 2-D operand as GEMM reads it: a row-major matrix and whether to use
/// it transposed.
#[derive(Clone, Debug)]
pub(crate) struct Mat {
    t: Tensor,
    trans: Transpose,
}

fn flip(t: Transpose) -> Transpose {
    match t {
        Transpose::No => Transpose::Yes,
        Transpose::Yes => Transpose::No,
    }
}

impl Mat {
    /// `op(t)` for a 2-D tensor: read in place when it is row-major or the
    /// transpose of a row-major matrix, else copied once.
    pub(crate) fn new(t: &Tensor, trans: Transpose) -> Result<Mat> {
        if t.is_contiguous() {
            return Ok(Mat { t: t.clone(), trans });
        }
        let tt = t.t()?;
        if tt.is_contiguous() {
            return Ok(Mat { t: tt, trans: flip(trans) });
        }
        Ok(Mat { t: t.contiguous(), trans })
    }

    /// Rows and columns of `op(t)` (callers build a `Mat` from 2-D tensors only).
    pub(crate) fn dims(&self) -> (usize, usize) {
        let s = self.t.shape();
        match self.trans {
            Transpose::No => (s[0], s[1]),
            Transpose::Yes => (s[1], s[0]),
        }
    }

    fn ld(&self) -> usize {
        self.t.shape()[1].max(1)
    }
}

/// What is applied to `op(A)·op(B) + beta·C` before it is stored.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Epilogue<'a> {
    /// Added to every row (one value per column).
    pub(crate) bias: Option<&'a Tensor>,
    /// ReLU after the bias (`x ≤ 0` → +0, NaN kept).
    pub(crate) relu: bool,
}

/// `C = epilogue(op(A)·op(B) + beta·C)`. A and B share a dtype; C is a
/// contiguous `m × n` tensor of f32 (any input), f64 (f64 input), or the
/// inputs' f16/bf16 dtype (then `beta` must be 0). C is written in place;
/// the bias and ReLU run in the GEMM's store (`kernels::gemm::gemm_ex`).
pub(crate) fn gemm_into(a: &Mat, b: &Mat, beta: f32, c: &mut Tensor, epi: Epilogue<'_>) -> Result<()> {
    let (m, k) = a.dims();
    let (k2, n) = b.dims();
    let dt = a.t.dtype();
    let out_ok = c.dtype() == dt || (c.dtype() == DType::F32 && dt != DType::F64);
    if k != k2 || c.shape() != [m, n] || b.t.dtype() != dt || !out_ok {
        return Err(AutogradError::bad(
            "gemm",
            format!("op(A) {m}×{k} ({dt}), op(B) {k2}×{n} ({}), C {:?} ({})", b.t.dtype(), c.shape(), c.dtype()),
        ));
    }
    if beta != 0.0 && c.dtype().is_half() {
        return Err(AutogradError::bad("gemm", "an f16/bf16 destination is written, not accumulated"));
    }
    if let Some(bias) = epi.bias
        && bias.shape() != [n]
    {
        return Err(AutogradError::bad("gemm", format!("a bias of shape {:?} for {n} columns", bias.shape())));
    }
    if dt == DType::F64 {
        let bias64 = match epi.bias {
            Some(bt) => Some(bt.to_vec_f64()?),
            None => None,
        };
        let (Some(av), Some(bv)) = (a.t.as_slice::<f64>(), b.t.as_slice::<f64>()) else {
            unreachable!("f64 operands are contiguous f64")
        };
        let cv = c.data_mut::<f64>()?;
        f64_gemm(a.trans, b.trans, m, n, k, av, a.ld(), bv, b.ld(), beta as f64, cv, bias64.as_deref(), epi.relu);
        return Ok(());
    }
    let bias32: Option<std::borrow::Cow<'_, [f32]>> = match epi.bias {
        Some(bt) => Some(match bt.as_slice::<f32>() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(bt.to_vec_f32()?),
        }),
        None => None,
    };
    let epilogue = gemm::Epilogue { bias: bias32.as_deref(), relu: epi.relu };
    let out = match c.dtype() {
        DType::F32 => gemm::Output::F32(c.data_mut::<f32>()?),
        DType::F16 => gemm::Output::F16(c.data_mut::<f16>()?),
        _ => gemm::Output::Bf16(c.data_mut::<bf16>()?),
    };
    match dt {
        DType::F32 => run::<f32>(a, b, m, n, k, beta, out, epilogue),
        DType::F16 => run::<f16>(a, b, m, n, k, beta, out, epilogue),
        _ => run::<bf16>(a, b, m, n, k, beta, out, epilogue),
    }
    Ok(())
}

/// One `gemm_ex` call on operands of element type `T` (checked by the caller).
#[allow(clippy::too_many_arguments)]
fn run<T: gemm::Element + mixprec_tensor::Element>(
    a: &Mat,
    b: &Mat,
    m: usize,
    n: usize,
    k: usize,
    beta: f32,
    out: gemm::Output<'_>,
    epilogue: gemm::Epilogue<'_>,
) {
    let (Some(av), Some(bv)) = (a.t.as_slice::<T>(), b.t.as_slice::<T>()) else {
        unreachable!("operands are contiguous and of the checked dtype")
    };
    gemm::gemm_ex(a.trans, b.trans, m, n, k, 1.0, av, a.ld(), bv, b.ld(), beta, out, n, epilogue);
}

/// The f64 reference (gradient checks): one dot product per element.
#[allow(clippy::too_many_arguments)]
fn f64_gemm(
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
    bias: Option<&[f64]>,
    relu_on: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                let x = if ta == Transpose::No { a[i * lda + p] } else { a[p * lda + i] };
                let y = if tb == Transpose::No { b[p * ldb + j] } else { b[j * ldb + p] };
                acc += x * y;
            }
            let prev = if beta == 0.0 { 0.0 } else { beta * c[i * n + j] };
            let mut v = prev + acc + bias.map_or(0.0, |b| b[j]);
            if relu_on && !(v > 0.0 || v.is_nan()) {
                v = 0.0;
            }
            c[i * n + j] = v;
        }
    }
}

/// A new `m × n` tensor `epilogue(op(A)·op(B))` in `dtype` (the inputs'
/// dtype: f16/bf16 rounded once from FP32).
pub(crate) fn gemm_new(a: &Mat, b: &Mat, dtype: DType, epi: Epilogue<'_>) -> Result<Tensor> {
    let (m, _) = a.dims();
    let (_, n) = b.dims();
    let mut c = pool::take(&[m, n], dtype)?;
    gemm_into(a, b, 0.0, &mut c, epi)?;
    Ok(c)
}

/// Accumulates `op(A)·op(B)` into input `i`'s gradient: straight into the
/// gradient buffer with `beta = 0` (fresh) or `1` (existing) when it is
/// f32/f64. An f16/bf16 gradient is written in place when fresh (the FP32
/// product rounded once in the GEMM's store, into the parameter's kept
/// buffer: no allocation once warm) and added through a rounded temporary
/// when one exists.
pub(crate) fn accumulate_product(grads: &mut Grads<'_>, i: usize, a: &Mat, b: &Mat) -> Result<()> {
    let dtype = grads.dtype(i);
    if dtype == a.t.dtype() {
        return grads.accumulate_with(i, |mut buf: GradBuffer<'_>| {
            let beta = buf.beta();
            let t = buf.tensor();
            if beta != 0.0 && dtype.is_half() {
                let shape = t.shape().to_vec();
                let d = gemm_new(a, b, dtype, Epilogue::default())?;
                let d = d.reshape(&shape)?;
                util::add_assign(t, &d)?;
                pool::give(d);
                return Ok(());
            }
            if t.rank() != 2 {
                // A gradient of shape [.., n] written as one [rows, n] matrix.
                let shape = t.shape().to_vec();
                let cols = *shape.last().unwrap_or(&1);
                let rows = t.numel() / cols.max(1);
                if (a.dims().0, b.dims().1) != (rows, cols) {
                    return Err(AutogradError::bad("gemm", format!("a product for a gradient of shape {shape:?}")));
                }
                let whole = std::mem::replace(t, Tensor::scalar(0.0, dtype));
                let mut flat = whole.reshape(&[rows, cols])?;
                drop(whole);
                gemm_into(a, b, beta, &mut flat, Epilogue::default())?;
                *t = flat.reshape(&shape)?;
                return Ok(());
            }
            gemm_into(a, b, beta, t, Epilogue::default())
        });
    }
    let shape = grads.shape(i).to_vec();
    let d = gemm_new(a, b, a.t.dtype(), Epilogue::default())?;
    grads.accumulate(i, d.reshape(&shape)?)
}
