//! Unary math (`exp log sqrt tanh sigmoid relu gelu …`) and the
//! derivatives autograd applies to incoming gradients. The result keeps the
//! input's dtype; f16/bf16 compute in FP32 with one rounding.

use mixprec_kernels::ew::{self, GradOp, UnaryOp};
use mixprec_kernels::slice::Src;

use crate::error::{Result, TensorError};
use crate::ops::Scratch;
use crate::storage::Storage;
use crate::tensor::Tensor;

impl Tensor {
    /// Rows of this tensor as kernel slices (one slice when contiguous).
    fn for_each_row(&self, mut f: impl FnMut(Src<'_>, usize)) {
        if let Some(src) = self.contiguous_src() {
            f(src, 0);
            return;
        }
        let l = &self.layout;
        let rows = crate::layout::Rows::new(l.shape(), [l.strides()], [l.offset()]);
        let (n, stride) = (rows.n, rows.inner[0]);
        let all = self.storage.src_all();
        let mut scratch = Scratch::default();
        for (r, [off]) in rows.enumerate() {
            if stride == 1 {
                f(all.slice(off, off + n), r * n);
            } else {
                f(scratch.gather(all, off, stride, n), r * n);
            }
        }
    }

    /// `f(self)` elementwise.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let mut out = Storage::zeros(self.dtype(), self.numel());
        let mut dst = out.dst_all();
        self.for_each_row(|src, at| {
            let len = src.len();
            ew::unary(op, src, dst.slice(at, at + len));
        });
        Ok(Tensor::from_storage(out, self.shape()))
    }

    /// `f(self)` in place (copy-on-write).
    pub fn unary_(&mut self, op: UnaryOp) {
        // The kernel reads and writes different slices, so the input is the
        // current buffer and the output a fresh one unless this is the sole
        // owner; then one row of scratch at a time keeps it in place.
        let n = self.numel();
        let storage = self.make_unique();
        let mut dst = storage.dst_all();
        let mut start = 0;
        let mut tmp = Scratch::default();
        while start < n {
            let len = mixprec_kernels::slice::CHUNK.min(n - start);
            let row = tmp.gather(dst.as_src(), start, 1, len);
            ew::unary(op, row, dst.slice(start, start + len));
            start += len;
        }
    }

    /// `g · f'(saved)` elementwise, where `saved` is the forward input or
    /// output as [`GradOp`] says; `g` and `saved` must have one shape. The
    /// result has `g`'s dtype.
    pub fn unary_grad(op: GradOp, g: &Tensor, saved: &Tensor) -> Result<Tensor> {
        if g.shape() != saved.shape() {
            return Err(TensorError::ShapeMismatch {
                op: "unary_grad",
                lhs: g.shape().to_vec(),
                rhs: saved.shape().to_vec(),
            });
        }
        let (g, s) = (g.contiguous(), saved.contiguous());
        let mut out = Storage::zeros(g.dtype(), g.numel());
        if let (Some(gs), Some(ss)) = (g.contiguous_src(), s.contiguous_src()) {
            ew::unary_grad(op, gs, ss, out.dst_all());
        }
        Ok(Tensor::from_storage(out, g.shape()))
    }

    /// `−x`.
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }

    /// `|x|`.
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }

    /// `eˣ`.
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }

    /// `ln x`.
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }

    /// `√x`.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }

    /// `1/√x`.
    pub fn rsqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Rsqrt)
    }

    /// `1/x`.
    pub fn reciprocal(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }

    /// `x²`.
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }

    /// `tanh x`.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }

    /// `1 / (1 + e⁻ˣ)`.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }

    /// GELU, erf form (PyTorch's default `gelu`).
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluErf)
    }

    /// GELU, tanh approximation (PyTorch's `gelu(approximate="tanh")`).
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluTanh)
    }
}
