//! `select`: PyTorch's `where` (a Rust keyword otherwise).
//! `y = cond ? a : b` elementwise, all three broadcast together; `cond` is a
//! constant mask (nonzero or NaN is true).
//!
//! `da = cond ? g : 0` and `db = cond ? 0 : g`, each summed to its shape.

use mixprec_tensor::Tensor;

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::var::Var;

impl Var {
    /// `cond ? a : b` elementwise with broadcasting (PyTorch's `where`).
    pub fn select(cond: &Tensor, a: &Var, b: &Var) -> Result<Var> {
        let [a, b] = cast_inputs("select", [a, b])?;
        let y = Tensor::select(cond, &a.value(), &b.value())?;
        Ok(record("select", &[&a, &b], y, |_| SelectBackward { cond: cond.clone() }))
    }
}

struct SelectBackward {
    cond: Tensor,
}

impl Backward for SelectBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let zero = Tensor::zeros(&[], g.dtype())?;
        if grads.wants(0) {
            grads.accumulate(0, Tensor::select(&self.cond, g, &zero)?.sum_to(grads.shape(0))?)?;
        }
        if grads.wants(1) {
            grads.accumulate(1, Tensor::select(&self.cond, &zero, g)?.sum_to(grads.shape(1))?)?;
        }
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.cond]
    }
}
