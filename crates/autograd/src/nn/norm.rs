//! [`BatchNorm2d`] and [`LayerNorm`]: PyTorch's layers (γ = 1, β = 0 at
//! start; batch norm's running statistics updated in training, used in
//! evaluation). Their parameters are declared norm parameters
//! ([`crate::Param::set_norm`]), so mixed-precision policy keeps them FP32.

use std::sync::Mutex;

use mixprec_tensor::{DType, Tensor};

use crate::error::{AutogradError, Result};
use crate::nn::Module;
use crate::ops::RunningStats;
use crate::var::Var;

/// A parameter declared a normalisation layer's.
fn norm_parameter(value: Tensor) -> Var {
    let v = Var::parameter(value);
    if let Some(p) = v.param() {
        p.set_norm(true);
    }
    v
}

/// Batch normalization over `[N, C, H, W]` (any rank ≥ 2 works).
#[derive(Debug)]
pub struct BatchNorm2d {
    /// γ, `[C]`.
    pub weight: Var,
    /// β, `[C]`.
    pub bias: Var,
    /// The running mean and variance (FP32), updated by training forwards.
    pub running: Mutex<RunningStats>,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance.
    pub eps: f64,
    training: bool,
}

impl BatchNorm2d {
    /// `C` channels, momentum 0.1, ε = 1e-5, training mode.
    pub fn new(channels: usize) -> Result<BatchNorm2d> {
        Ok(BatchNorm2d {
            weight: norm_parameter(Tensor::ones(&[channels], DType::F32)?),
            bias: norm_parameter(Tensor::zeros(&[channels], DType::F32)?),
            running: Mutex::new(RunningStats::new(channels)?),
            momentum: 0.1,
            eps: 1e-5,
            training: true,
        })
    }

    /// A copy of the running statistics.
    pub fn running_stats(&self) -> RunningStats {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        x.batch_norm(Some(&self.weight), Some(&self.bias), Some(&mut running), self.training, self.momentum, self.eps)
    }

    fn forward_relu(&self, x: &Var) -> Option<Result<Var>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        Some(x.batch_norm_relu(
            Some(&self.weight),
            Some(&self.bias),
            Some(&mut running),
            self.training,
            self.momentum,
            self.eps,
        ))
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        vec![("weight".to_string(), self.weight.clone()), ("bias".to_string(), self.bias.clone())]
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let r = self.running_stats();
        vec![("running_mean".to_string(), r.mean), ("running_var".to_string(), r.var)]
    }

    fn set_buffer(&self, path: &str, value: Tensor) -> Result<()> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match path {
            "running_mean" => &mut running.mean,
            "running_var" => &mut running.var,
            _ => return Err(super::no_buffer(path)),
        };
        if value.shape() != slot.shape() || value.dtype() != slot.dtype() {
            return Err(AutogradError::BadArgument {
                op: "set_buffer",
                reason: format!(
                    "buffer `{path}` is {} {:?}, the value given is {} {:?}",
                    slot.dtype(),
                    slot.shape(),
                    value.dtype(),
                    value.shape()
                ),
            });
        }
        *slot = value;
        Ok(())
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// Layer normalization over the trailing `normalized_shape` axes.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// The normalized trailing shape.
    pub normalized_shape: Vec<usize>,
    /// γ, of `normalized_shape`.
    pub weight: Var,
    /// β, of `normalized_shape`.
    pub bias: Var,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// γ = 1, β = 0 of `normalized_shape`, ε = 1e-5.
    pub fn new(normalized_shape: &[usize]) -> Result<LayerNorm> {
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            weight: norm_parameter(Tensor::ones(normalized_shape, DType::F32)?),
            bias: norm_parameter(Tensor::zeros(normalized_shape, DType::F32)?),
            eps: 1e-5,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.layer_norm(&self.normalized_shape, Some(&self.weight), Some(&self.bias), self.eps)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        vec![("weight".to_string(), self.weight.clone()), ("bias".to_string(), self.bias.clone())]
    }
}
