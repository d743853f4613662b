//! One parameter's update through the optimizer kernels
//! (`kernels::optim`): the gradient widened to f32 by the conversion
//! kernels (borrowed when it already is f32), an f32 value updated in
//! place, an f16/bf16 value widened into f32 scratch and rounded once by
//! the kernel straight back into its storage (the kernel's copy-out).
//! Large parameters are updated in chunks in parallel on the current rayon
//! pool; the update is elementwise, so the result does not depend on the
//! chunking or the thread count.

use std::borrow::Cow;

use half::{bf16, f16};
use mixprec_tensor::kernels::{convert, slice::Dst};
use mixprec_tensor::{DType, Tensor};

use crate::error::{AutogradError, Result};

/// Elements per parallel task of an update.
pub(crate) const CHUNK: usize = 1 << 15;

/// The chunks of a slice, or as many `None`s.
pub(crate) fn chunks_opt<T>(s: Option<&mut [T]>, n: usize) -> Vec<Option<&mut [T]>> {
    match s {
        Some(s) => s.chunks_mut(CHUNK).map(Some).collect(),
        None => (0..n.div_ceil(CHUNK)).map(|_| None).collect(),
    }
}

/// The chunks of a working copy, or as many `None`s.
pub(crate) fn chunks_dst(d: Option<Dst<'_>>, n: usize) -> Vec<Option<Dst<'_>>> {
    match d {
        None => (0..n.div_ceil(CHUNK)).map(|_| None).collect(),
        Some(Dst::F64(s)) => s.chunks_mut(CHUNK).map(|c| Some(Dst::F64(c))).collect(),
        Some(Dst::F32(s)) => s.chunks_mut(CHUNK).map(|c| Some(Dst::F32(c))).collect(),
        Some(Dst::F16(s)) => s.chunks_mut(CHUNK).map(|c| Some(Dst::F16(c))).collect(),
        Some(Dst::Bf16(s)) => s.chunks_mut(CHUNK).map(|c| Some(Dst::Bf16(c))).collect(),
    }
}

fn no_f64() -> AutogradError {
    AutogradError::UnsupportedDType { op: "optimizer", dtype: DType::F64, reason: "parameters are f32, f16 or bf16" }
}

/// The gradient as f32 (borrowed when it already is contiguous f32).
pub(crate) fn grad_f32(g: &Tensor) -> Result<Cow<'_, [f32]>> {
    let widen = |n: usize, f: &dyn Fn(&mut [f32])| {
        let mut out = vec![0.0f32; n];
        f(&mut out);
        Cow::Owned(out)
    };
    Ok(match (g.dtype(), g.as_slice::<f32>(), g.as_slice::<f16>(), g.as_slice::<bf16>()) {
        (DType::F64, ..) => return Err(no_f64()),
        (_, Some(s), ..) => Cow::Borrowed(s),
        (_, _, Some(s), _) => widen(s.len(), &|d| convert::f16_to_f32(s, d)),
        (_, _, _, Some(s)) => widen(s.len(), &|d| convert::bf16_to_f32(s, d)),
        _ => Cow::Owned(g.contiguous().to_vec_f32()?),
    })
}

/// Runs the kernel call `f` on the parameter's values as f32 and the
/// working copy it must also write (`None` for an f32 parameter, updated in
/// place; the parameter's own f16/bf16 storage otherwise).
pub(crate) fn apply(value: &mut Tensor, f: impl FnOnce(&mut [f32], Option<Dst<'_>>)) -> Result<()> {
    match value.dtype() {
        DType::F32 => f(value.data_mut::<f32>()?, None),
        DType::F16 => {
            let h = value.data_mut::<f16>()?;
            let mut w = vec![0.0f32; h.len()];
            convert::f16_to_f32(h, &mut w);
            f(&mut w, Some(Dst::F16(h)));
        }
        DType::BF16 => {
            let h = value.data_mut::<bf16>()?;
            let mut w = vec![0.0f32; h.len()];
            convert::bf16_to_f32(h, &mut w);
            f(&mut w, Some(Dst::Bf16(h)));
        }
        DType::F64 => return Err(no_f64()),
    }
    Ok(())
}
