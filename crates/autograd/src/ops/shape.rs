//! Shape ops: `reshape` (also `flatten`, `unsqueeze`, `squeeze`),
//! `transpose`, `permute`, `narrow`. Views where the layout allows, so the
//! forward copies nothing; none saves a tensor.
//!
//! `y = reshape(x)`: `dx = reshape(g)` to x's shape.
//! `y = transpose_{a,b}(x)`: `dx = transpose_{a,b}(g)`.
//! `y = permute_p(x)`: `dx = permute_{p⁻¹}(g)`.
//! `y = x[start..start+len]` along an axis: `dx` is `g` in that range, 0 elsewhere.

use mixprec_tensor::{Tensor, TensorError};

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::util::reshaped;
use crate::var::Var;

impl Var {
    /// The same elements with another shape (a view when possible, else a
    /// copy, as PyTorch's `reshape`).
    pub fn reshape(&self, shape: &[usize]) -> Result<Var> {
        let [x] = cast_inputs("reshape", [self])?;
        let y = reshaped(&x.value(), shape)?;
        Ok(record("reshape", &[&x], y, |_| ReshapeBackward))
    }

    /// Axes `start..=end` merged into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Var> {
        let shape = self.with_value(|v| v.flatten(start, end).map(|f| f.shape().to_vec()))?;
        self.reshape(&shape)
    }

    /// A new axis of size 1 at `axis`.
    pub fn unsqueeze(&self, axis: isize) -> Result<Var> {
        let shape = self.with_value(|v| v.unsqueeze(axis).map(|f| f.shape().to_vec()))?;
        self.reshape(&shape)
    }

    /// Removes `axis`, whose size must be 1.
    pub fn squeeze(&self, axis: isize) -> Result<Var> {
        let shape = self.with_value(|v| v.squeeze(axis).map(|f| f.shape().to_vec()))?;
        self.reshape(&shape)
    }

    /// Axes `a` and `b` swapped (a view).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Var> {
        let [x] = cast_inputs("transpose", [self])?;
        let y = x.value().transpose(a, b)?;
        Ok(record("transpose", &[&x], y, |_| TransposeBackward { a, b }))
    }

    /// The transpose of a 2-D value (a view).
    pub fn t(&self) -> Result<Var> {
        if self.rank() != 2 {
            return Err(TensorError::BadRank { op: "t", expected: "rank 2", shape: self.shape().to_vec() }.into());
        }
        self.transpose(0, 1)
    }

    /// Axes reordered: axis `i` of the result is axis `perm[i]` (a view).
    pub fn permute(&self, perm: &[usize]) -> Result<Var> {
        let [x] = cast_inputs("permute", [self])?;
        let y = x.value().permute(perm)?;
        // `Tensor::permute` accepted `perm`: a permutation of 0..rank.
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(record("permute", &[&x], y, |_| PermuteBackward { inverse }))
    }

    /// Indices `start..start + len` along `axis` (a view).
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Var> {
        let [x] = cast_inputs("narrow", [self])?;
        let y = x.value().narrow(axis, start, len)?;
        let ax = if axis < 0 { (axis + x.rank() as isize) as usize } else { axis as usize };
        Ok(record("narrow", &[&x], y, |_| NarrowBackward { axis: ax, start }))
    }
}

struct ReshapeBackward;

impl Backward for ReshapeBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let shape = grads.shape(0).to_vec();
        grads.accumulate(0, reshaped(g, &shape)?)
    }
}

struct TransposeBackward {
    a: isize,
    b: isize,
}

impl Backward for TransposeBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        grads.accumulate(0, g.transpose(self.a, self.b)?)
    }
}

struct PermuteBackward {
    inverse: Vec<usize>,
}

impl Backward for PermuteBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        grads.accumulate(0, g.permute(&self.inverse)?)
    }
}

struct NarrowBackward {
    axis: usize,
    start: usize,
}

impl Backward for NarrowBackward {
    // dx = [0 … 0, g, 0 … 0] along the axis.
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let full = grads.shape(0).to_vec();
        let len = g.shape()[self.axis];
        let after = full[self.axis] - self.start - len;
        if self.start == 0 && after == 0 {
            return grads.accumulate(0, g.clone());
        }
        let pad = |n: usize| {
            let mut s = full.clone();
            s[self.axis] = n;
            Tensor::zeros(&s, g.dtype())
        };
        let (lo, hi) = (pad(self.start)?, pad(after)?);
        let parts: Vec<&Tensor> = [&lo, g, &hi].into_iter().filter(|t| t.shape()[self.axis] > 0).collect();
        grads.accumulate(0, Tensor::cat(&parts, self.axis as isize)?)
    }
}
