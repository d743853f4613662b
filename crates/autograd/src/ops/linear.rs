//! `linear` (PyTorch's `F.linear`) and `linear_relu` (the same followed by
//! ReLU, as one node): `y = x·Wᵀ + b` for `x` of shape `[…, in]`, `W` of
//! shape `[out, in]` (PyTorch's layout) and `b` of shape `[out]`.
//!
//! Forward is one GEMM (`X` as stored, `W` transposed by flag) whose store
//! adds the bias and applies the ReLU, so no pass over the output follows.
//!
//! With `G = dy` (for `linear_relu`, `G = dy·1[y > 0]`, from the saved output):
//! `dX = G·W`, `dW = Gᵀ·X` (accumulated into the weight's gradient with
//! `beta = 1`), `db = Σ_rows G`. `x`'s leading axes fold into GEMM rows.

use mixprec_tensor::kernels::ew::{self, GradOp};
use mixprec_tensor::kernels::gemm::Transpose;
use mixprec_tensor::{DType, Tensor, TensorError};

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::ops::gemm::{Epilogue, Mat, accumulate_product, gemm_new};
use crate::pool;
use crate::util::{self, reshaped};
use crate::var::Var;

impl Var {
    /// `x·Wᵀ + b` (PyTorch's `F.linear`; `weight` is `[out, in]`).
    pub fn linear(&self, weight: &Var, bias: Option<&Var>) -> Result<Var> {
        linear(self, weight, bias, false)
    }

    /// `relu(x·Wᵀ + b)` as one op: the bias and ReLU are applied in the
    /// GEMM's store, and the backward masks the gradient once.
    pub fn linear_relu(&self, weight: &Var, bias: Option<&Var>) -> Result<Var> {
        linear(self, weight, bias, true)
    }
}

fn linear(x: &Var, w: &Var, b: Option<&Var>, relu: bool) -> Result<Var> {
    let name = if relu { "linear_relu" } else { "linear" };
    let (x, w, b) = match b {
        Some(b) => {
            let [x, w, b] = cast_inputs(name, [x, w, b])?;
            (x, w, Some(b))
        }
        None => {
            let [x, w] = cast_inputs(name, [x, w])?;
            (x, w, None)
        }
    };
    let (xs, ws) = (x.shape(), w.shape());
    if ws.len() != 2 {
        return Err(
            TensorError::BadRank { op: name, expected: "a weight of rank 2 ([out, in])", shape: ws.to_vec() }.into()
        );
    }
    let (out, inp) = (ws[0], ws[1]);
    if xs.is_empty() || xs[xs.len() - 1] != inp {
        return Err(TensorError::ShapeMismatch { op: name, lhs: xs.to_vec(), rhs: ws.to_vec() }.into());
    }
    if let Some(b) = &b
        && b.shape() != [out]
    {
        return Err(TensorError::ShapeMismatch { op: name, lhs: vec![out], rhs: b.shape().to_vec() }.into());
    }
    let dtype = b.iter().fold(x.dtype().promote(w.dtype()), |d, b| d.promote(b.dtype()));
    let xv = x.value().to_dtype(dtype)?;
    let wv = w.value().to_dtype(dtype)?;
    let bv = match &b {
        Some(b) => Some(b.value().to_dtype(dtype)?),
        None => None,
    };
    let rows = xv.numel() / inp.max(1);
    let xm = reshaped(&xv, &[rows, inp])?;
    let y = gemm_new(
        &Mat::new(&xm, Transpose::No)?,
        &Mat::new(&wv, Transpose::Yes)?,
        dtype,
        Epilogue { bias: bv.as_ref(), relu },
    )?;
    let mut y_shape = xs.to_vec();
    let last = y_shape.len() - 1;
    y_shape[last] = out;
    let y = y.reshape(&y_shape)?;
    let keep_x = w.requires_grad();
    let keep_w = x.requires_grad();
    let inputs: Vec<&Var> = [Some(&x), Some(&w), b.as_ref()].into_iter().flatten().collect();
    Ok(record(name, &inputs, y, |y| LinearBackward {
        x: keep_x.then_some(xm),
        w: keep_w.then_some(wv),
        y: relu.then(|| y.clone()),
        rows,
        dtype,
    }))
}

/// `g·1[y > 0]` into a buffer from the cache (one pass).
pub(crate) fn relu_mask(g: &Tensor, y: &Tensor) -> Result<Tensor> {
    if g.dtype() == y.dtype()
        && g.shape() == y.shape()
        && let (Some(gs), Some(ys)) = (util::src(g), util::src(y))
    {
        let mut out = pool::take(g.shape(), g.dtype())?;
        ew::unary_grad(GradOp::Relu, gs, ys, util::dst(&mut out)?);
        return Ok(out);
    }
    Ok(Tensor::unary_grad(GradOp::Relu, g, y)?)
}

struct LinearBackward {
    /// `X` as `[rows, in]` (kept if the weight needs a gradient).
    x: Option<Tensor>,
    /// `W` (kept if `x` needs a gradient).
    w: Option<Tensor>,
    /// The output (kept for `linear_relu`'s mask).
    y: Option<Tensor>,
    rows: usize,
    dtype: DType,
}

impl Backward for LinearBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let g = if g.dtype() == self.dtype { g.clone() } else { g.to_dtype(self.dtype)? };
        // G = dy·1[y > 0] for linear_relu.
        let g = match &self.y {
            Some(y) => relu_mask(&g, y)?,
            None => g,
        };
        let out = *g.shape().last().unwrap_or(&1);
        let gm = Mat::new(&reshaped(&g, &[self.rows, out])?, Transpose::No)?;
        if grads.wants(0)
            && let Some(w) = &self.w
        {
            // dX = G·W
            accumulate_product(grads, 0, &gm, &Mat::new(w, Transpose::No)?)?;
        }
        if grads.wants(1)
            && let Some(x) = &self.x
        {
            // dW = Gᵀ·X
            let gt = Mat::new(&reshaped(&g, &[self.rows, out])?, Transpose::Yes)?;
            accumulate_product(grads, 1, &gt, &Mat::new(x, Transpose::No)?)?;
        }
        if grads.wants(2) {
            // db = Σ_rows G
            grads.accumulate(2, reshaped(&g, &[self.rows, out])?.sum(0, false)?)?;
        }
        drop(gm);
        pool::give(g);
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        self.x.iter().chain(self.w.iter()).chain(self.y.iter()).collect()
    }
}
