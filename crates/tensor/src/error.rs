//! [`TensorError`]: every mistake a caller can make (shapes, axes, dtypes,
//! lengths) comes back as one of these, naming the op and what was wrong.

use crate::dtype::DType;

/// The result type of fallible tensor operations.
pub type Result<T> = std::result::Result<T, TensorError>;

/// What was wrong with a tensor operation's arguments.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TensorError {
    /// Two shapes that must agree (or broadcast) do not.
    #[error("{op}: shapes {lhs:?} and {rhs:?} do not match")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// The first operand's shape.
        lhs: Vec<usize>,
        /// The second operand's shape.
        rhs: Vec<usize>,
    },
    /// An axis outside `-rank..rank`.
    #[error("{op}: axis {axis} is out of range for a tensor of rank {rank}")]
    BadAxis {
        /// The operation.
        op: &'static str,
        /// The axis given.
        axis: isize,
        /// The tensor's rank.
        rank: usize,
    },
    /// The data does not have as many elements as the shape needs.
    #[error("{op}: {len} elements given, shape {shape:?} needs {expected}")]
    DataLength {
        /// The operation.
        op: &'static str,
        /// Elements given.
        len: usize,
        /// The requested shape.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
    },
    /// A tensor of another dtype was required.
    #[error("{op}: expected dtype {expected}, got {got}")]
    DTypeMismatch {
        /// The operation.
        op: &'static str,
        /// The dtype required.
        expected: DType,
        /// The dtype given.
        got: DType,
    },
    /// A view cannot be expressed over this tensor's strides; call
    /// `contiguous()` first (which copies).
    #[error(
        "{op}: a tensor of shape {shape:?} with strides {strides:?} cannot be viewed as {target:?} without a copy (call contiguous() first)"
    )]
    NotContiguous {
        /// The operation.
        op: &'static str,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// The tensor's strides.
        strides: Vec<usize>,
        /// The shape asked for.
        target: Vec<usize>,
    },
    /// A reshape to a shape with another number of elements.
    #[error("{op}: cannot reshape {from:?} ({from_numel} elements) to {to:?} ({to_numel} elements)")]
    ReshapeNumel {
        /// The operation.
        op: &'static str,
        /// The current shape.
        from: Vec<usize>,
        /// Its element count.
        from_numel: usize,
        /// The requested shape.
        to: Vec<usize>,
        /// Its element count (saturated at `usize::MAX`).
        to_numel: usize,
    },
    /// A shape whose element count or byte size overflows.
    #[error("{op}: shape {shape:?} is too large")]
    ShapeOverflow {
        /// The operation.
        op: &'static str,
        /// The shape.
        shape: Vec<usize>,
    },
    /// A shape that cannot be broadcast to the target.
    #[error("{op}: shape {from:?} cannot be broadcast to {to:?}")]
    BadBroadcast {
        /// The operation.
        op: &'static str,
        /// The tensor's shape.
        from: Vec<usize>,
        /// The target shape.
        to: Vec<usize>,
    },
    /// A permutation that is not one of `0..rank`.
    #[error("{op}: {perm:?} is not a permutation of the {rank} axes")]
    BadPermutation {
        /// The operation.
        op: &'static str,
        /// The permutation given.
        perm: Vec<usize>,
        /// The tensor's rank.
        rank: usize,
    },
    /// A range or index outside an axis.
    #[error("{op}: range {start}..{start}+{len} is outside axis {axis} of size {size}")]
    BadRange {
        /// The operation.
        op: &'static str,
        /// The axis (normalised).
        axis: usize,
        /// The first index.
        start: usize,
        /// The number of indices.
        len: usize,
        /// The axis size.
        size: usize,
    },
    /// A squeeze of an axis whose size is not 1.
    #[error("{op}: axis {axis} of shape {shape:?} has size {size}, not 1")]
    NotSingleton {
        /// The operation.
        op: &'static str,
        /// The axis (normalised).
        axis: usize,
        /// The shape.
        shape: Vec<usize>,
        /// The axis size.
        size: usize,
    },
    /// A tensor of the wrong rank.
    #[error("{op}: expected {expected}, got a tensor of shape {shape:?}")]
    BadRank {
        /// The operation.
        op: &'static str,
        /// What was required, in words (e.g. "rank 2 or 3").
        expected: &'static str,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// A reduction with no identity over an empty axis (max, min, argmax).
    #[error("{op}: cannot reduce an empty axis {axis} of shape {shape:?}")]
    EmptyReduction {
        /// The operation.
        op: &'static str,
        /// The axis (normalised).
        axis: usize,
        /// The shape.
        shape: Vec<usize>,
    },
    /// A view that reaches past the end of its storage.
    #[error(
        "{op}: shape {shape:?} with strides {strides:?} at offset {offset} needs {needed} elements, the storage holds {len}"
    )]
    OutOfStorage {
        /// The operation.
        op: &'static str,
        /// The shape asked for.
        shape: Vec<usize>,
        /// The strides asked for.
        strides: Vec<usize>,
        /// The storage offset asked for.
        offset: usize,
        /// Elements the view needs (one past its last index).
        needed: usize,
        /// Elements the storage holds.
        len: usize,
    },
    /// An argument outside its domain (e.g. a zero `arange` step, an empty list).
    #[error("{op}: {reason}")]
    BadArgument {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
}
