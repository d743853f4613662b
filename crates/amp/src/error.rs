//! [`AmpError`]: what can go wrong in amp, with the fields that say what.

use mixprec_autograd::AutogradError;

/// amp's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmpError {
    /// A precision token that names no mode.
    #[error(
        "unknown precision {token:?}: expected f32, autocast, master-weights, pure-f16, autocast-bf16, master-weights-bf16 (or O0-O3)"
    )]
    UnknownPrecision {
        /// What was given.
        token: String,
    },
    /// An error from the autograd layer.
    #[error(transparent)]
    Autograd(#[from] AutogradError),
}

/// amp's result type.
pub type Result<T, E = AmpError> = std::result::Result<T, E>;
