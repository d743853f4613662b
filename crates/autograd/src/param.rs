//! [`Param`]: a leaf that requires a gradient. Its value and gradient live in
//! one shared cell, so the module that owns it, the optimizer that updates it
//! and the user who reads `w.grad()` all see the same parameter.
//!
//! Gradients accumulate across backward passes until [`Param::zero_grad`]. A
//! version counter goes up on every write of the value (the autocast cast
//! cache keys on it). The value's shape is fixed at creation; its dtype
//! changes only through [`Param::convert_dtype`] (a model cast to f16).
//!
//! A normalisation layer marks its parameters ([`Param::set_norm`]) when it
//! creates them, so mixed-precision policy (keep norm layers in FP32, as
//! Apex's `keep_batchnorm_fp32`) finds them whatever the model calls them.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use mixprec_tensor::{DType, Tensor};

use crate::error::{AutogradError, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

const DTYPES: [DType; 4] = [DType::F64, DType::F32, DType::F16, DType::BF16];

fn dtype_index(d: DType) -> u8 {
    DTYPES.iter().position(|&x| x == d).unwrap_or(1) as u8
}

/// A trainable leaf: value, gradient, identity and version.
#[derive(Debug)]
pub struct Param {
    id: u64,
    shape: Vec<usize>,
    /// Index into [`DTYPES`]: atomic so `dtype()` needs no lock.
    dtype: AtomicU8,
    requires_grad: AtomicBool,
    norm: AtomicBool,
    version: AtomicU64,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    value: Tensor,
    grad: Option<Tensor>,
    /// The buffer of the last gradient cleared by `zero_grad`, reused by the
    /// next backward that writes the gradient whole (GEMM with beta = 0), so
    /// a training loop neither allocates nor zeroes gradient buffers.
    spare: Option<Tensor>,
}

/// How a backward pass writes a gradient buffer.
#[derive(Debug)]
pub enum GradBuffer<'a> {
    /// No gradient yet: the buffer (contiguous, the input's shape and dtype)
    /// holds unspecified values and must be overwritten (GEMM `beta = 0`).
    Fresh(&'a mut Tensor),
    /// A gradient is already there: add to it (GEMM `beta = 1`).
    Existing(&'a mut Tensor),
}

impl GradBuffer<'_> {
    /// The GEMM `beta` that writes into this buffer: 0 (overwrite) or 1 (add).
    pub fn beta(&self) -> f32 {
        match self {
            GradBuffer::Fresh(_) => 0.0,
            GradBuffer::Existing(_) => 1.0,
        }
    }

    /// The buffer.
    pub fn tensor(&mut self) -> &mut Tensor {
        match self {
            GradBuffer::Fresh(t) | GradBuffer::Existing(t) => t,
        }
    }
}

impl Param {
    /// A new parameter holding `value` (made contiguous), requiring a gradient.
    pub fn new(value: Tensor) -> Param {
        let value = value.contiguous();
        Param {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape: value.shape().to_vec(),
            dtype: AtomicU8::new(dtype_index(value.dtype())),
            requires_grad: AtomicBool::new(true),
            norm: AtomicBool::new(false),
            version: AtomicU64::new(0),
            state: RwLock::new(State { value, grad: None, spare: None }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A process-unique identity (never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The value's shape (fixed).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The value's dtype.
    pub fn dtype(&self) -> DType {
        DTYPES[self.dtype.load(Ordering::Acquire) as usize]
    }

    /// Converts the value to `dtype` in place (rounding once), as PyTorch's
    /// `module.half()` does to each parameter: every handle sees the new
    /// dtype. The gradient and its spare buffer are dropped and the version
    /// goes up. Graphs recorded before the conversion must not be
    /// backpropagated afterwards (their gradients have the old dtype).
    pub fn convert_dtype(&self, dtype: DType) -> Result<()> {
        let mut s = self.write();
        if s.value.dtype() == dtype {
            return Ok(());
        }
        s.value = s.value.to_dtype(dtype)?.contiguous();
        s.grad = None;
        s.spare = None;
        self.dtype.store(dtype_index(dtype), Ordering::Release);
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// How many times the value has been written since creation.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Whether backward computes a gradient for this parameter.
    pub fn requires_grad(&self) -> bool {
        self.requires_grad.load(Ordering::Relaxed)
    }

    /// Freezes (`false`) or unfreezes the parameter. A frozen parameter is
    /// a constant to the ops recorded from then on.
    pub fn set_requires_grad(&self, requires_grad: bool) {
        self.requires_grad.store(requires_grad, Ordering::Relaxed);
    }

    /// Whether this is a normalisation layer's parameter (batch or layer
    /// norm's γ and β): set by the layer that owns it.
    pub fn is_norm(&self) -> bool {
        self.norm.load(Ordering::Relaxed)
    }

    /// Declares (or undeclares) this a normalisation layer's parameter; a
    /// user-defined norm layer calls it on its parameters when it makes them.
    pub fn set_norm(&self, norm: bool) {
        self.norm.store(norm, Ordering::Relaxed);
    }

    /// Runs `f` on the value without copying its handle (no allocation).
    pub fn with_value<R>(&self, f: impl FnOnce(&Tensor) -> R) -> R {
        f(&self.read().value)
    }

    /// Runs `f` on the gradient, if any, without copying its handle.
    pub fn with_grad<R>(&self, f: impl FnOnce(Option<&Tensor>) -> R) -> R {
        f(self.read().grad.as_ref())
    }

    /// The current value (a cheap handle to the shared storage).
    pub fn value(&self) -> Tensor {
        self.read().value.clone()
    }

    /// The accumulated gradient, if any backward reached this parameter
    /// since the last [`Param::zero_grad`].
    pub fn grad(&self) -> Option<Tensor> {
        self.read().grad.clone()
    }

    /// Whether the parameter has a gradient.
    pub fn has_grad(&self) -> bool {
        self.read().grad.is_some()
    }

    /// Clears the gradient (as PyTorch's `zero_grad(set_to_none=True)`): the
    /// next backward writes a fresh one. The buffer is kept for that write.
    pub fn zero_grad(&self) {
        let mut s = self.write();
        if let Some(g) = s.grad.take() {
            s.spare = Some(g);
        }
    }

    /// Replaces the gradient (`None` clears it). The shape and dtype must be
    /// the parameter's.
    pub fn set_grad(&self, grad: Option<Tensor>) -> Result<()> {
        if let Some(g) = &grad {
            self.check("set_grad", g)?;
        }
        self.write().grad = grad.map(|g| g.contiguous());
        Ok(())
    }

    /// Replaces the value (same shape and dtype) and bumps the version.
    pub fn set_value(&self, value: Tensor) -> Result<()> {
        self.check("set_value", &value)?;
        self.write().value = value.contiguous();
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Runs `f` on the value (mutably, for an in-place update) and the
    /// gradient, then bumps the version: the optimizers' entry point. The
    /// value is written in place unless a saved tensor still shares it (then
    /// copy-on-write keeps the saved copy intact). `f` must keep the value's
    /// shape and dtype.
    pub fn update<R>(&self, f: impl FnOnce(&mut Tensor, Option<&Tensor>) -> R) -> R {
        let mut guard = self.write();
        let s = &mut *guard;
        let r = f(&mut s.value, s.grad.as_ref());
        debug_assert!(s.value.shape() == self.shape.as_slice() && s.value.dtype() == self.dtype());
        self.version.fetch_add(1, Ordering::AcqRel);
        r
    }

    /// Runs `f` on the gradient mutably (clipping, unscaling); `None` if
    /// there is no gradient. The value and version are untouched.
    pub fn update_grad<R>(&self, f: impl FnOnce(&mut Tensor) -> R) -> Option<R> {
        self.write().grad.as_mut().map(f)
    }

    fn check(&self, op: &'static str, t: &Tensor) -> Result<()> {
        if t.shape() != self.shape.as_slice() || t.dtype() != self.dtype() {
            return Err(AutogradError::bad(
                op,
                format!(
                    "a {} tensor of shape {:?} for a {} parameter of shape {:?}",
                    t.dtype(),
                    t.shape(),
                    self.dtype(),
                    self.shape
                ),
            ));
        }
        Ok(())
    }

    /// Adds `g` (the parameter's shape and dtype, checked by the caller) to
    /// the gradient, or makes it the gradient if there is none (no copy).
    pub(crate) fn accumulate(&self, g: Tensor, add: impl FnOnce(&mut Tensor, &Tensor) -> Result<()>) -> Result<()> {
        let mut s = self.write();
        match s.grad.as_mut() {
            Some(acc) => add(acc, &g),
            None => {
                s.grad = Some(g.contiguous());
                Ok(())
            }
        }
    }

    /// Gives `f` the gradient buffer to write into: the existing gradient, or
    /// a fresh buffer (the spare one, else a new one) that `f` must
    /// overwrite. If `f` fails on a fresh buffer, the parameter keeps no
    /// gradient. Once a spare exists, no allocation.
    pub fn with_grad_buffer<R>(&self, f: impl FnOnce(GradBuffer<'_>) -> Result<R>) -> Result<R> {
        let mut guard = self.write();
        let s = &mut *guard;
        if let Some(g) = s.grad.as_mut() {
            return f(GradBuffer::Existing(g));
        }
        let mut buf = match s.spare.take() {
            Some(t) => t,
            None => Tensor::zeros(&self.shape, self.dtype())?,
        };
        let r = f(GradBuffer::Fresh(&mut buf))?;
        s.grad = Some(buf);
        Ok(r)
    }
}
