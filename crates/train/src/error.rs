//! [`ExampleError`]: everything a training example can fail with, each
//! naming what was wrong (a flag, a file, a layer's error).

use std::path::PathBuf;

/// What went wrong in an example run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExampleError {
    /// A flag's value is not valid (clap has checked the syntax; this is the
    /// meaning: `--loss-scale static:0`, `--batch-size 0`, …).
    #[error("invalid value {value:?} for {flag}: {reason}")]
    InvalidFlag {
        /// The flag, with its dashes.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Reading a data set failed (the error names the file).
    #[error("data: {0}")]
    Data(#[from] mixprec::data::DataError),
    /// The mixed-precision machinery refused an operation.
    #[error("amp: {0}")]
    Amp(#[from] mixprec::amp::AmpError),
    /// A tensor operation failed.
    #[error("autograd: {0}")]
    Autograd(#[from] mixprec::autograd::AutogradError),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] mixprec::tensor::TensorError),
    /// The training loss became NaN or infinite and stayed so: the scale
    /// kept falling (dynamic scaling) or there is none to lower.
    #[error("the training loss is {loss} at step {step} ({precision}, loss scale {scale}); training cannot continue")]
    Diverged {
        /// The global step (0-based).
        step: usize,
        /// The loss seen.
        loss: f64,
        /// The precision mode.
        precision: String,
        /// The loss scale at that step.
        scale: f32,
    },
    /// Writing an output file failed.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The file.
        path: PathBuf,
        /// What the writer reported.
        reason: String,
    },
    /// Saving, loading or restoring a checkpoint failed (`--save`,
    /// `--resume`): the error names the file, tensor or metadata key and
    /// the mismatch (another model, another precision mode, …).
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] mixprec::amp::CheckpointError),
    /// `--resume` with a flag that defines the run (batch size, learning
    /// rate, schedule, …) different from the run that wrote the checkpoint.
    #[error(
        "--resume: the checkpoint's run used {flag} {checkpoint}, this run {flag} {run}; resume with the same value"
    )]
    ResumeMismatch {
        /// The flag, with its dashes.
        flag: &'static str,
        /// The value the checkpoint's run used.
        checkpoint: String,
        /// The value given now.
        run: String,
    },
    /// The thread pool could not be built.
    #[error("cannot start {threads} threads: {reason}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// What rayon reported.
        reason: String,
    },
}

/// `Result` with [`ExampleError`].
pub type Result<T, E = ExampleError> = std::result::Result<T, E>;
