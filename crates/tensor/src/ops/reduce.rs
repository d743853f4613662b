//! Reductions over axes (with `keepdim`), arg-reductions, and softmax /
//! log-softmax over an axis. The tensor is seen as `(outer, axis, inner)`:
//! `inner == 1` reduces rows, otherwise each outer block is reduced down
//! its columns, so no transposed copy is made. Several axes at once are
//! moved to the end and reduced as one row (one accumulation, one rounding).
//! Accumulation is FP32 (f64 for f64); results keep the input dtype.

use mixprec_kernels::reduce::{self, ArgOp, ReduceOp, SoftmaxOp};

use crate::error::{Result, TensorError};
use crate::layout::{normalize_axis, numel_or_zero, validate_shape};
use crate::storage::Storage;
use crate::tensor::Tensor;

/// `(outer, axis, inner)` sizes around `axis`.
fn split(shape: &[usize], ax: usize) -> (usize, usize, usize) {
    (numel_or_zero(&shape[..ax]), shape[ax], numel_or_zero(&shape[ax + 1..]))
}

fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    let mut out = Vec::with_capacity(shape.len());
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdim {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    out
}

fn op_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "sum",
        ReduceOp::Mean => "mean",
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
        ReduceOp::SumSq => "sum_sq",
    }
}

impl Tensor {
    /// Reduces `axis` with `op`; `keepdim` keeps it with size 1.
    pub fn reduce(&self, op: ReduceOp, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axes(op, &[axis], keepdim)
    }

    /// Reduces several axes at once (all axes for an empty list is *not*
    /// implied: pass them, or use [`Tensor::reduce_all`]).
    pub fn reduce_axes(&self, op: ReduceOp, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let name = op_name(op);
        let rank = self.rank();
        let mut ax: Vec<usize> = axes.iter().map(|&a| normalize_axis(name, a, rank)).collect::<Result<_>>()?;
        ax.sort_unstable();
        if ax.windows(2).any(|w| w[0] == w[1]) {
            return Err(TensorError::BadArgument { op: name, reason: format!("axis repeated in {axes:?}") });
        }
        let shape = self.shape();
        let out_shape = reduced_shape(shape, &ax, keepdim);
        // Without a Vec (reductions run in allocation-free steps); as
        // `numel_or_zero`: an overflow only in an empty tensor counts as 0.
        let len = if ax.iter().any(|&a| shape[a] == 0) {
            0
        } else {
            ax.iter().try_fold(1usize, |acc, &a| acc.checked_mul(shape[a])).unwrap_or(0)
        };
        let kept = match self.numel().checked_div(len) {
            Some(kept) => kept,
            // An empty reduced axis: the kept axes alone may be too large.
            None => validate_shape(name, &out_shape)?,
        };
        if len == 0 && kept > 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
            return Err(TensorError::EmptyReduction { op: name, axis: ax[0], shape: shape.to_vec() });
        }
        let mut out = Storage::zeros(self.dtype(), kept);
        if kept > 0 {
            if ax.len() == 1 {
                let x = self.contiguous();
                let (outer, n, inner) = split(shape, ax[0]);
                let src = x.contiguous_src().unwrap_or(mixprec_kernels::slice::Src::F32(&[]));
                let mut dst = out.dst_all();
                if inner == 1 {
                    reduce::reduce_rows(op, src, outer, n, dst);
                } else {
                    for o in 0..outer {
                        let block = src.slice(o * n * inner, (o + 1) * n * inner);
                        reduce::reduce_cols(op, block, n, inner, dst.slice(o * inner, (o + 1) * inner));
                    }
                }
            } else {
                // Move the reduced axes last; one row reduction per kept index.
                let mut perm: Vec<usize> = (0..rank).filter(|i| !ax.contains(i)).collect();
                perm.extend_from_slice(&ax);
                let x = self.permute(&perm)?.contiguous();
                let src = x.contiguous_src().unwrap_or(mixprec_kernels::slice::Src::F32(&[]));
                reduce::reduce_rows(op, src, kept, len, out.dst_all());
            }
        }
        Ok(Tensor::from_storage(out, &out_shape))
    }

    /// Reduces every element to a 0-dimensional tensor.
    pub fn reduce_all(&self, op: ReduceOp) -> Result<Tensor> {
        let axes: Vec<isize> = (0..self.rank() as isize).collect();
        if self.rank() == 0 {
            return self.reshape(&[1])?.reduce_axes(op, &[0], false);
        }
        self.reduce_axes(op, &axes, false)
    }

    /// Sum over `axis`.
    pub fn sum(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axis, keepdim)
    }

    /// Mean over `axis`.
    pub fn mean(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, axis, keepdim)
    }

    /// Maximum over `axis` (an error for an empty axis).
    pub fn max(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, axis, keepdim)
    }

    /// Minimum over `axis` (an error for an empty axis).
    pub fn min(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, axis, keepdim)
    }

    /// Sum of every element (0-dimensional).
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::Sum)
    }

    /// Mean of every element (0-dimensional; NaN when empty).
    pub fn mean_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::Mean)
    }

    /// Sums this tensor down to `shape`, which it must broadcast from (the
    /// gradient of a broadcast: leading axes and axes where `shape` has 1
    /// are summed).
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        let me = self.shape();
        let bad = || TensorError::BadBroadcast { op: "sum_to", from: shape.to_vec(), to: me.to_vec() };
        if shape.len() > me.len() {
            return Err(bad());
        }
        let lead = me.len() - shape.len();
        let mut axes = Vec::new();
        for (i, &d) in me.iter().enumerate() {
            if i < lead {
                axes.push(i as isize);
            } else if shape[i - lead] != d {
                if shape[i - lead] != 1 {
                    return Err(bad());
                }
                axes.push(i as isize);
            }
        }
        if axes.is_empty() {
            return Ok(self.clone());
        }
        self.reduce_axes(ReduceOp::Sum, &axes, true)?.reshape(shape)
    }

    fn arg(&self, op: ArgOp, axis: isize) -> Result<(Vec<usize>, usize, Vec<usize>)> {
        let name = if op == ArgOp::Max { "argmax" } else { "argmin" };
        let ax = normalize_axis(name, axis, self.rank())?;
        let (outer, n, inner) = split(self.shape(), ax);
        if n == 0 && outer * inner > 0 {
            return Err(TensorError::EmptyReduction { op: name, axis: ax, shape: self.shape().to_vec() });
        }
        let x = self.contiguous();
        let src = x.contiguous_src().unwrap_or(mixprec_kernels::slice::Src::F32(&[]));
        let mut idx = vec![0usize; outer * inner];
        if outer * inner > 0 {
            if inner == 1 {
                reduce::arg_rows(op, src, outer, n, &mut idx);
            } else {
                for o in 0..outer {
                    let block = src.slice(o * n * inner, (o + 1) * n * inner);
                    reduce::arg_cols(op, block, n, inner, &mut idx[o * inner..(o + 1) * inner]);
                }
            }
        }
        Ok((idx, ax, self.shape().to_vec()))
    }

    fn arg_tensor(&self, op: ArgOp, axis: isize, keepdim: bool) -> Result<Tensor> {
        let (idx, ax, shape) = self.arg(op, axis)?;
        if shape[ax] > 1 << 24 {
            return Err(TensorError::BadArgument {
                op: "argmax",
                reason: format!("axis of {} elements: indices above 2^24 are not exact in f32", shape[ax]),
            });
        }
        let vals: Vec<f32> = idx.iter().map(|&i| i as f32).collect();
        Tensor::from_vec(vals, &reduced_shape(&shape, &[ax], keepdim))
    }

    /// Indices of the maxima along `axis` as an f32 tensor (exact below
    /// 2^24; the first index among ties; a NaN counts as the maximum).
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_tensor(ArgOp::Max, axis, keepdim)
    }

    /// Indices of the minima along `axis` as an f32 tensor.
    pub fn argmin(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_tensor(ArgOp::Min, axis, keepdim)
    }

    /// Indices of the maxima along `axis`, row-major over the other axes.
    pub fn argmax_indices(&self, axis: isize) -> Result<Vec<usize>> {
        Ok(self.arg(ArgOp::Max, axis)?.0)
    }

    fn softmax_op(&self, op: SoftmaxOp, axis: isize) -> Result<Tensor> {
        let name = if op == SoftmaxOp::Softmax { "softmax" } else { "log_softmax" };
        let ax = normalize_axis(name, axis, self.rank().max(1))?;
        if self.rank() == 0 {
            return self.reshape(&[1])?.softmax_op(op, 0)?.reshape(&[]);
        }
        let (outer, n, inner) = split(self.shape(), ax);
        let x = self.contiguous();
        let src = x.contiguous_src().unwrap_or(mixprec_kernels::slice::Src::F32(&[]));
        let mut out = Storage::zeros(self.dtype(), self.numel());
        let mut dst = out.dst_all();
        if inner == 1 {
            reduce::softmax_rows(op, src, outer, n, dst);
        } else {
            let b = n * inner;
            for o in 0..outer {
                reduce::softmax_cols(op, src.slice(o * b, (o + 1) * b), n, inner, dst.slice(o * b, (o + 1) * b));
            }
        }
        Ok(Tensor::from_storage(out, self.shape()))
    }

    /// Softmax along `axis` (max-subtracted, FP32 inside, this dtype out).
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        self.softmax_op(SoftmaxOp::Softmax, axis)
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        self.softmax_op(SoftmaxOp::LogSoftmax, axis)
    }

    /// The input gradient of `softmax` (or `log_softmax`) along `axis`, from
    /// the output gradient `g` and the forward output `y` (same shape):
    /// `y·(g − Σ g·y)`, or `g − e^y·Σ g`. The result has `g`'s dtype.
    pub fn softmax_backward(op: SoftmaxOp, g: &Tensor, y: &Tensor, axis: isize) -> Result<Tensor> {
        if g.shape() != y.shape() {
            return Err(TensorError::ShapeMismatch {
                op: "softmax_backward",
                lhs: g.shape().to_vec(),
                rhs: y.shape().to_vec(),
            });
        }
        let rank = g.rank().max(1);
        let ax = normalize_axis("softmax_backward", axis, rank)?;
        if g.rank() == 0 {
            let (g1, y1) = (g.reshape(&[1])?, y.reshape(&[1])?);
            return Tensor::softmax_backward(op, &g1, &y1, 0)?.reshape(&[]);
        }
        // Move the axis last so every line is a contiguous row.
        let last = g.rank() - 1;
        let (gt, yt) = (
            g.transpose(ax as isize, last as isize)?.contiguous(),
            y.transpose(ax as isize, last as isize)?.contiguous(),
        );
        let n = g.shape()[ax];
        let rows = g.numel().checked_div(n).unwrap_or(0);
        let mut out = Storage::zeros(g.dtype(), g.numel());
        if let (Some(gs), Some(ys)) = (gt.contiguous_src(), yt.contiguous_src()) {
            reduce::softmax_grad_rows(op, gs, ys, rows, n, out.dst_all());
        }
        let r = Tensor::from_storage(out, gt.shape());
        Ok(r.transpose(ax as isize, last as isize)?.contiguous())
    }
}
