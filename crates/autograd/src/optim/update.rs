//! One parameter's update through the optimizer kernels
//! (`kernels::optim`): the gradient widened to f32 by the conversion
//! kernels (borrowed when it already is f32), an f32 value updated in
//! place, an f16/bf16 value widened into f32 scratch and rounded once by
//! the kernel straight back into its storage (the kernel's copy-out).
//! Large parameters are updated in chunks in parallel on the current rayon
//! pool; the update is elementwise, so the result does not depend on the
//! chunking or the thread count. Once warm nothing allocates: the chunks
//! are zipped lazily and the f32 scratch lives in the optimizer ([`Scratch`]).

use half::{bf16, f16};
use mixprec_tensor::kernels::convert;
use mixprec_tensor::kernels::slice::{Dst, Src};
use mixprec_tensor::{DType, Tensor};
use rayon::iter::Either;
use rayon::prelude::*;

use crate::error::{AutogradError, Result};

/// Elements per parallel task of an update.
pub(crate) const CHUNK: usize = 1 << 15;

/// The chunks of a slice, or as many `None`s as `n` elements make chunks.
pub(crate) fn chunks_opt<T: Send>(
    s: Option<&mut [T]>,
    n: usize,
) -> impl IndexedParallelIterator<Item = Option<&mut [T]>> {
    match s {
        Some(s) => Either::Left(s.par_chunks_mut(CHUNK).map(Some)),
        None => Either::Right((0..n.div_ceil(CHUNK)).into_par_iter().map(|_| None)),
    }
}

/// The chunks of a working copy, or as many `None`s.
pub(crate) fn chunks_dst(d: Option<Dst<'_>>, n: usize) -> impl IndexedParallelIterator<Item = Option<Dst<'_>>> {
    let none = |n: usize| (0..n.div_ceil(CHUNK)).into_par_iter().map(|_| None);
    match d {
        None => Either::Left(none(n)),
        Some(Dst::F32(s)) => {
            Either::Right(Either::Left(Either::Left(s.par_chunks_mut(CHUNK).map(|c| Some(Dst::F32(c))))))
        }
        Some(Dst::F16(s)) => {
            Either::Right(Either::Left(Either::Right(s.par_chunks_mut(CHUNK).map(|c| Some(Dst::F16(c))))))
        }
        Some(Dst::Bf16(s)) => {
            Either::Right(Either::Right(Either::Left(s.par_chunks_mut(CHUNK).map(|c| Some(Dst::Bf16(c))))))
        }
        Some(Dst::F64(s)) => {
            Either::Right(Either::Right(Either::Right(s.par_chunks_mut(CHUNK).map(|c| Some(Dst::F64(c))))))
        }
    }
}

/// The chunks of a gradient of any type (`None` items never occur; f64 is
/// refused before this is called).
pub(crate) fn chunks_src(g: Src<'_>) -> impl IndexedParallelIterator<Item = Src<'_>> {
    match g {
        Src::F32(s) => Either::Left(Either::Left(s.par_chunks(CHUNK).map(Src::F32))),
        Src::F16(s) => Either::Left(Either::Right(s.par_chunks(CHUNK).map(Src::F16))),
        Src::Bf16(s) => Either::Right(Either::Left(s.par_chunks(CHUNK).map(Src::Bf16))),
        Src::F64(s) => Either::Right(Either::Right(s.par_chunks(CHUNK).map(Src::F64))),
    }
}

/// Checks a parameter that `op` updates from a gradient held elsewhere
/// (`step_param_scaled`): the value is f32, the gradient not f64, and the
/// gradient and the copy have the value's length.
pub(crate) fn check_scaled(op: &'static str, value: &Tensor, grad: Src<'_>, copy: &Option<Dst<'_>>) -> Result<()> {
    let n = value.numel();
    if value.dtype() != DType::F32 {
        return Err(AutogradError::bad(op, format!("the parameter is {}, not f32", value.dtype())));
    }
    if matches!(grad, Src::F64(_)) {
        return Err(no_f64());
    }
    if grad.len() != n || copy.as_ref().is_some_and(|c| c.len() != n) {
        let c = copy.as_ref().map_or(n, |c| c.len());
        return Err(AutogradError::bad(
            op,
            format!("a gradient of {} and a copy of {c} elements for a parameter of {n}", grad.len()),
        ));
    }
    Ok(())
}

fn no_f64() -> AutogradError {
    AutogradError::UnsupportedDType { op: "optimizer", dtype: DType::F64, reason: "parameters are f32, f16 or bf16" }
}

/// An optimizer's f32 scratch, grown to the largest parameter it has seen
/// and reused: the widened gradient and the widened value of an f16/bf16
/// parameter.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    grad: Vec<f32>,
    value: Vec<f32>,
}

fn fit(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// Runs `f` on the gradient as f32 (borrowed when it already is contiguous
/// f32, widened into `scratch` otherwise).
pub(crate) fn with_grad_f32<R>(g: &Tensor, scratch: &mut Vec<f32>, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    Ok(match (g.dtype(), g.as_slice::<f32>(), g.as_slice::<f16>(), g.as_slice::<bf16>()) {
        (DType::F64, ..) => return Err(no_f64()),
        (_, Some(s), ..) => f(s),
        (_, _, Some(s), _) => {
            let d = fit(scratch, s.len());
            convert::f16_to_f32(s, d);
            f(d)
        }
        (_, _, _, Some(s)) => {
            let d = fit(scratch, s.len());
            convert::bf16_to_f32(s, d);
            f(d)
        }
        _ => f(&g.contiguous().to_vec_f32()?),
    })
}

/// Runs the kernel call `f` on the parameter's gradient and values as f32
/// and the working copy it must also write (`None` for an f32 parameter,
/// updated in place; the parameter's own f16/bf16 storage otherwise, its
/// f32 values in `scratch`).
pub(crate) fn apply(
    value: &mut Tensor,
    grad: &Tensor,
    scratch: &mut Scratch,
    f: impl FnOnce(&mut [f32], &[f32], Option<Dst<'_>>),
) -> Result<()> {
    let Scratch { grad: gs, value: vs } = scratch;
    with_grad_f32(grad, gs, |g| -> Result<()> {
        match value.dtype() {
            DType::F32 => f(value.data_mut::<f32>()?, g, None),
            DType::F16 => {
                let h = value.data_mut::<f16>()?;
                let w = fit(vs, h.len());
                convert::f16_to_f32(h, w);
                f(w, g, Some(Dst::F16(h)));
            }
            DType::BF16 => {
                let h = value.data_mut::<bf16>()?;
                let w = fit(vs, h.len());
                convert::bf16_to_f32(h, w);
                f(w, g, Some(Dst::Bf16(h)));
            }
            DType::F64 => return Err(no_f64()),
        }
        Ok(())
    })?
}
