//! `softmax` and `log_softmax` along an axis (max-subtracted, FP32 inside,
//! the input's dtype out). Both save their output.
//!
//! `y = softmax(x)`: `dx = y·(g − Σ g·y)`.
//! `y = log_softmax(x)`: `dx = g − e^y·Σ g`.

use mixprec_tensor::Tensor;
use mixprec_tensor::kernels::reduce::SoftmaxOp;

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::var::Var;

impl Var {
    /// Softmax along `axis` (negative counts from the end).
    pub fn softmax(&self, axis: isize) -> Result<Var> {
        softmax(self, "softmax", SoftmaxOp::Softmax, axis)
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Result<Var> {
        softmax(self, "log_softmax", SoftmaxOp::LogSoftmax, axis)
    }
}

fn softmax(x: &Var, name: &'static str, op: SoftmaxOp, axis: isize) -> Result<Var> {
    let [x] = cast_inputs(name, [x])?;
    let xv = x.value();
    let y = match op {
        SoftmaxOp::Softmax => xv.softmax(axis)?,
        SoftmaxOp::LogSoftmax => xv.log_softmax(axis)?,
    };
    Ok(record(name, &[&x], y, |y| SoftmaxBackward { op, axis, y: y.clone() }))
}

struct SoftmaxBackward {
    op: SoftmaxOp,
    axis: isize,
    y: Tensor,
}

impl Backward for SoftmaxBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        grads.accumulate(0, Tensor::softmax_backward(self.op, g, &self.y, self.axis)?)
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.y]
    }
}
