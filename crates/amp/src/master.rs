//! FP32 master weights (the paper's steps 1, 8 and 10): the model computes
//! with f16/bf16 working copies; an FP32 master of each sits beside it and is
//! what the optimizer updates, so updates smaller than half an f16 ulp of
//! the weight accumulate instead of rounding away.
//!
//! [`MasterWeights`] wraps any optimizer built over the masters. Unscaling
//! moves each working copy's f16 gradient into its master's FP32 gradient
//! in one pass (`unscale_and_check_f16`); the step updates the masters and
//! writes the new working copies. Parameters chosen to stay FP32 (norm
//! layers' by default: those their layer declared with `Param::set_norm`)
//! are their own masters. Once every buffer exists (after the first step),
//! unscaling, stepping the masters and the copy-out allocate nothing.

use half::{bf16, f16};
use mixprec_autograd::tensor::DType;
use mixprec_autograd::tensor::kernels::amp::{master_to_bf16, master_to_f16, unscale_and_check, unscale_and_check_f16};
use mixprec_autograd::tensor::kernels::convert::bf16_to_f32;
use mixprec_autograd::{AutogradError, Param, Var};

use crate::error::{AmpError, Result};
use crate::grad_scaler::{AmpOptimizer, NonFinite, NonFiniteKind, classify, unscale_params};

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
    /// to `dtype` (f16 or bf16) and builds the optimizer over the masters
    /// with `build`. Norm layers' parameters stay FP32 (Apex's
    /// `keep_batchnorm_fp32`): those whose layer declared them so
    /// ([`Param::is_norm`]; `BatchNorm2d` and `LayerNorm` do), whatever
    /// their names.
    pub fn new(params: Vec<(String, Var)>, dtype: DType, build: impl FnOnce(Vec<Var>) -> Result<O>) -> Result<Self> {
        Self::with_fp32_params(params, dtype, |_, p| p.is_norm(), build)
    }

    /// As [`MasterWeights::new`], with `keep_fp32` choosing (from the path
    /// and the parameter) which parameters stay FP32.
    pub fn with_fp32_params(
        params: Vec<(String, Var)>,
        dtype: DType,
        keep_fp32: impl Fn(&str, &Param) -> bool,
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
            let master = if keep_fp32(&name, p) {
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
            let (wp, mp) = (param_of(&p.working)?, param_of(&p.master)?);
            // Borrow the master's storage: no handle copy, no allocation.
            overflow |= mp.with_value(|master| -> Result<bool> {
                let m = master.as_slice::<f32>().unwrap_or(&[]);
                wp.update(|w, _| -> Result<bool> {
                    Ok(match w.dtype() {
                        DType::F16 => master_to_f16(m, w.data_mut::<f16>()?),
                        _ => master_to_bf16(m, w.data_mut::<bf16>()?),
                    })
                })
            })?;
        }
        Ok(overflow)
    }
}

fn param_of(v: &Var) -> Result<&std::sync::Arc<Param>> {
    v.param().ok_or_else(|| AmpError::NotAParameter { name: String::new() })
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
            let (wp, mp) = (param_of(&pair.working)?, param_of(&pair.master)?);
            // The master's gradient is overwritten in its own buffer (kept
            // across `zero_grad`), read from the working gradient in place.
            let bad = wp.with_grad(|g| -> Result<Option<bool>> {
                let Some(g) = g else { return Ok(None) };
                mp.with_grad_buffer(|mut buf| {
                    let out = buf.tensor().data_mut::<f32>()?;
                    let bad = match (g.as_slice::<f16>(), g.as_slice::<bf16>()) {
                        (Some(h), _) => unscale_and_check_f16(h, inv_scale, out),
                        (None, Some(b)) => {
                            bf16_to_f32(b, out);
                            unscale_and_check(out, inv_scale)
                        }
                        (None, None) => {
                            out.copy_from_slice(&g.contiguous().to_vec_f32()?);
                            unscale_and_check(out, inv_scale)
                        }
                    };
                    Ok::<_, AutogradError>(bad)
                })
                .map(Some)
                .map_err(AmpError::from)
            })?;
            match bad {
                None => mp.zero_grad(),
                Some(true) if first.is_none() => {
                    let kind = mp.grad().map_or(NonFiniteKind::Inf, |t| classify(&t));
                    first = Some(NonFinite { param: i, kind });
                }
                Some(_) => {}
            }
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

    fn amp_set_lr(&mut self, lr: f64) -> Result<()> {
        self.inner.amp_set_lr(lr)
    }
}
