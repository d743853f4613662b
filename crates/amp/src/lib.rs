//! Mixed-precision training policy for mixprec: precision modes, op lists,
//! FP32 master weights, loss scaling, statistics and checkpoints.
//!
//! - [`Precision`]: the modes (O0–O3 and the bf16 variants);
//!   [`autocast`]/[`autocast_guard`] run a region under a mode's op lists.
//! - [`MasterWeights`]: f16/bf16 working copies with FP32 masters.
//! - [`F16Underflow`]: how many FP32 values an f16 cast flushes to zero;
//!   [`measure_underflow`]: that count and log2 histograms for a step's
//!   activation and weight gradients.
//! - [`WithPrecision`]: a module run in another precision than its model.
//! - [`op_lists`]: the rule of every op, as data.
//! - [`GradScaler`]: loss scaling with PyTorch's API, on the state machine
//!   of [`scaler`].
//! - [`checkpoint`]: safetensors checkpoints (atomic, validated, bit-exact resume).

pub use mixprec_autograd as autograd;

pub mod checkpoint;
pub mod error;
pub mod grad_scaler;
pub mod master;
pub mod module;
pub mod op_lists;
pub mod precision;
pub mod scaler;
pub mod telemetry;
pub mod underflow;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use error::{AmpError, Result};
pub use grad_scaler::{
    AmpOptimizer, Collapse, CollapseReason, GradScaler, NonFinite, NonFiniteKind, ScalerSnapshot, StepOutcome,
};
pub use master::{MasterWeights, convert_params};
pub use module::WithPrecision;
pub use precision::{Precision, autocast, autocast_guard};
pub use telemetry::{Log2Histogram, UnderflowReport, measure_underflow};
pub use underflow::F16Underflow;
