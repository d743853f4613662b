//! [`CheckpointError`]: what can be wrong with a checkpoint file or with
//! restoring one, naming the tensor or metadata key and the mismatch. It is
//! its own type (wrapped by `AmpError::Checkpoint`) so the byte-level
//! loader, a fuzz target, depends on nothing else.

use std::path::{Path, PathBuf};

use crate::precision::Precision;

/// What went wrong saving, loading or restoring a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `fsync`, `rename`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file ends before the data its header describes.
    #[error("checkpoint truncated: {found} bytes, its header describes at least {expected}")]
    Truncated {
        /// Bytes the header describes (at least).
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The safetensors header cannot be parsed or is inconsistent.
    #[error("checkpoint header is damaged or not safetensors: {reason}")]
    Header {
        /// What is wrong.
        reason: String,
    },
    /// A valid safetensors file that is not a mixprec checkpoint.
    #[error("not a mixprec checkpoint: metadata `format` is {found:?}, expected \"mixprec-checkpoint\"")]
    NotACheckpoint {
        /// The `format` metadata value, if any.
        found: Option<String>,
    },
    /// A checkpoint of a layout version this build does not read.
    #[error("checkpoint format version {found:?} is not supported: this build reads version {supported}")]
    FormatVersion {
        /// The version in the file.
        found: String,
        /// The version this build reads.
        supported: u32,
    },
    /// A metadata value is missing or malformed.
    #[error("checkpoint metadata `{key}`: {reason}")]
    Metadata {
        /// The metadata key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Bytes changed since the checkpoint was written: a digest mismatch.
    #[error("checkpoint corrupted: the contents of {part} do not match the SHA-256 digest saved with them")]
    Corrupted {
        /// `tensor \`name\`` or `the header`.
        part: String,
    },
    /// A tensor the model or the metadata needs is absent.
    #[error("tensor `{tensor}` is missing from the checkpoint")]
    Missing {
        /// The tensor's name in the file.
        tensor: String,
    },
    /// A tensor nothing in the model or the metadata accounts for.
    #[error("tensor `{tensor}` in the checkpoint belongs to nothing in this model")]
    Unexpected {
        /// The tensor's name in the file.
        tensor: String,
    },
    /// A tensor of the wrong shape.
    #[error("tensor `{tensor}` has shape {found:?} in the checkpoint, expected {expected:?}")]
    Shape {
        /// The tensor's name in the file.
        tensor: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor of the wrong dtype.
    #[error("tensor `{tensor}` is {found} in the checkpoint, expected {expected}")]
    DType {
        /// The tensor's name in the file.
        tensor: String,
        /// The dtype the model needs.
        expected: String,
        /// The dtype in the file.
        found: String,
    },
    /// The checkpoint belongs to another model.
    #[error("the checkpoint is of model `{found}`, not `{expected}`")]
    OtherModel {
        /// The model being restored.
        expected: String,
        /// The model in the file.
        found: String,
    },
    /// The checkpoint was written by a run in another precision mode.
    #[error("the checkpoint was trained in precision {found}, the run uses {expected}")]
    Precision {
        /// The run's mode.
        expected: Precision,
        /// The file's mode.
        found: Precision,
    },
    /// The checkpoint holds another optimizer's state (or none).
    #[error("the checkpoint holds {found} optimizer state, the run uses {expected}")]
    Optimizer {
        /// The run's optimizer.
        expected: String,
        /// The file's optimizer.
        found: String,
    },
    /// A value that cannot be restored (a scaler state out of its domain,
    /// a parameter the model does not own, …).
    #[error("{what} is invalid: {reason}")]
    Invalid {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
}

impl CheckpointError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        CheckpointError::Io { op, path: path.to_path_buf(), source }
    }

    pub(crate) fn metadata(key: &str, reason: impl Into<String>) -> Self {
        CheckpointError::Metadata { key: key.to_string(), reason: reason.into() }
    }
}
