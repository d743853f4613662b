//! The elementwise update rules on one parameter's slices, in FP32: the
//! value and gradient are widened from their dtype, the state is f32, the
//! new value is rounded once to the parameter's dtype.

use half::{bf16, f16};
use mixprec_tensor::{DType, Element, Tensor};

use crate::error::{AutogradError, Result};

/// A parameter's values as mutable f32 (in place) or as a widened copy to
/// be written back.
enum Values<'a> {
    F32(&'a mut [f32]),
    Widened(Vec<f32>),
}

fn widen<T: Element>(t: &Tensor) -> Vec<f32> {
    t.as_slice::<T>().map(|s| s.iter().map(|&x| x.to_f64() as f32).collect()).unwrap_or_default()
}

/// The gradient widened to f32 (borrowed when it already is f32).
pub(crate) fn grad_f32(g: &Tensor) -> Result<std::borrow::Cow<'_, [f32]>> {
    let g_ok = g.is_contiguous();
    Ok(match g.dtype() {
        DType::F32 if g_ok => std::borrow::Cow::Borrowed(g.as_slice::<f32>().unwrap_or(&[])),
        DType::F16 if g_ok => std::borrow::Cow::Owned(widen::<f16>(g)),
        DType::BF16 if g_ok => std::borrow::Cow::Owned(widen::<bf16>(g)),
        DType::F64 => {
            return Err(AutogradError::UnsupportedDType {
                op: "optimizer",
                dtype: DType::F64,
                reason: "parameters are f32, f16 or bf16",
            });
        }
        _ => std::borrow::Cow::Owned(g.contiguous().to_vec_f32()?),
    })
}

/// Runs `f` on the parameter's values as f32, writing them back rounded
/// once when the parameter is f16/bf16.
pub(crate) fn with_values_f32<R>(value: &mut Tensor, f: impl FnOnce(&mut [f32]) -> R) -> Result<R> {
    let vals = match value.dtype() {
        DType::F32 => Values::F32(value.data_mut::<f32>()?),
        DType::F16 => Values::Widened(widen::<f16>(&value.contiguous())),
        DType::BF16 => Values::Widened(widen::<bf16>(&value.contiguous())),
        DType::F64 => {
            return Err(AutogradError::UnsupportedDType {
                op: "optimizer",
                dtype: DType::F64,
                reason: "parameters are f32, f16 or bf16",
            });
        }
    };
    match vals {
        Values::F32(v) => Ok(f(v)),
        Values::Widened(mut v) => {
            let r = f(&mut v);
            let dtype = value.dtype();
            let t = Tensor::from_vec(v, value.shape())?.to_dtype(dtype)?;
            value.copy_(&t)?;
            Ok(r)
        }
    }
}

/// SGD with momentum, dampening, Nesterov and L2 weight decay (PyTorch's
/// `sgd`), one element at a time, with `keep = 1 − τ` computed by the caller
/// in f64 and rounded once (as PyTorch passes it):
/// `g ← g + wd·w`; `b ← first ? g : μ·b + keep·g`;
/// `g ← nesterov ? g + μ·b : b`; `w ← w − lr·g`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd(
    w: &mut [f32],
    g: &[f32],
    buf: Option<&mut [f32]>,
    first: bool,
    lr: f32,
    momentum: f32,
    keep: f32,
    wd: f32,
    nesterov: bool,
) {
    match buf {
        None => {
            for (w, &g) in w.iter_mut().zip(g) {
                let g = if wd != 0.0 { g + wd * *w } else { g };
                *w -= lr * g;
            }
        }
        Some(buf) if !first && !nesterov && wd == 0.0 => {
            // The common case, kept branch-free so it vectorises.
            for ((w, &g), b) in w.iter_mut().zip(g).zip(buf.iter_mut()) {
                *b = momentum * *b + keep * g;
                *w -= lr * *b;
            }
        }
        Some(buf) => {
            for ((w, &g), b) in w.iter_mut().zip(g).zip(buf.iter_mut()) {
                let g = if wd != 0.0 { g + wd * *w } else { g };
                *b = if first { g } else { momentum * *b + keep * g };
                let d = if nesterov { g + momentum * *b } else { *b };
                *w -= lr * d;
            }
        }
    }
}

/// Adam's moment and parameter update (PyTorch's single-tensor `adam`, in
/// its operation order; `c1 = 1 − β₁` and `c2 = 1 − β₂` computed in f64 and
/// rounded once, as PyTorch passes them):
/// `g ← g + wd·w` (Adam's L2; AdamW decays `w` before, with `wd = 0` here);
/// `m ← m + c1·(g − m)`; `v ← β₂·v + c2·g·g`;
/// `w ← w + (−step_size·m) / (√v / bc2_sqrt + ε)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    beta2: f32,
    c1: f32,
    c2: f32,
    eps: f32,
    wd: f32,
    step_size: f32,
    bc2_sqrt: f32,
) {
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if wd != 0.0 { g + wd * *w } else { g };
        *m += c1 * (g - *m);
        *v = beta2 * *v + c2 * g * g;
        let denom = v.sqrt() / bc2_sqrt + eps;
        *w += (-step_size * *m) / denom;
    }
}
