//! Mixed-precision training policy for mixprec: precision modes, op lists,
//! FP32 master weights, loss scaling, statistics and checkpoints.
//!
//! - [`Precision`]: the modes (O0–O3 and the bf16 variants);
//!   [`autocast`]/[`autocast_guard`] run a region under a mode's op lists.
//! - [`op_lists`]: the rule of every op, as data.
//! - [`scaler`]: the loss-scale state machine (PyTorch `GradScaler`'s).

pub use mixprec_autograd as autograd;

pub mod error;
pub mod op_lists;
pub mod precision;
pub mod scaler;

pub use error::{AmpError, Result};
pub use precision::{Precision, autocast, autocast_guard};
