//! Activation functions as modules (no parameters).

use crate::error::Result;
use crate::nn::Module;
use crate::var::Var;

/// `max(x, 0)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Relu;

impl Module for Relu {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.relu()
    }

    fn is_relu(&self) -> bool {
        true
    }
}

/// `tanh x`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tanh;

impl Module for Tanh {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.tanh()
    }
}

/// `σ(x)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sigmoid;

impl Module for Sigmoid {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.sigmoid()
    }
}

/// GELU (erf form, PyTorch's default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Gelu;

impl Module for Gelu {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.gelu()
    }
}
