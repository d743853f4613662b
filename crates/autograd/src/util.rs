//! Small helpers the tape and the ops share: kernel views of tensors,
//! in-place gradient accumulation, the finiteness check.

use half::{bf16, f16};
use mixprec_tensor::kernels::ew::{self, BinaryOp, Operand};
use mixprec_tensor::kernels::slice::{Dst, Src};
use mixprec_tensor::{DType, Element, Tensor, TensorError};

use crate::error::{AutogradError, Result};

/// The kernel view of a contiguous tensor's elements (`None` if strided).
pub(crate) fn src(t: &Tensor) -> Option<Src<'_>> {
    fn s<T: Element>(t: &Tensor) -> Option<Src<'_>> {
        t.as_slice::<T>().map(T::src)
    }
    match t.dtype() {
        DType::F64 => s::<f64>(t),
        DType::F32 => s::<f32>(t),
        DType::F16 => s::<f16>(t),
        DType::BF16 => s::<bf16>(t),
    }
}

/// The writable kernel view of a tensor (made the sole owner of a
/// contiguous buffer first: copy-on-write).
pub(crate) fn dst(t: &mut Tensor) -> Result<Dst<'_>> {
    Ok(match t.dtype() {
        DType::F64 => Dst::F64(t.data_mut::<f64>()?),
        DType::F32 => Dst::F32(t.data_mut::<f32>()?),
        DType::F16 => Dst::F16(t.data_mut::<f16>()?),
        DType::BF16 => Dst::Bf16(t.data_mut::<bf16>()?),
    })
}

/// `acc += g` in place (same shape; `g` converted once to `acc`'s dtype,
/// FP32 arithmetic for f16/bf16). Copies `acc` first only if it is shared
/// or strided.
pub(crate) fn add_assign(acc: &mut Tensor, g: &Tensor) -> Result<()> {
    if acc.shape() != g.shape() {
        return Err(AutogradError::bad(
            "accumulate",
            format!("gradient of shape {:?} added to one of shape {:?}", g.shape(), acc.shape()),
        ));
    }
    let g = g.contiguous();
    let n = acc.numel();
    let Some(gs) = src(&g) else { unreachable!("contiguous() gives a contiguous tensor") };
    ew::binary_assign(BinaryOp::Add, 1, n, dst(acc)?, Operand::Full(gs));
    Ok(())
}

/// Whether every element is finite (no Inf, no NaN).
pub(crate) fn all_finite(t: &Tensor) -> bool {
    let t = t.contiguous();
    match t.dtype() {
        DType::F64 => t.as_slice::<f64>().is_none_or(|s| s.iter().all(|x| x.is_finite())),
        DType::F32 => t.as_slice::<f32>().is_none_or(|s| s.iter().all(|x| x.is_finite())),
        DType::F16 => t.as_slice::<f16>().is_none_or(|s| s.iter().all(|x| x.is_finite())),
        DType::BF16 => t.as_slice::<bf16>().is_none_or(|s| s.iter().all(|x| x.is_finite())),
    }
}

/// `t` with another shape: a view when the strides allow, else a copy (as
/// PyTorch's `reshape`).
pub(crate) fn reshaped(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    match t.reshape(shape) {
        Ok(v) => Ok(v),
        Err(TensorError::NotContiguous { .. }) => Ok(t.contiguous().reshape(shape)?),
        Err(e) => Err(e.into()),
    }
}
