//! [`AutogradError`]: tensor errors from an op's arguments, and the mistakes
//! only a graph can make (a second backward through freed saved tensors, a
//! non-scalar root without a seed gradient).

use mixprec_tensor::{DType, TensorError};

/// The result type of differentiable ops, `backward` and the optimizers.
pub type Result<T> = std::result::Result<T, AutogradError>;

/// What went wrong in an op, a backward pass or an optimizer.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AutogradError {
    /// An op's arguments were wrong (shapes, axes, dtypes, values).
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// `backward` reached a node whose saved tensors were freed by an earlier
    /// backward pass; pass `retain_graph` to the first one to run twice.
    #[error(
        "backward through `{op}` a second time: its saved tensors were freed by the first backward (use retain_graph)"
    )]
    GraphFreed {
        /// The op whose saved tensors are gone.
        op: &'static str,
    },
    /// `backward` on a tensor with more than one element and no seed gradient.
    #[error(
        "backward on a tensor of shape {shape:?} needs a seed gradient (only a one-element tensor has an implicit one)"
    )]
    NonScalarRoot {
        /// The root's shape.
        shape: Vec<usize>,
    },
    /// A seed gradient whose shape is not the root's.
    #[error("backward: the seed gradient has shape {got:?}, the root has shape {expected:?}")]
    SeedShape {
        /// The root's shape.
        expected: Vec<usize>,
        /// The seed's shape.
        got: Vec<usize>,
    },
    /// `backward` on a value that does not require a gradient (a constant,
    /// a detached value, or one computed under `no_grad`).
    #[error("backward on a value that does not require a gradient (constant, detached or computed under no_grad)")]
    NoGraph,
    /// An op, layer or optimizer got an argument outside its domain.
    #[error("{op}: {reason}")]
    BadArgument {
        /// The op, layer or optimizer.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A floating-point dtype where only some are supported.
    #[error("{op}: dtype {dtype} is not supported here ({reason})")]
    UnsupportedDType {
        /// The op.
        op: &'static str,
        /// The dtype given.
        dtype: DType,
        /// Why.
        reason: &'static str,
    },
    /// A class index outside `0..classes` (cross_entropy, nll_loss).
    #[error("{op}: target {target} at position {position} is outside 0..{classes}")]
    BadTarget {
        /// The op.
        op: &'static str,
        /// Position in the flattened targets.
        position: usize,
        /// The index given.
        target: i64,
        /// The number of classes.
        classes: usize,
    },
}

impl AutogradError {
    pub(crate) fn bad(op: &'static str, reason: impl Into<String>) -> AutogradError {
        AutogradError::BadArgument { op, reason: reason.into() }
    }
}
