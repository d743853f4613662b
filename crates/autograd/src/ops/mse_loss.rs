//! `mse_loss`: `ℓᵢ = (aᵢ − bᵢ)²`, reduced by mean (default), sum or none.
//!
//! `daᵢ = 2(aᵢ − bᵢ)·gᵢ·s` and `dbᵢ = −daᵢ`, with `s = 1/n` for the mean,
//! else 1 (`gᵢ` is the one scalar gradient for mean and sum).

use mixprec_tensor::{Tensor, TensorError};

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::ops::Reduction;
use crate::var::Var;

impl Var {
    /// Mean squared error between this prediction and `target` (same shape).
    pub fn mse_loss(&self, target: &Var, reduction: Reduction) -> Result<Var> {
        if self.shape() != target.shape() {
            return Err(TensorError::ShapeMismatch {
                op: "mse_loss",
                lhs: self.shape().to_vec(),
                rhs: target.shape().to_vec(),
            }
            .into());
        }
        let [a, b] = cast_inputs("mse_loss", [self, target])?;
        let d = a.value().sub(&b.value())?;
        let sq = d.square()?;
        let (y, scale) = match reduction {
            Reduction::Mean => (sq.mean_all()?, 1.0 / d.numel() as f64),
            Reduction::Sum => (sq.sum_all()?, 1.0),
            Reduction::None => (sq, 1.0),
        };
        Ok(record("mse_loss", &[&a, &b], y, |_| MseBackward { d, scale: 2.0 * scale }))
    }
}

struct MseBackward {
    d: Tensor,
    scale: f64,
}

impl Backward for MseBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let da = self.d.mul(g)?.mul_scalar(self.scale)?;
        if grads.wants(1) {
            grads.accumulate(1, da.neg()?)?;
        }
        grads.accumulate(0, da)
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.d]
    }
}
