//! Reductions over axes: `sum`, `mean`, `max` (with `keepdim`), and
//! `sum_all`/`mean_all` (every axis). FP32 accumulation for f16/bf16.
//!
//! `y = Σ_A x`: `dx = g` broadcast back over the axes `A` (a view, no copy).
//! `y = mean_A x`: `dx = g/|A|` broadcast.
//! `y = max_a x`: `dx = g·1[x = y] / #{x = y}`: the gradient is shared
//! evenly among ties (PyTorch's `amax`); a NaN maximum gives NaN gradients.

use mixprec_tensor::Tensor;
use mixprec_tensor::kernels::reduce::ReduceOp;

use crate::autocast::cast_inputs;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::var::Var;

/// The axes normalised to `0..rank`, sorted, checked for repeats.
fn axes_of(op: &'static str, axes: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let r = rank as isize;
        let n = if a < 0 { a + r } else { a };
        if !(0..r).contains(&n) {
            return Err(mixprec_tensor::TensorError::BadAxis { op, axis: a, rank }.into());
        }
        out.push(n as usize);
    }
    out.sort_unstable();
    if out.windows(2).any(|w| w[0] == w[1]) {
        return Err(AutogradError::bad(op, format!("axis repeated in {axes:?}")));
    }
    Ok(out)
}

/// The shape with the reduced axes kept as 1.
fn keepdim_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect()
}

impl Var {
    /// The sum over `axes` (`keepdim` keeps them with size 1).
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        reduce(self, "sum", ReduceOp::Sum, axes, keepdim)
    }

    /// The mean over `axes`.
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        reduce(self, "mean", ReduceOp::Mean, axes, keepdim)
    }

    /// The sum of every element (a 0-dimensional value).
    pub fn sum_all(&self) -> Result<Var> {
        let axes: Vec<isize> = (0..self.rank() as isize).collect();
        reduce(self, "sum", ReduceOp::Sum, &axes, false)
    }

    /// The mean of every element (a 0-dimensional value).
    pub fn mean_all(&self) -> Result<Var> {
        let axes: Vec<isize> = (0..self.rank() as isize).collect();
        reduce(self, "mean", ReduceOp::Mean, &axes, false)
    }

    /// The maximum over `axis` (an error for an empty axis).
    pub fn max(&self, axis: isize, keepdim: bool) -> Result<Var> {
        let [x] = cast_inputs("max", [self])?;
        let xv = x.value();
        let ax = axes_of("max", &[axis], xv.rank())?;
        let y = xv.max(axis, keepdim)?;
        let kept = y.reshape(&keepdim_shape(xv.shape(), &ax))?;
        Ok(record("max", &[&x], y, |_| MaxBackward { x: xv, y: kept }))
    }
}

fn reduce(x: &Var, name: &'static str, op: ReduceOp, axes: &[isize], keepdim: bool) -> Result<Var> {
    let [x] = cast_inputs(name, [x])?;
    let xv = x.value();
    let ax = axes_of(name, axes, xv.rank())?;
    let y = if ax.is_empty() {
        xv.clone()
    } else {
        let signed: Vec<isize> = ax.iter().map(|&a| a as isize).collect();
        xv.reduce_axes(op, &signed, keepdim)?
    };
    // Overflow only in an empty tensor, whose mean is empty too.
    let dims = xv.shape();
    let count = if ax.iter().any(|&a| dims[a] == 0) {
        0
    } else {
        ax.iter().try_fold(1usize, |acc, &a| acc.checked_mul(dims[a])).unwrap_or(0)
    };
    let scale = if op == ReduceOp::Mean { 1.0 / count as f64 } else { 1.0 };
    let kept = keepdim_shape(xv.shape(), &ax);
    Ok(record(name, &[&x], y, |_| SumBackward { kept, scale }))
}

/// `dx = scale·g`, broadcast from the kept shape.
struct SumBackward {
    kept: Vec<usize>,
    scale: f64,
}

impl Backward for SumBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let g = g.contiguous().reshape(&self.kept)?;
        let g = if self.scale == 1.0 { g } else { g.mul_scalar(self.scale)? };
        let shape = grads.shape(0).to_vec();
        grads.accumulate(0, g.broadcast_to(&shape)?)
    }
}

/// `dx = g·1[x = y] / #{x = y}` (`y` kept with size-1 axes).
struct MaxBackward {
    x: Tensor,
    y: Tensor,
}

impl Backward for MaxBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let g = g.contiguous().reshape(self.y.shape())?;
        let hit = self.x.eq(&self.y)?;
        let ties = hit.sum_to(self.y.shape())?;
        grads.accumulate(0, hit.mul(&g.div(&ties)?)?)
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.x, &self.y]
    }
}
