//! Tape-based reverse-mode automatic differentiation for mixprec, the autocast
//! mechanism every op consults, `nn` layers and optimizers.
//!
//! Model code reads like PyTorch:
//!
//! ```
//! use mixprec_autograd::{Var, tensor::Tensor};
//! let x = Var::new(Tensor::from_vec(vec![1.0f32, -2.0, 3.0, 4.0], &[2, 2])?);
//! let w = Var::parameter(Tensor::from_vec(vec![0.5f32, -1.0, 1.5, 2.0], &[2, 2])?);
//! let b = Var::parameter(Tensor::from_vec(vec![0.1f32, 0.2], &[2])?);
//! let h = x.matmul(&w)?.add(&b)?.relu()?;
//! let loss = h.sum_all()?;
//! loss.backward()?;
//! assert!(w.grad().is_some() && b.grad().is_some());
//! # Ok::<(), mixprec_autograd::AutogradError>(())
//! ```
//!
//! - [`Var`]: a value and (if it requires a gradient) its tape node or
//!   parameter cell; ops are methods on it, in `ops/` (one file per op or
//!   family, forward and backward side by side).
//! - [`graph`]: the tape ([`graph::record`], [`graph::Backward`]);
//!   [`Var::backward`] walks it in reverse ([`engine`]).
//! - [`autocast`]: the scoped precision context; [`scan`]: name scopes and
//!   the non-finite scan; [`saved`]: bytes saved for backward.
//! - [`nn`], [`optim`], [`gradcheck`].

pub mod autocast;
pub mod engine;
pub mod error;
pub mod gradcheck;
pub mod graph;
pub mod mode;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod param;
pub mod pool;
pub mod registry;
pub mod saved;
pub mod scan;
mod util;
pub mod var;

pub use engine::BackwardOptions;
pub use error::{AutogradError, Result};
pub use mixprec_tensor as tensor;
pub use mode::{enable_grad, is_grad_enabled, no_grad};
pub use ops::{CrossEntropy, Reduction};
pub use param::Param;
pub use var::Var;
