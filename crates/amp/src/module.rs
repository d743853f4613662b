//! Integration with `autograd`'s layers and optimizers: every optimizer is
//! an [`AmpOptimizer`], and [`WithPrecision`] runs one module (and its
//! children) in another precision than the rest of the model — a per-module
//! override of the op lists, e.g. a classifier head kept in FP32.

use mixprec_autograd::Var;
use mixprec_autograd::nn::Module;
use mixprec_autograd::optim::Optimizer;
use mixprec_autograd::tensor::kernels::slice::{Dst, Src};

use crate::error::Result;
use crate::grad_scaler::AmpOptimizer;
use crate::precision::{Precision, autocast};

impl<O: Optimizer> AmpOptimizer for O {
    fn amp_params(&self) -> &[Var] {
        self.params()
    }

    fn amp_step(&mut self) -> Result<()> {
        Ok(self.step()?)
    }

    fn amp_set_lr(&mut self, lr: f64) -> Result<()> {
        self.set_lr(lr)?;
        Ok(())
    }

    fn amp_steps_scaled(&self) -> bool {
        self.steps_scaled()
    }

    fn amp_step_param_scaled(&mut self, i: usize, grad: Src<'_>, inv_scale: f32, copy: Option<Dst<'_>>) -> Result<()> {
        Ok(self.step_param_scaled(i, grad, inv_scale, copy)?)
    }
}

/// `inner` with its forward pass under `precision`'s op lists, whatever the
/// surrounding scope: `WithPrecision::new(head, Precision::F32)` keeps a
/// layer in FP32 inside a mixed-precision model (its f16 inputs are cast
/// up). Parameters, training mode and gradients are the inner module's.
#[derive(Debug)]
pub struct WithPrecision<M> {
    inner: M,
    precision: Precision,
}

impl<M> WithPrecision<M> {
    /// Wraps `inner`.
    pub fn new(inner: M, precision: Precision) -> Self {
        WithPrecision { inner, precision }
    }

    /// The precision the wrapped module runs in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The wrapped module.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl<M: Module> Module for WithPrecision<M> {
    fn forward(&self, x: &Var) -> mixprec_autograd::Result<Var> {
        autocast(self.precision, || self.inner.forward(x))
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        self.inner.named_parameters()
    }

    fn set_training(&mut self, training: bool) {
        self.inner.set_training(training);
    }

    fn is_relu(&self) -> bool {
        self.inner.is_relu()
    }

    fn forward_relu(&self, x: &Var) -> Option<mixprec_autograd::Result<Var>> {
        autocast(self.precision, || self.inner.forward_relu(x))
    }
}
