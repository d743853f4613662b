//! Elementwise `add`, `sub`, `mul`, `div` with NumPy broadcasting and
//! PyTorch's dtype promotion (f16 + f32 → f32). Each input's gradient is
//! summed back to its own shape over the broadcast axes (`sum_to`) and
//! rounded to its own dtype.

use mixprec_tensor::Tensor;

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::var::Var;

impl Var {
    /// `a + b`, broadcast.
    pub fn add(&self, other: &Var) -> Result<Var> {
        let [a, b] = cast_inputs("add", [self, other])?;
        let y = a.value().add(&b.value())?;
        Ok(record("add", &[&a, &b], y, |_| AddBackward { sign: 1.0 }))
    }

    /// `a − b`, broadcast.
    pub fn sub(&self, other: &Var) -> Result<Var> {
        let [a, b] = cast_inputs("sub", [self, other])?;
        let y = a.value().sub(&b.value())?;
        Ok(record("sub", &[&a, &b], y, |_| AddBackward { sign: -1.0 }))
    }

    /// `a · b`, broadcast.
    pub fn mul(&self, other: &Var) -> Result<Var> {
        let [a, b] = cast_inputs("mul", [self, other])?;
        let (av, bv) = (a.value(), b.value());
        let y = av.mul(&bv)?;
        Ok(record("mul", &[&a, &b], y, |_| MulBackward { a: av, b: bv }))
    }

    /// `a / b`, broadcast.
    pub fn div(&self, other: &Var) -> Result<Var> {
        let [a, b] = cast_inputs("div", [self, other])?;
        let bv = b.value();
        let y = a.value().div(&bv)?;
        Ok(record("div", &[&a, &b], y, |y| DivBackward { b: bv, y: y.clone() }))
    }
}

/// `y = a ± b`: `da = g`, `db = ±g`, each summed to its input's shape.
struct AddBackward {
    sign: f64,
}

impl Backward for AddBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        if grads.wants(0) {
            grads.accumulate(0, g.sum_to(grads.shape(0))?)?;
        }
        if grads.wants(1) {
            let gb = g.sum_to(grads.shape(1))?;
            let gb = if self.sign < 0.0 { gb.neg()? } else { gb };
            grads.accumulate(1, gb)?;
        }
        Ok(())
    }
}

/// `y = a·b`: `da = g·b`, `db = g·a`.
struct MulBackward {
    a: Tensor,
    b: Tensor,
}

impl Backward for MulBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        if grads.wants(0) {
            grads.accumulate(0, g.mul(&self.b)?.sum_to(grads.shape(0))?)?;
        }
        if grads.wants(1) {
            grads.accumulate(1, g.mul(&self.a)?.sum_to(grads.shape(1))?)?;
        }
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.a, &self.b]
    }
}

/// `y = a/b`: `da = g/b`, `db = −g·a/b² = −(g/b)·y`.
struct DivBackward {
    b: Tensor,
    y: Tensor,
}

impl Backward for DivBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let g_over_b = g.div(&self.b)?;
        if grads.wants(1) {
            grads.accumulate(1, g_over_b.mul(&self.y)?.neg()?.sum_to(grads.shape(1))?)?;
        }
        if grads.wants(0) {
            grads.accumulate(0, g_over_b.sum_to(grads.shape(0))?)?;
        }
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.b, &self.y]
    }
}
