//! `cat` (join along an existing axis) and `stack` (along a new one).
//! Mixed dtypes promote (autocast's `PromoteWidest`).
//!
//! `y = cat(x₀, x₁, …)`: `dxᵢ` is the slice of `g` where `xᵢ` landed (a view).
//! `y = stack(x₀, x₁, …)`: `dxᵢ = g[…, i, …]` along the new axis (a view).

use mixprec_tensor::{Tensor, TensorError};

use crate::autocast::cast_inputs_vec;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::var::Var;

fn normalize(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) { Ok(a as usize) } else { Err(TensorError::BadAxis { op, axis, rank }.into()) }
}

impl Var {
    /// Joins values along an existing `axis` (all other axes must agree).
    pub fn cat(inputs: &[&Var], axis: isize) -> Result<Var> {
        let owned: Vec<Var> = inputs.iter().map(|v| (*v).clone()).collect();
        let xs = cast_inputs_vec("cat", &owned)?;
        let values: Vec<Tensor> = xs.iter().map(Var::value).collect();
        let refs: Vec<&Tensor> = values.iter().collect();
        let y = Tensor::cat(&refs, axis)?;
        let ax = normalize("cat", axis, y.rank())?;
        let sizes: Vec<usize> = values.iter().map(|v| v.shape()[ax]).collect();
        let inputs: Vec<&Var> = xs.iter().collect();
        Ok(record("cat", &inputs, y, |_| CatBackward { axis: ax, sizes }))
    }

    /// Joins values of one shape along a new `axis`.
    pub fn stack(inputs: &[&Var], axis: isize) -> Result<Var> {
        let owned: Vec<Var> = inputs.iter().map(|v| (*v).clone()).collect();
        let xs = cast_inputs_vec("stack", &owned)?;
        let values: Vec<Tensor> = xs.iter().map(Var::value).collect();
        let refs: Vec<&Tensor> = values.iter().collect();
        let y = Tensor::stack(&refs, axis)?;
        let ax = normalize("stack", axis, y.rank())?;
        let inputs: Vec<&Var> = xs.iter().collect();
        Ok(record("stack", &inputs, y, |_| StackBackward { axis: ax }))
    }
}

struct CatBackward {
    axis: usize,
    sizes: Vec<usize>,
}

impl Backward for CatBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let mut at = 0;
        for (i, &n) in self.sizes.iter().enumerate() {
            if grads.wants(i) {
                grads.accumulate(i, g.narrow(self.axis as isize, at, n)?)?;
            }
            at += n;
        }
        Ok(())
    }
}

struct StackBackward {
    axis: usize,
}

impl Backward for StackBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        for i in 0..g.shape()[self.axis] {
            if grads.wants(i) {
                grads.accumulate(i, g.index_axis(self.axis as isize, i)?)?;
            }
        }
        Ok(())
    }
}
