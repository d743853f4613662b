//! FP32 master weights (the paper's steps 1, 8 and 10): the model computes
//! with f16/bf16 working copies; an FP32 master of each sits beside it and is
//! what the optimizer updates, so updates smaller than half an f16 ulp of
//! the weight accumulate instead of rounding away.
//!
//! [`MasterWeights`] wraps any optimizer built over the masters. Unscaling
//! moves each working copy's f16 gradient into its master's FP32 gradient
//! in one pass (`unscale_and_check_f16`); the step updates the masters and
//! writes the new working copies. Parameters chosen to stay FP32 (norm
//! layers by default) are their own masters.

use half::{bf16, f16};
use mixprec_autograd::Var;
use mixprec_autograd::tensor::kernels::amp::{master_to_bf16, master_to_f16, unscale_and_check, unscale_and_check_f16};
use mixprec_autograd::tensor::{DType, Tensor};

use crate::error::{AmpError, Result};
use crate::grad_scaler::{AmpOptimizer, NonFinite, classify, unscale_params};

/// Whether a parameter path names a normalisation layer's parameter (a
/// dotted segment starting with `bn`, `ln` or containing `norm`): these
/// stay FP32 under master weights, as in Apex's O2.
pub fn is_norm_param(path: &str) -> bool {
    path.split('.').any(|seg| {
        let seg = seg.to_ascii_lowercase();
        seg.starts_with("bn") || seg.starts_with("ln") || seg.contains("norm")
    })
}

/// Converts every parameter in `params` to `dtype` in place (the pure-f16
/// baseline's `model.half()`), except those `keep_fp32` selects by path.
pub fn convert_params(params: &[(String, Var)], dtype: DType, keep_fp32: impl Fn(&str) -> bool) -> Result<()> {
    for (name, v) in params {
        if keep_fp32(name) {
            continue;
        }
        let p = v.param().ok_or_else(|| AmpError::NotAParameter { name: name.clone() })?;
        p.convert_dtype(dtype)?;
    }
    Ok(())
}

#[derive(Debug)]
struct Pair {
    working: Var,
    master: Var,
}

impl Pair {
    fn low(&self) -> bool {
        self.working.dtype() != DType::F32
    }
}

/// Low-precision working copies with FP32 masters, updated by `O` (an
/// optimizer over [`MasterWeights::masters`]).
#[derive(Debug)]
pub struct MasterWeights<O> {
    pairs: Vec<Pair>,
    masters: Vec<Var>,
    working: Vec<Var>,
    inner: O,
    /// Whether the working gradients were moved into the masters since the
    /// last step (by the scaler's unscale); if not, the step moves them.
    moved: bool,
}

impl<O: AmpOptimizer> MasterWeights<O> {
    /// Takes the model's FP32 parameters (`module.named_parameters()`),
    /// keeps an FP32 master of each, converts the model's own parameters
    /// to `dtype` (f16 or bf16) — norm parameters ([`is_norm_param`]) stay
    /// FP32 — and builds the optimizer over the masters with `build`.
    pub fn new(params: Vec<(String, Var)>, dtype: DType, build: impl FnOnce(Vec<Var>) -> Result<O>) -> Result<Self> {
        Self::with_fp32_params(params, dtype, is_norm_param, build)
    }

    /// As [`MasterWeights::new`], with `keep_fp32` choosing by path which
    /// parameters stay FP32.
    pub fn with_fp32_params(
        params: Vec<(String, Var)>,
        dtype: DType,
        keep_fp32: impl Fn(&str) -> bool,
        build: impl FnOnce(Vec<Var>) -> Result<O>,
    ) -> Result<Self> {
        if !matches!(dtype, DType::F16 | DType::BF16) {
            return Err(AmpError::BadWorkingDType { dtype });
        }
        let mut pairs = Vec::with_capacity(params.len());
        for (name, working) in params {
            let p = working.param().ok_or_else(|| AmpError::NotAParameter { name: name.clone() })?;
            if p.dtype() != DType::F32 {
                return Err(AmpError::NotFp32 { name, dtype: p.dtype() });
            }
            let master = if keep_fp32(&name) {
                working.clone()
            } else {
                let master = Var::parameter(p.value());
                p.convert_dtype(dtype)?;
                master
            };
            pairs.push(Pair { working, master });
        }
        let masters: Vec<Var> = pairs.iter().map(|p| p.master.clone()).collect();
        let working = pairs.iter().map(|p| p.working.clone()).collect();
        let inner = build(masters.clone())?;
        Ok(MasterWeights { pairs, masters, working, inner, moved: false })
    }

    /// The FP32 masters, in the order of the parameters given.
    pub fn masters(&self) -> &[Var] {
        &self.masters
    }

    /// The model's parameters (the working copies, and the FP32 ones kept).
    pub fn working(&self) -> &[Var] {
        &self.working
    }

    /// The optimizer over the masters.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The optimizer over the masters, mutably (learning-rate schedules).
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// Clears the gradients of the working copies and the masters.
    pub fn zero_grad(&self) {
        for p in &self.pairs {
            p.working.zero_grad();
            p.master.zero_grad();
        }
    }

    /// Without a loss scaler (bf16): moves the gradients into the masters,
    /// steps and refreshes the working copies. Returns the first non-finite
    /// gradient, if any (the step is applied regardless, as an unscaled
    /// optimizer would).
    pub fn step(&mut self) -> Result<Option<NonFinite>> {
        let found = if self.moved { None } else { self.unscale_grads(1.0)? };
        self.amp_step()?;
        Ok(found)
    }

    /// Writes `working = round(master)` for every low-precision pair, one
    /// fused pass each (`master_to_f16`/`master_to_bf16`, in place). Returns
    /// whether a working copy overflowed to ±Inf (a master beyond 65504).
    fn refresh_working(&self) -> Result<bool> {
        let mut overflow = false;
        for p in self.pairs.iter().filter(|p| p.low()) {
            let wp = p.working.param().ok_or_else(|| AmpError::NotAParameter { name: String::new() })?;
            let master = p.master.value().contiguous();
            let m = master.as_slice::<f32>().unwrap_or(&[]);
            overflow |= wp.update(|w, _| -> Result<bool> {
                Ok(match w.dtype() {
                    DType::F16 => master_to_f16(m, w.data_mut::<f16>()?),
                    _ => master_to_bf16(m, w.data_mut::<bf16>()?),
                })
            })?;
        }
        Ok(overflow)
    }
}

impl<O: AmpOptimizer> AmpOptimizer for MasterWeights<O> {
    fn amp_params(&self) -> &[Var] {
        &self.working
    }

    /// Each working copy's gradient, times `inv_scale`, becomes its
    /// master's FP32 gradient (one pass: widen, multiply, check); FP32
    /// parameters are unscaled in place.
    fn unscale_grads(&mut self, inv_scale: f32) -> Result<Option<NonFinite>> {
        let mut first = None;
        for (i, pair) in self.pairs.iter().enumerate() {
            if !pair.low() {
                if let Some(found) = unscale_params(std::slice::from_ref(&pair.master), inv_scale)? {
                    first = first.or(Some(NonFinite { param: i, ..found }));
                }
                continue;
            }
            let mp = pair.master.param().ok_or_else(|| AmpError::NotAParameter { name: String::new() })?;
            let Some(g) = pair.working.grad() else {
                mp.zero_grad();
                continue;
            };
            let g = g.contiguous();
            let mut out = vec![0.0f32; g.numel()];
            let bad = match g.dtype() {
                DType::F16 => unscale_and_check_f16(g.as_slice::<f16>().unwrap_or(&[]), inv_scale, &mut out),
                _ => {
                    out = g.to_vec_f32()?;
                    unscale_and_check(&mut out, inv_scale)
                }
            };
            let t = Tensor::from_vec(out, g.shape())?;
            if bad && first.is_none() {
                first = Some(NonFinite { param: i, kind: classify(&t) });
            }
            mp.set_grad(Some(t))?;
        }
        self.moved = true;
        Ok(first)
    }

    /// Steps the masters (moving the gradients first if no unscale did),
    /// then writes the new working copies.
    fn amp_step(&mut self) -> Result<()> {
        if !self.moved {
            self.unscale_grads(1.0)?;
        }
        self.moved = false;
        self.inner.amp_step()?;
        self.refresh_working()?;
        Ok(())
    }
}
