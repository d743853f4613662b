//! Binary arithmetic, comparisons and `select` with NumPy broadcasting and
//! PyTorch's type promotion ([`DType::promote`]); in-place forms that copy
//! on write. f16/bf16 arithmetic is FP32 with one rounding to the result.

use mixprec_kernels::ew::{self, BinaryOp, Operand};

use crate::dtype::DType;
use crate::error::{Result, TensorError};
use crate::layout::{broadcast_shapes, validate_shape};
use crate::ops::elementwise;
use crate::storage::Storage;
use crate::tensor::Tensor;

impl Tensor {
    /// `self op other` with broadcasting; the result has the promoted dtype
    /// (comparisons too: 1 for true, 0 for false).
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        let name = op.name();
        let shape = broadcast_shapes(name, self.shape(), other.shape())?;
        let numel = validate_shape(name, &shape)?;
        let mut out = Storage::zeros(self.dtype().promote(other.dtype()), numel);
        elementwise(name, &shape, [self, other], &mut out.dst_all(), |rows, n, [a, b], dst| {
            ew::binary(op, rows, n, a, b, dst)
        })?;
        Ok(Tensor::from_storage(out, &shape))
    }

    /// `self op s` for a scalar `s` (rounded to the compute type first);
    /// the result keeps this tensor's dtype, as PyTorch does for Python scalars.
    pub fn binary_scalar(&self, op: BinaryOp, s: f64) -> Result<Tensor> {
        let mut out = Storage::zeros(self.dtype(), self.numel());
        elementwise(op.name(), self.shape(), [self], &mut out.dst_all(), |rows, n, [a], dst| {
            ew::binary(op, rows, n, a, Operand::Scalar(s), dst)
        })?;
        Ok(Tensor::from_storage(out, self.shape()))
    }

    /// `s op self` for a scalar `s` (e.g. `1 − x`, `1 / x`).
    pub fn scalar_binary(&self, s: f64, op: BinaryOp) -> Result<Tensor> {
        let mut out = Storage::zeros(self.dtype(), self.numel());
        elementwise(op.name(), self.shape(), [self], &mut out.dst_all(), |rows, n, [a], dst| {
            ew::binary(op, rows, n, Operand::Scalar(s), a, dst)
        })?;
        Ok(Tensor::from_storage(out, self.shape()))
    }

    /// `self = self op other` in place (`other` broadcast to this shape; the
    /// result rounded once to this dtype). Copies first if the storage is
    /// shared or this is a strided view (copy-on-write).
    pub fn binary_(&mut self, op: BinaryOp, other: &Tensor) -> Result<()> {
        let name = op.name();
        let shape = broadcast_shapes(name, self.shape(), other.shape())?;
        if shape != self.shape() {
            return Err(TensorError::ShapeMismatch {
                op: name,
                lhs: self.shape().to_vec(),
                rhs: other.shape().to_vec(),
            });
        }
        let shape = shape.to_vec();
        let storage = self.make_unique();
        elementwise(name, &shape, [other], &mut storage.dst_all(), |rows, n, [b], dst| {
            ew::binary_assign(op, rows, n, dst, b)
        })
    }

    /// `self = self op s` in place.
    pub fn binary_scalar_(&mut self, op: BinaryOp, s: f64) {
        let n = self.numel();
        ew::binary_assign(op, 1, n, self.make_unique().dst_all(), Operand::Scalar(s));
    }

    /// `self + other` (broadcasting, promotion).
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, other)
    }

    /// `self − other`.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, other)
    }

    /// `self × other` (elementwise).
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, other)
    }

    /// `self ÷ other`.
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, other)
    }

    /// Elementwise maximum (NaN-propagating).
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Maximum, other)
    }

    /// Elementwise minimum (NaN-propagating).
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Minimum, other)
    }

    /// `self ^ other` elementwise.
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Pow, other)
    }

    /// `self == other` as 0/1.
    pub fn eq(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Eq, other)
    }

    /// `self != other` as 0/1.
    pub fn ne(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Ne, other)
    }

    /// `self < other` as 0/1.
    pub fn lt(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Lt, other)
    }

    /// `self <= other` as 0/1.
    pub fn le(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Le, other)
    }

    /// `self > other` as 0/1.
    pub fn gt(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Gt, other)
    }

    /// `self >= other` as 0/1.
    pub fn ge(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Ge, other)
    }

    /// `self + s`.
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Add, s)
    }

    /// `self − s`.
    pub fn sub_scalar(&self, s: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Sub, s)
    }

    /// `self × s`.
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Mul, s)
    }

    /// `self ÷ s`.
    pub fn div_scalar(&self, s: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Div, s)
    }

    /// `self ^ p`.
    pub fn pow_scalar(&self, p: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Pow, p)
    }

    /// `min(max(self, lo), hi)` (NaN stays NaN).
    pub fn clamp(&self, lo: f64, hi: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Maximum, lo)?.binary_scalar(BinaryOp::Minimum, hi)
    }

    /// `self += other` in place (broadcast to this shape, copy-on-write).
    pub fn add_(&mut self, other: &Tensor) -> Result<()> {
        self.binary_(BinaryOp::Add, other)
    }

    /// `self −= other` in place.
    pub fn sub_(&mut self, other: &Tensor) -> Result<()> {
        self.binary_(BinaryOp::Sub, other)
    }

    /// `self ×= other` in place.
    pub fn mul_(&mut self, other: &Tensor) -> Result<()> {
        self.binary_(BinaryOp::Mul, other)
    }

    /// `self ÷= other` in place.
    pub fn div_(&mut self, other: &Tensor) -> Result<()> {
        self.binary_(BinaryOp::Div, other)
    }

    /// `self ×= s` in place.
    pub fn mul_scalar_(&mut self, s: f64) {
        self.binary_scalar_(BinaryOp::Mul, s)
    }

    /// `self += s` in place.
    pub fn add_scalar_(&mut self, s: f64) {
        self.binary_scalar_(BinaryOp::Add, s)
    }

    /// Copies `src` (broadcast to this shape, converted once to this dtype)
    /// into this tensor (copy-on-write).
    pub fn copy_(&mut self, src: &Tensor) -> Result<()> {
        let shape = self.shape().to_vec();
        let src = src.broadcast_to(&shape)?;
        let storage = self.make_unique();
        src.copy_into(&mut storage.dst_all());
        Ok(())
    }

    /// PyTorch's `where`: `cond != 0 ? a : b` elementwise, all three
    /// broadcast together (NaN in `cond` counts as true). The result has the
    /// promoted dtype of `a` and `b`.
    pub fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let shape = broadcast_shapes("select", cond.shape(), a.shape())?;
        let shape = broadcast_shapes("select", &shape, b.shape())?;
        let numel = validate_shape("select", &shape)?;
        let mut out = Storage::zeros(a.dtype().promote(b.dtype()), numel);
        elementwise("select", &shape, [cond, a, b], &mut out.dst_all(), |rows, n, [c, x, y], dst| {
            ew::select(rows, n, c, x, y, dst)
        })?;
        Ok(Tensor::from_storage(out, &shape))
    }

    /// The result dtype of a binary op between these tensors.
    pub fn result_dtype(&self, other: &Tensor) -> DType {
        self.dtype().promote(other.dtype())
    }
}
