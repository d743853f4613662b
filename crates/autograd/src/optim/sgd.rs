//! [`Sgd`]: stochastic gradient descent with momentum, dampening, Nesterov
//! momentum and L2 weight decay, as PyTorch's `torch.optim.SGD`.

use mixprec_tensor::kernels::optim as kernel;
use mixprec_tensor::kernels::slice::{Dst, Src};
use rayon::prelude::*;

use crate::error::{AutogradError, Result};
use crate::optim::{Optimizer, non_negative, update};
use crate::var::Var;

/// Hyper-parameters of [`Sgd`] (PyTorch's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor μ (0: plain SGD).
    pub momentum: f64,
    /// Dampening τ of the momentum (`b ← μ·b + (1 − τ)·g`).
    pub dampening: f64,
    /// L2 penalty added to the gradient (`g ← g + wd·w`).
    pub weight_decay: f64,
    /// Nesterov momentum (`g ← g + μ·b`); needs momentum > 0 and no dampening.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> SgdConfig {
        SgdConfig { lr: 0.01, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

/// The per-parameter state of [`Sgd`]: momentum buffers (f32), `None`
/// before a parameter's first update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SgdState {
    /// One buffer per parameter, in `params()` order.
    pub momentum: Vec<Option<Vec<f32>>>,
}

/// Stochastic gradient descent.
///
/// ```
/// use mixprec_autograd::optim::{Optimizer, Sgd, SgdConfig};
/// use mixprec_autograd::{Var, tensor::Tensor};
/// let w = Var::parameter(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?);
/// let mut opt = Sgd::new(vec![w.clone()], SgdConfig { lr: 0.5, momentum: 0.9, ..SgdConfig::default() })?;
/// w.mul(&w)?.sum_all()?.backward()?; // dL/dw = 2w
/// opt.step()?;
/// assert_eq!(w.value().to_vec_f32()?, vec![0.0, 0.0]);
/// # Ok::<(), mixprec_autograd::AutogradError>(())
/// ```
#[derive(Debug)]
pub struct Sgd {
    params: Vec<Var>,
    config: SgdConfig,
    state: SgdState,
    scratch: update::Scratch,
}

impl Sgd {
    /// An optimizer over `params` (parameter handles: `module.parameters()`).
    pub fn new(params: Vec<Var>, config: SgdConfig) -> Result<Sgd> {
        let bad = |r: &str| Err(AutogradError::bad("Sgd", r.to_string()));
        if !non_negative(config.lr) || !non_negative(config.momentum) || !non_negative(config.weight_decay) {
            return bad("lr, momentum and weight_decay must be non-negative numbers");
        }
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            return bad("Nesterov momentum needs momentum > 0 and zero dampening");
        }
        if let Some(p) = params.iter().find(|p| !p.is_param()) {
            return Err(AutogradError::bad("Sgd", format!("a value of shape {:?} that is not a parameter", p.shape())));
        }
        let n = params.len();
        Ok(Sgd { params, config, state: SgdState { momentum: vec![None; n] }, scratch: update::Scratch::default() })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// The momentum buffers (for checkpoints).
    pub fn state(&self) -> &SgdState {
        &self.state
    }

    /// Restores momentum buffers saved by [`Sgd::state`].
    pub fn load_state(&mut self, state: SgdState) -> Result<()> {
        let ok = state.momentum.len() == self.params.len()
            && state.momentum.iter().zip(&self.params).all(|(b, p)| b.as_ref().is_none_or(|b| b.len() == p.numel()));
        if !ok {
            return Err(AutogradError::bad("Sgd::load_state", "the state does not match the parameters"));
        }
        self.state = state;
        Ok(())
    }
}

impl Sgd {
    fn kernel_params(&self) -> kernel::Sgd {
        let c = self.config;
        kernel::Sgd {
            lr: c.lr as f32,
            momentum: c.momentum as f32,
            dampening: c.dampening as f32,
            weight_decay: c.weight_decay as f32,
            nesterov: c.nesterov,
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<()> {
        let k = self.kernel_params();
        let scratch = &mut self.scratch;
        for (p, buf) in self.params.iter().zip(self.state.momentum.iter_mut()) {
            let Some(param) = p.param().filter(|p| p.has_grad()) else { continue };
            param.update(|value, grad| -> Result<()> {
                let Some(grad) = grad else { return Ok(()) };
                let first = buf.is_none();
                let b = if k.momentum != 0.0 {
                    Some(buf.get_or_insert_with(|| vec![0.0; grad.numel()]).as_mut_slice())
                } else {
                    None
                };
                update::apply(value, grad, scratch, |w, g, copy| {
                    let n = w.len();
                    w.par_chunks_mut(update::CHUNK)
                        .zip(g.par_chunks(update::CHUNK))
                        .zip(update::chunks_opt(b, n).zip(update::chunks_dst(copy, n)))
                        .for_each(|((w, g), (b, c))| kernel::sgd(&k, w, g, b, first, c));
                })
            })?;
        }
        Ok(())
    }

    fn steps_scaled(&self) -> bool {
        true
    }

    fn step_param_scaled(&mut self, i: usize, grad: Src<'_>, inv_scale: f32, copy: Option<Dst<'_>>) -> Result<()> {
        let k = self.kernel_params();
        let (Some(p), Some(buf)) = (self.params.get(i), self.state.momentum.get_mut(i)) else {
            return Err(AutogradError::bad("Sgd::step_param_scaled", format!("no parameter {i}")));
        };
        let param = p.param().ok_or_else(|| AutogradError::bad("Sgd::step_param_scaled", "not a parameter"))?;
        param.update(|value, _| {
            update::check_scaled("Sgd::step_param_scaled", value, grad, &copy)?;
            let w = value.data_mut::<f32>()?;
            let n = w.len();
            let first = buf.is_none();
            let b = if k.momentum != 0.0 { Some(buf.get_or_insert_with(|| vec![0.0; n]).as_mut_slice()) } else { None };
            w.par_chunks_mut(update::CHUNK)
                .zip(update::chunks_src(grad))
                .zip(update::chunks_opt(b, n).zip(update::chunks_dst(copy, n)))
                .for_each(|((w, g), (b, c))| kernel::sgd_scaled(&k, w, g, inv_scale, b, first, c));
            Ok(())
        })
    }

    fn params(&self) -> &[Var] {
        &self.params
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.config.lr = super::checked_lr("Sgd", lr)?;
        Ok(())
    }
}
