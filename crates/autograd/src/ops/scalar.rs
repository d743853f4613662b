//! Ops with a scalar operand: `x + s`, `x − s`, `s − x`, `x·s`, `x/s`. The
//! scalar is rounded to the compute type first and the result keeps `x`'s
//! dtype, as PyTorch does for Python scalars.

use mixprec_tensor::Tensor;

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::var::Var;

impl Var {
    /// `x + s`.
    pub fn add_scalar(&self, s: f64) -> Result<Var> {
        let [x] = cast_inputs("add_scalar", [self])?;
        let y = x.value().add_scalar(s)?;
        Ok(record("add_scalar", &[&x], y, |_| ScaleBackward { factor: 1.0 }))
    }

    /// `x − s` (recorded as `add_scalar` of `−s`: the same rounding).
    pub fn sub_scalar(&self, s: f64) -> Result<Var> {
        self.add_scalar(-s)
    }

    /// `s − x`.
    pub fn rsub_scalar(&self, s: f64) -> Result<Var> {
        let [x] = cast_inputs("rsub_scalar", [self])?;
        let y = x.value().scalar_binary(s, mixprec_tensor::kernels::ew::BinaryOp::Sub)?;
        Ok(record("rsub_scalar", &[&x], y, |_| ScaleBackward { factor: -1.0 }))
    }

    /// `x · s`.
    pub fn mul_scalar(&self, s: f64) -> Result<Var> {
        let [x] = cast_inputs("mul_scalar", [self])?;
        let y = x.value().mul_scalar(s)?;
        Ok(record("mul_scalar", &[&x], y, |_| ScaleBackward { factor: s }))
    }

    /// `x / s`.
    pub fn div_scalar(&self, s: f64) -> Result<Var> {
        let [x] = cast_inputs("div_scalar", [self])?;
        let y = x.value().div_scalar(s)?;
        Ok(record("div_scalar", &[&x], y, |_| DivScalarBackward { s }))
    }
}

/// `y = c·x + s`: `dx = c·g` (`c = ±1` or the factor of `mul_scalar`).
struct ScaleBackward {
    factor: f64,
}

impl Backward for ScaleBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let dx = if self.factor == 1.0 {
            g.clone()
        } else if self.factor == -1.0 {
            g.neg()?
        } else {
            g.mul_scalar(self.factor)?
        };
        grads.accumulate(0, dx)
    }
}

/// `y = x/s`: `dx = g/s`.
struct DivScalarBackward {
    s: f64,
}

impl Backward for DivScalarBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        grads.accumulate(0, g.div_scalar(self.s)?)
    }
}
