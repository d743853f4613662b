//! FP32 master weights (the paper's steps 1, 8 and 10): the model computes
//! with f16/bf16 working copies; an FP32 master of each sits beside it and is
//! what the optimizer updates, so updates smaller than half an f16 ulp of
//! the weight accumulate instead of rounding away.
//!
//! [`MasterWeights`] wraps any optimizer built over the masters. When the
//! unscaled gradients are read before the update (an explicit
//! `GradScaler::unscale`, for clipping), unscaling moves each working
//! copy's f16 gradient into its master's FP32 gradient in one pass
//! (`unscale_and_check_f16`), and the step updates the masters and writes
//! the new working copies. Otherwise (`GradScaler::step` alone, or no
//! scaler) the optimizer's update reads the working copy's gradient,
//! unscales it as it loads it and writes the new working copy in the same
//! pass (`Optimizer::step_param_scaled`): no FP32 gradient is written and
//! no separate copy-out runs, with bit-identical results; the check for
//! Inf/NaN reads the f16/bf16 gradients in place first, so a skipped step
//! touches neither the weights nor the optimizer's state. The masters'
//! gradients are then left empty. Parameters chosen to stay FP32 (norm
//! layers' by default: those their layer declared with `Param::set_norm`)
//! are their own masters. Once every buffer exists (after the first step),
//! unscaling, stepping the masters and the copy-out allocate nothing.

use std::cell::Cell;

use half::{bf16, f16};
use mixprec_autograd::tensor::DType;
use mixprec_autograd::tensor::Tensor;
use mixprec_autograd::tensor::kernels::amp::{
    has_non_finite_bf16, has_non_finite_f16, master_to_bf16, master_to_f16, unscale_and_check, unscale_and_check_f16,
};
use mixprec_autograd::tensor::kernels::convert::bf16_to_f32;
use mixprec_autograd::tensor::kernels::slice::{Dst, Src};
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
    /// Whether `inner` updates exactly `masters`, in order (its parameter
    /// indices are the pairs'): the fused update needs it.
    aligned: bool,
    /// Where the gradients stand since the last step (reset by `zero_grad`).
    grads: Cell<Grads>,
}

/// Where [`MasterWeights`]' gradients stand between backward and step.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Grads {
    /// In the working copies, not unscaled: the step moves them itself.
    Working,
    /// Unscaled into the masters' FP32 gradients.
    Moved,
    /// Checked in the working copies; the step unscales them by
    /// `inv_scale` inside the update.
    Deferred { inv_scale: f32 },
}

/// Whether `grad × inv_scale` is non-finite exactly where `grad` is, with
/// NaN where `grad` is NaN (so checking and classifying the working
/// gradient tells what unscaling it would find): a positive finite factor
/// that takes no finite f16 (≤ 65504 < 2^16) beyond f32's range, and takes
/// no finite bf16 beyond it either (≤ 1).
fn check_in_place_ok(dtype: DType, inv_scale: f32) -> bool {
    let ok = inv_scale.is_finite() && inv_scale > 0.0;
    match dtype {
        DType::F16 => ok && inv_scale < 2f32.powi(110),
        DType::BF16 => ok && inv_scale <= 1.0,
        _ => false,
    }
}

/// A working gradient as a kernel source, if it is contiguous f16/bf16.
fn low_src(g: &Tensor) -> Option<Src<'_>> {
    match (g.as_slice::<f16>(), g.as_slice::<bf16>()) {
        (Some(h), _) => Some(Src::F16(h)),
        (None, Some(b)) => Some(Src::Bf16(b)),
        (None, None) => None,
    }
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
        let id = |v: &Var| v.param().map(|p| p.id());
        let ps = inner.amp_params();
        let aligned = ps.len() == masters.len() && ps.iter().zip(&masters).all(|(a, b)| id(a) == id(b));
        Ok(MasterWeights { pairs, masters, working, inner, aligned, grads: Cell::new(Grads::Working) })
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
        self.grads.set(Grads::Working);
    }

    /// Without a loss scaler (bf16): steps from the gradients and refreshes
    /// the working copies. Returns the first non-finite gradient, if any
    /// (the step is applied regardless, as an unscaled optimizer would).
    pub fn step(&mut self) -> Result<Option<NonFinite>> {
        let found = if self.grads.get() == Grads::Working { self.unscale_for_step(1.0)? } else { None };
        self.amp_step()?;
        Ok(found)
    }

    /// Whether the update can read the working gradients, unscaled by
    /// `inv_scale`, in place: the optimizer updates from a source
    /// gradient, and every working gradient is a contiguous f16/bf16 one
    /// whose check in place tells what unscaling would find.
    fn can_fuse(&self, inv_scale: f32) -> bool {
        self.aligned
            && self.inner.amp_steps_scaled()
            && self.pairs.iter().filter(|p| p.low()).all(|p| {
                p.working.param().is_some_and(|wp| {
                    wp.with_grad(|g| g.is_none_or(|g| low_src(g).is_some() && check_in_place_ok(g.dtype(), inv_scale)))
                })
            })
    }

    /// Prepares the fused update: FP32 parameters unscaled in place (when
    /// `inv_scale` is not 1 or `check` asks), the masters' gradients
    /// cleared, and with `check` the working gradients checked in place.
    /// The first non-finite gradient.
    fn check_in_place(&mut self, inv_scale: f32, check: bool) -> Result<Option<NonFinite>> {
        let mut first = None;
        for (i, pair) in self.pairs.iter().enumerate() {
            if !pair.low() {
                if (check || inv_scale != 1.0)
                    && let Some(found) = unscale_params(std::slice::from_ref(&pair.master), inv_scale)?
                {
                    first = first.or(Some(NonFinite { param: i, ..found }));
                }
                continue;
            }
            pair.master.zero_grad();
            if !check || first.is_some() {
                continue;
            }
            let wp = param_of(&pair.working)?;
            first = wp.with_grad(|g| {
                let g = g?;
                let bad = match low_src(g)? {
                    Src::F16(h) => has_non_finite_f16(h),
                    Src::Bf16(b) => has_non_finite_bf16(b),
                    _ => false,
                };
                bad.then(|| NonFinite { param: i, kind: classify(g) })
            });
        }
        Ok(first)
    }

    /// The fused update: the FP32 parameters stepped by the optimizer from
    /// their own gradients, then every working copy with a gradient: its
    /// master updated from `gradient × inv_scale` and the copy rewritten in
    /// the same pass.
    fn fused_step(&mut self, inv_scale: f32) -> Result<()> {
        // The low-precision masters have no gradient: this steps the FP32 parameters only.
        self.inner.amp_step()?;
        let MasterWeights { pairs, inner, .. } = self;
        for (i, pair) in pairs.iter().enumerate().filter(|(_, p)| p.low()) {
            let wp = param_of(&pair.working)?;
            if !wp.has_grad() {
                continue;
            }
            wp.update(|value, grad| -> Result<()> {
                let Some(src) = grad.and_then(low_src) else { return Ok(()) };
                let copy = match value.dtype() {
                    DType::F16 => Dst::F16(value.data_mut::<f16>()?),
                    _ => Dst::Bf16(value.data_mut::<bf16>()?),
                };
                inner.amp_step_param_scaled(i, src, inv_scale, Some(copy))
            })?;
        }
        Ok(())
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
        self.grads.set(Grads::Moved);
        Ok(first)
    }

    /// Checks the working gradients in place (f16/bf16, one read pass) and
    /// leaves the unscaling to the update, when the optimizer can update
    /// from them ([`AmpOptimizer::amp_steps_scaled`]); otherwise unscales
    /// them into the masters as `unscale_grads`.
    fn unscale_for_step(&mut self, inv_scale: f32) -> Result<Option<NonFinite>> {
        if !self.can_fuse(inv_scale) {
            return self.unscale_grads(inv_scale);
        }
        let found = self.check_in_place(inv_scale, true)?;
        self.grads.set(Grads::Deferred { inv_scale });
        Ok(found)
    }

    /// Steps the masters and writes the new working copies: from the
    /// masters' gradients after `unscale_grads`; otherwise from the working
    /// gradients in one fused pass each where the optimizer can, else
    /// moving them into the masters first.
    fn amp_step(&mut self) -> Result<()> {
        let grads = self.grads.replace(Grads::Working);
        match grads {
            Grads::Deferred { inv_scale } => self.fused_step(inv_scale),
            Grads::Working if self.can_fuse(1.0) => {
                self.check_in_place(1.0, false)?;
                self.fused_step(1.0)
            }
            Grads::Working | Grads::Moved => {
                if grads == Grads::Working {
                    self.unscale_grads(1.0)?;
                    self.grads.set(Grads::Working);
                }
                self.inner.amp_step()?;
                self.refresh_working()?;
                Ok(())
            }
        }
    }

    fn amp_set_lr(&mut self, lr: f64) -> Result<()> {
        self.inner.amp_set_lr(lr)
    }

    fn amp_steps_scaled(&self) -> bool {
        false
    }
}
