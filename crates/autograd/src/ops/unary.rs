//! Elementwise unary ops. Each saves what its derivative reads: the output
//! where the derivative is a function of it (cheaper, and a ReLU's output
//! is the next layer's input, so it is saved once), the input otherwise.
//!
//! | op | y | dy/dx | saves |
//! |---|---|---|---|
//! | `neg` | `−x` | `−1` | nothing |
//! | `exp` | `eˣ` | `y` | output |
//! | `log` | `ln x` | `1/x` | input |
//! | `sqrt` | `√x` | `1/(2y)` | output |
//! | `tanh` | `tanh x` | `1 − y²` | output |
//! | `sigmoid` | `σ(x)` | `y(1 − y)` | output |
//! | `relu` | `max(x, 0)` | `1[y > 0]` (0 at the kink) | output |
//! | `gelu` | `x·Φ(x)` | `Φ(x) + x·φ(x)` | input |
//! | `gelu_tanh` | `x·σ(2u)`, `u = √(2/π)(x + 0.044715x³)` | see `GradOp::GeluTanh` | input |

use mixprec_tensor::kernels::ew::{self, GradOp, UnaryOp};
use mixprec_tensor::{Element, Tensor};

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::ops::elem::{dispatch, elems, tensor_from};
use crate::var::Var;

/// Which tensor a unary op's derivative reads.
#[derive(Clone, Copy)]
enum Saves {
    Input,
    Output,
}

fn unary(x: &Var, name: &'static str, op: UnaryOp, grad: GradOp, saves: Saves) -> Result<Var> {
    let [x] = cast_inputs(name, [x])?;
    let xv = x.value();
    // A contiguous input writes into a cached buffer (no allocation, no zero-fill).
    let y = if xv.is_contiguous() {
        dispatch!(xv.dtype(), T => tensor_from::<T>(xv.shape(), |y| {
            ew::unary(op, Element::src(elems::<T>(&xv)), Element::dst(y))
        })?)
    } else {
        xv.unary(op)?
    };
    Ok(record(name, &[&x], y, |y| UnaryBackward {
        op: grad,
        saved: match saves {
            Saves::Input => xv,
            Saves::Output => y.clone(),
        },
    }))
}

impl Var {
    /// `−x`.
    pub fn neg(&self) -> Result<Var> {
        let [x] = cast_inputs("neg", [self])?;
        let y = x.value().neg()?;
        Ok(record("neg", &[&x], y, |_| NegBackward))
    }

    /// `eˣ`.
    pub fn exp(&self) -> Result<Var> {
        unary(self, "exp", UnaryOp::Exp, GradOp::Exp, Saves::Output)
    }

    /// `ln x`.
    pub fn log(&self) -> Result<Var> {
        unary(self, "log", UnaryOp::Log, GradOp::Log, Saves::Input)
    }

    /// `√x`.
    pub fn sqrt(&self) -> Result<Var> {
        unary(self, "sqrt", UnaryOp::Sqrt, GradOp::Sqrt, Saves::Output)
    }

    /// `tanh x`.
    pub fn tanh(&self) -> Result<Var> {
        unary(self, "tanh", UnaryOp::Tanh, GradOp::Tanh, Saves::Output)
    }

    /// `σ(x) = 1 / (1 + e⁻ˣ)`.
    pub fn sigmoid(&self) -> Result<Var> {
        unary(self, "sigmoid", UnaryOp::Sigmoid, GradOp::Sigmoid, Saves::Output)
    }

    /// `max(x, 0)`; the derivative at 0 is 0 (PyTorch's convention).
    pub fn relu(&self) -> Result<Var> {
        // GradOp::Relu reads `x > 0`; `y > 0` is the same test (NaN too).
        unary(self, "relu", UnaryOp::Relu, GradOp::Relu, Saves::Output)
    }

    /// GELU, erf form (PyTorch's default `gelu`).
    pub fn gelu(&self) -> Result<Var> {
        unary(self, "gelu", UnaryOp::GeluErf, GradOp::GeluErf, Saves::Input)
    }

    /// GELU, tanh approximation (PyTorch's `gelu(approximate="tanh")`).
    pub fn gelu_tanh(&self) -> Result<Var> {
        unary(self, "gelu_tanh", UnaryOp::GeluTanh, GradOp::GeluTanh, Saves::Input)
    }
}

/// `dx = g · f'(saved)`.
struct UnaryBackward {
    op: GradOp,
    saved: Tensor,
}

impl Backward for UnaryBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        grads.accumulate(0, Tensor::unary_grad(self.op, g, &self.saved)?)
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.saved]
    }
}

/// `y = −x`: `dx = −g`.
struct NegBackward;

impl Backward for NegBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        grads.accumulate(0, g.neg()?)
    }
}
