//! [`Adam`] and [`AdamW`] (decoupled weight decay), as PyTorch's
//! `torch.optim.Adam`/`AdamW` (non-fused path, no AMSGrad). Moments are f32
//! whatever the parameter dtype.

use mixprec_tensor::kernels::optim as kernel;
use mixprec_tensor::kernels::slice::{Dst, Src};
use rayon::prelude::*;

use crate::error::{AutogradError, Result};
use crate::optim::{Optimizer, update};
use crate::var::Var;

/// Hyper-parameters of [`Adam`] and [`AdamW`] (PyTorch's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// β₁, β₂: decay of the first and second moments.
    pub betas: (f64, f64),
    /// ε added to the denominator.
    pub eps: f64,
    /// Adam: L2 penalty added to the gradient; AdamW: decoupled decay
    /// `w ← w·(1 − lr·wd)` before the update.
    pub weight_decay: f64,
}

impl AdamConfig {
    /// PyTorch's `Adam` defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no decay.
    pub fn adam() -> AdamConfig {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0 }
    }

    /// PyTorch's `AdamW` defaults: as Adam with weight decay 0.01.
    pub fn adamw() -> AdamConfig {
        AdamConfig { weight_decay: 0.01, ..AdamConfig::adam() }
    }
}

/// The state of [`Adam`]/[`AdamW`]: the step count and f32 moments per
/// parameter (`None` before its first update).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdamState {
    /// Steps taken, per parameter.
    pub steps: Vec<u64>,
    /// First moments.
    pub exp_avg: Vec<Option<Vec<f32>>>,
    /// Second moments.
    pub exp_avg_sq: Vec<Option<Vec<f32>>>,
}

/// Adam (`weight_decay` is an L2 penalty on the gradient).
#[derive(Debug)]
pub struct Adam {
    inner: AdamCore,
}

/// AdamW (`weight_decay` decays the weights directly).
#[derive(Debug)]
pub struct AdamW {
    inner: AdamCore,
}

#[derive(Debug)]
struct AdamCore {
    params: Vec<Var>,
    config: AdamConfig,
    state: AdamState,
    decoupled: bool,
    scratch: update::Scratch,
}

impl AdamCore {
    fn new(op: &'static str, params: Vec<Var>, config: AdamConfig, decoupled: bool) -> Result<AdamCore> {
        let (b1, b2) = config.betas;
        let ok = config.lr >= 0.0
            && config.eps >= 0.0
            && config.weight_decay >= 0.0
            && (0.0..1.0).contains(&b1)
            && (0.0..1.0).contains(&b2);
        if !ok {
            return Err(AutogradError::bad(op, format!("invalid hyper-parameters {config:?}")));
        }
        if let Some(p) = params.iter().find(|p| !p.is_param()) {
            return Err(AutogradError::bad(op, format!("a value of shape {:?} that is not a parameter", p.shape())));
        }
        let n = params.len();
        let state = AdamState { steps: vec![0; n], exp_avg: vec![None; n], exp_avg_sq: vec![None; n] };
        Ok(AdamCore { params, config, state, decoupled, scratch: update::Scratch::default() })
    }

    fn step(&mut self) -> Result<()> {
        let c = self.config;
        let decoupled = self.decoupled;
        let scratch = &mut self.scratch;
        for (i, p) in self.params.iter().enumerate() {
            let Some(param) = p.param().filter(|p| p.has_grad()) else { continue };
            let st = &mut self.state;
            param.update(|value, grad| -> Result<()> {
                let Some(grad) = grad else { return Ok(()) };
                let (st, m, v) = next_step(st, &c, decoupled, i, grad.numel())?;
                update::apply(value, grad, scratch, |w, g, copy| {
                    let n = w.len();
                    w.par_chunks_mut(update::CHUNK)
                        .zip(g.par_chunks(update::CHUNK))
                        .zip(m.par_chunks_mut(update::CHUNK).zip(v.par_chunks_mut(update::CHUNK)))
                        .zip(update::chunks_dst(copy, n))
                        .for_each(|(((w, g), (m, v)), c)| kernel::adam(&st, w, g, m, v, c));
                })
            })?;
        }
        Ok(())
    }

    fn step_param_scaled(&mut self, i: usize, grad: Src<'_>, inv_scale: f32, copy: Option<Dst<'_>>) -> Result<()> {
        let (c, decoupled) = (self.config, self.decoupled);
        let Some(p) = self.params.get(i) else {
            return Err(AutogradError::bad("Adam::step_param_scaled", format!("no parameter {i}")));
        };
        let param = p.param().ok_or_else(|| AutogradError::bad("Adam::step_param_scaled", "not a parameter"))?;
        let state = &mut self.state;
        param.update(|value, _| {
            // Checked before the state moves: a refused call changes nothing.
            update::check_scaled("Adam::step_param_scaled", value, grad, &copy)?;
            let (st, m, v) = next_step(state, &c, decoupled, i, value.numel())?;
            let w = value.data_mut::<f32>()?;
            let n = w.len();
            w.par_chunks_mut(update::CHUNK)
                .zip(update::chunks_src(grad))
                .zip(m.par_chunks_mut(update::CHUNK).zip(v.par_chunks_mut(update::CHUNK)))
                .zip(update::chunks_dst(copy, n))
                .for_each(|(((w, g), (m, v)), c)| kernel::adam_scaled(&st, w, g, inv_scale, m, v, c));
            Ok(())
        })
    }

    fn load_state(&mut self, state: AdamState) -> Result<()> {
        let n = self.params.len();
        let fits = |b: &Vec<Option<Vec<f32>>>| {
            b.len() == n && b.iter().zip(&self.params).all(|(b, p)| b.as_ref().is_none_or(|b| b.len() == p.numel()))
        };
        if state.steps.len() != n || !fits(&state.exp_avg) || !fits(&state.exp_avg_sq) {
            return Err(AutogradError::bad("Adam::load_state", "the state does not match the parameters"));
        }
        self.state = state;
        Ok(())
    }
}

/// Advances parameter `i`'s step count (`steps`, `exp_avg` and
/// `exp_avg_sq` have one slot per parameter: `new` and `load_state` check
/// it) and returns the step's scalars and its moments (created on the first
/// step). A loaded count may be anything: stop at the end of u64 instead of
/// wrapping to a first step.
fn next_step<'s>(
    st: &'s mut AdamState,
    c: &AdamConfig,
    decoupled: bool,
    i: usize,
    n: usize,
) -> Result<(kernel::AdamStep, &'s mut Vec<f32>, &'s mut Vec<f32>)> {
    let t = st.steps[i]
        .checked_add(1)
        .ok_or_else(|| AutogradError::bad("Adam::step", format!("the step count of parameter {i} is at u64::MAX")))?;
    st.steps[i] = t;
    let m = st.exp_avg[i].get_or_insert_with(|| vec![0.0; n]);
    let v = st.exp_avg_sq[i].get_or_insert_with(|| vec![0.0; n]);
    let (b1, b2) = c.betas;
    Ok((kernel::AdamStep::new(c.lr, b1, b2, c.eps, c.weight_decay, decoupled, t), m, v))
}

macro_rules! adam_api {
    ($t:ident, $name:literal, $decoupled:expr) => {
        impl $t {
            /// An optimizer over `params` (parameter handles: `module.parameters()`).
            pub fn new(params: Vec<Var>, config: AdamConfig) -> Result<$t> {
                Ok($t { inner: AdamCore::new($name, params, config, $decoupled)? })
            }

            /// The hyper-parameters.
            pub fn config(&self) -> &AdamConfig {
                &self.inner.config
            }

            /// The step counts and moments (for checkpoints).
            pub fn state(&self) -> &AdamState {
                &self.inner.state
            }

            /// Restores a state saved by `state()`.
            pub fn load_state(&mut self, state: AdamState) -> Result<()> {
                self.inner.load_state(state)
            }
        }

        impl Optimizer for $t {
            fn step(&mut self) -> Result<()> {
                self.inner.step()
            }

            fn params(&self) -> &[Var] {
                &self.inner.params
            }

            fn steps_scaled(&self) -> bool {
                true
            }

            fn step_param_scaled(
                &mut self,
                i: usize,
                grad: Src<'_>,
                inv_scale: f32,
                copy: Option<Dst<'_>>,
            ) -> Result<()> {
                self.inner.step_param_scaled(i, grad, inv_scale, copy)
            }

            fn lr(&self) -> f64 {
                self.inner.config.lr
            }

            fn set_lr(&mut self, lr: f64) -> Result<()> {
                self.inner.config.lr = super::checked_lr($name, lr)?;
                Ok(())
            }
        }
    };
}

adam_api!(Adam, "Adam", false);
adam_api!(AdamW, "AdamW", true);
