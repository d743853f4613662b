//! Mixed-precision training policy for mixprec: precision modes, op lists,
//! FP32 master weights, loss scaling, statistics and checkpoints.

pub use mixprec_autograd as autograd;

pub mod scaler;
