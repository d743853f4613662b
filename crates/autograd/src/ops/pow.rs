//! Powers: `pow` (`a^b`, both tensors, broadcast) and `pow_scalar` (`x^p`).
//!
//! `y = a^b`: `da = g·b·a^(b−1)`, `db = g·y·ln a` (defined for `a > 0`).
//! `y = x^p`: `dx = g·p·x^(p−1)`.

use mixprec_tensor::Tensor;

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::var::Var;

impl Var {
    /// `a^b` elementwise, broadcast (`powf`).
    pub fn pow(&self, exponent: &Var) -> Result<Var> {
        let [a, b] = cast_inputs("pow", [self, exponent])?;
        let (av, bv) = (a.value(), b.value());
        let y = av.pow(&bv)?;
        Ok(record("pow", &[&a, &b], y, |y| PowBackward { a: av, b: bv, y: y.clone() }))
    }

    /// `x^p` elementwise.
    pub fn pow_scalar(&self, p: f64) -> Result<Var> {
        let [x] = cast_inputs("pow_scalar", [self])?;
        let xv = x.value();
        let y = xv.pow_scalar(p)?;
        Ok(record("pow_scalar", &[&x], y, |_| PowScalarBackward { x: xv, p }))
    }
}

struct PowBackward {
    a: Tensor,
    b: Tensor,
    y: Tensor,
}

impl Backward for PowBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        if grads.wants(0) {
            // da = g·b·a^(b−1)
            let d = self.a.pow(&self.b.sub_scalar(1.0)?)?.mul(&self.b)?.mul(g)?;
            grads.accumulate(0, d.sum_to(grads.shape(0))?)?;
        }
        if grads.wants(1) {
            // db = g·y·ln a
            let d = self.a.log()?.mul(&self.y)?.mul(g)?;
            grads.accumulate(1, d.sum_to(grads.shape(1))?)?;
        }
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.a, &self.b, &self.y]
    }
}

struct PowScalarBackward {
    x: Tensor,
    p: f64,
}

impl Backward for PowScalarBackward {
    // dx = g·p·x^(p−1)
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let d = if self.p == 2.0 {
            self.x.mul_scalar(2.0)?
        } else {
            self.x.pow_scalar(self.p - 1.0)?.mul_scalar(self.p)?
        };
        grads.accumulate(0, g.mul(&d)?)
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.x]
    }
}
