//! Layers: the [`Module`] trait, [`Linear`], [`Sequential`], activation
//! modules, and weight initialisation ([`init`]) from the seeded generator.
//!
//! A module's `forward` takes and returns a [`Var`]; its parameters are
//! `Var`s backed by shared [`Param`](crate::Param) cells, so an optimizer
//! built from `module.parameters()` updates the module's own weights.
//! Containers push each child's name on the name scope while it runs, so the
//! non-finite scan reports an op with the path of the module it ran in
//! (`"mlp.fc2"`).

mod activation;
mod conv;
mod embedding;
pub mod init;
mod linear;
mod lstm;
mod norm;
mod sequential;

pub use activation::{Gelu, Relu, Sigmoid, Tanh};
pub use conv::{AvgPool2d, Conv2d, MaxPool2d};
pub use embedding::{Dropout, Embedding};
pub use linear::{Linear, LinearOptions};
pub use lstm::LSTM;
pub use norm::{BatchNorm2d, LayerNorm};
pub use sequential::Sequential;

use mixprec_tensor::Tensor;

use crate::error::{AutogradError, Result};
use crate::var::Var;

/// A layer or model: a differentiable function with parameters.
pub trait Module: Send + Sync {
    /// Computes the output for input `x`.
    fn forward(&self, x: &Var) -> Result<Var>;

    /// Every parameter with its dotted path (`"0.weight"`), children's
    /// included, in a fixed order.
    fn named_parameters(&self) -> Vec<(String, Var)> {
        Vec::new()
    }

    /// Every buffer (state that is not a parameter and that training
    /// changes: batch norm's `running_mean`, `running_var`) with its dotted
    /// path, children's included, in a fixed order; copies, as PyTorch's
    /// `named_buffers` in a `state_dict`.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Replaces the buffer at `path` (a path [`named_buffers`](Self::named_buffers)
    /// lists) with `value`, which must have the buffer's shape and dtype.
    /// An unknown path or a mismatch is an error naming the buffer.
    fn set_buffer(&self, path: &str, _value: Tensor) -> Result<()> {
        Err(no_buffer(path))
    }

    /// Every parameter (handles sharing the module's cells).
    fn parameters(&self) -> Vec<Var> {
        self.named_parameters().into_iter().map(|(_, p)| p).collect()
    }

    /// Training (`true`) or evaluation mode for this module and its
    /// children (dropout and batch norm behave differently). Containers
    /// forward it to their children.
    fn set_training(&mut self, _training: bool) {}

    /// Training mode.
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Whether this module is an elementwise ReLU, which a preceding layer
    /// that implements [`Module::forward_relu`] may fuse into itself.
    fn is_relu(&self) -> bool {
        false
    }

    /// `relu(forward(x))` as one op, if this module can fuse it (`Linear`
    /// does: the bias and ReLU run in the GEMM's store). `None`: it cannot.
    fn forward_relu(&self, _x: &Var) -> Option<Result<Var>> {
        None
    }
}

/// The error for a buffer path that names nothing.
fn no_buffer(path: &str) -> AutogradError {
    AutogradError::BadArgument { op: "set_buffer", reason: format!("this module has no buffer `{path}`") }
}
