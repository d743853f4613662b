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
    /// `unscale` a second time for one optimizer in one step.
    #[error("unscale was already called for this optimizer since the last update")]
    AlreadyUnscaled,
    /// `unscale` after `step` for one optimizer in one step.
    #[error("unscale is being called after step for this optimizer; call update first")]
    UnscaleAfterStep,
    /// `step` a second time for one optimizer in one step.
    #[error("step was already called for this optimizer since the last update")]
    AlreadyStepped,
    /// `update` with no optimizer unscaled or stepped since the last one.
    #[error("update without any unscale or step since the last update: no Inf/NaN check was recorded")]
    NothingToUpdate,
    /// Loss-scaler settings outside their domain.
    #[error(
        "invalid loss-scaler settings {config:?}: the scale must be finite and positive, growth > 1, backoff in (0, 1), interval > 0, the floor finite and ≥ 0; statistics: headroom ≥ 1, peak decay in [0, 1], overflow backoff in (0, 1)"
    )]
    BadScalerConfig {
        /// The settings.
        config: crate::scaler::ScalerConfig,
    },
    /// A scaler state no run can reach (restored from a corrupt snapshot).
    #[error(
        "invalid loss-scaler state {state:?}: the scale must be finite and not negative, the growth tracker below the growth interval {growth_interval}, the peak finite and not negative and the peak ratio finite and at least 1"
    )]
    BadScalerState {
        /// The state given.
        state: crate::scaler::ScaleState,
        /// The settings' growth interval.
        growth_interval: u32,
    },
    /// The scaler was asked to unscale a gradient stored in f16/bf16.
    #[error(
        "parameter {param} has a {dtype} gradient: unscaling in low precision would underflow; keep FP32 master weights (Precision::MasterWeights)"
    )]
    LowPrecisionGradient {
        /// Its index in the optimizer's parameter list.
        param: usize,
        /// Its dtype.
        dtype: mixprec_autograd::tensor::DType,
    },
    /// A value given where a parameter was expected.
    #[error("`{name}` is not a parameter")]
    NotAParameter {
        /// Its path.
        name: String,
    },
    /// Master weights are made from FP32 parameters.
    #[error("parameter `{name}` is {dtype}: master weights are made from an FP32 model")]
    NotFp32 {
        /// Its path.
        name: String,
        /// Its dtype.
        dtype: mixprec_autograd::tensor::DType,
    },
    /// Working copies are f16 or bf16.
    #[error("working copies must be f16 or bf16, not {dtype}")]
    BadWorkingDType {
        /// What was asked for.
        dtype: mixprec_autograd::tensor::DType,
    },
    /// The loss scale collapsed (floor or consecutive-skip limit reached):
    /// training should stop. The diagnosis names the first non-finite op.
    #[error("{0}")]
    ScaleCollapsed(Box<crate::grad_scaler::Collapse>),
    /// A learning-rate schedule was given an optimizer without a learning rate.
    #[error("this optimizer has no learning rate to schedule (implement AmpOptimizer::amp_set_lr)")]
    NoLearningRate,
    /// Saving, loading or restoring a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// An error from the autograd layer.
    #[error(transparent)]
    Autograd(#[from] AutogradError),
}

impl From<mixprec_autograd::tensor::TensorError> for AmpError {
    fn from(e: mixprec_autograd::tensor::TensorError) -> AmpError {
        AmpError::Autograd(e.into())
    }
}

/// amp's result type.
pub type Result<T, E = AmpError> = std::result::Result<T, E>;
