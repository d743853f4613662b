//! `cast`: `y = round_d(x)`, the value converted to another dtype.
//! `dy/dx = 1`: the gradient is converted back to `x`'s dtype.
//!
//! The autocast mechanism inserts these; it never consults the policy
//! itself.

use mixprec_tensor::{DType, Tensor};

use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::var::Var;

impl Var {
    /// The value rounded once to `dtype` (differentiable: the gradient is
    /// rounded back to this value's dtype). The same `Var` if it already
    /// has that dtype.
    pub fn to_dtype(&self, dtype: DType) -> Result<Var> {
        if self.dtype() == dtype {
            return Ok(self.clone());
        }
        let y = self.value().to_dtype(dtype)?;
        Ok(record("cast", &[self], y, |_| CastBackward))
    }
}

struct CastBackward;

impl Backward for CastBackward {
    // dx = g, rounded to x's dtype (`accumulate` converts).
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        grads.accumulate(0, g.clone())
    }
}
