//! [`Precision`]: the training modes users know from Apex (O0–O3) and their
//! BF16 variants, one enum so one line switches a training script; and the
//! scopes that run a region under a mode's op lists ([`autocast`],
//! [`autocast_guard`]), nestable so a layer can be forced to another
//! precision inside a mixed-precision model.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use mixprec_autograd::autocast::{AutocastGuard, CastPolicy};
use mixprec_autograd::tensor::DType;

use crate::error::AmpError;
use crate::op_lists;

/// A training precision mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// O0: everything in FP32 — the accuracy baseline.
    F32,
    /// O1: FP32 parameters; each op runs in the dtype the op lists give it
    /// (GEMMs in f16), each parameter cast once per step.
    Autocast,
    /// O2, the paper's recipe: f16 working copies of the parameters, FP32
    /// masters the optimizer updates, loss scaling; norm layers stay FP32.
    MasterWeights,
    /// O3: f16 parameters updated directly, no masters, no scaling — the
    /// baseline that shows why the others exist.
    PureF16,
    /// O1 with bf16: FP32's exponent range, so no loss scaling is needed.
    AutocastBf16,
    /// O2 with bf16 working copies (no loss scaling needed).
    MasterWeightsBf16,
}

impl Precision {
    /// Every mode, in the order above.
    pub const ALL: [Precision; 6] = [
        Precision::F32,
        Precision::Autocast,
        Precision::MasterWeights,
        Precision::PureF16,
        Precision::AutocastBf16,
        Precision::MasterWeightsBf16,
    ];

    /// The command-line token (`--precision`): `f32`, `autocast`,
    /// `master-weights`, `pure-f16`, `autocast-bf16`, `master-weights-bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Autocast => "autocast",
            Precision::MasterWeights => "master-weights",
            Precision::PureF16 => "pure-f16",
            Precision::AutocastBf16 => "autocast-bf16",
            Precision::MasterWeightsBf16 => "master-weights-bf16",
        }
    }

    /// Apex's name for the mode (`O0`…`O3`; the bf16 variants share O1/O2's).
    pub fn opt_level(self) -> &'static str {
        match self {
            Precision::F32 => "O0",
            Precision::Autocast | Precision::AutocastBf16 => "O1",
            Precision::MasterWeights | Precision::MasterWeightsBf16 => "O2",
            Precision::PureF16 => "O3",
        }
    }

    /// The low-precision dtype GEMM-like ops run in (`None` for FP32).
    pub fn low_dtype(self) -> Option<DType> {
        match self {
            Precision::F32 => None,
            Precision::Autocast | Precision::MasterWeights | Precision::PureF16 => Some(DType::F16),
            Precision::AutocastBf16 | Precision::MasterWeightsBf16 => Some(DType::BF16),
        }
    }

    /// The dtype the model's parameters (the working copies) are stored in.
    pub fn param_dtype(self) -> DType {
        match self {
            Precision::F32 | Precision::Autocast | Precision::AutocastBf16 => DType::F32,
            Precision::MasterWeights | Precision::PureF16 => DType::F16,
            Precision::MasterWeightsBf16 => DType::BF16,
        }
    }

    /// Whether FP32 master weights sit beside low-precision working copies.
    pub fn has_master_weights(self) -> bool {
        matches!(self, Precision::MasterWeights | Precision::MasterWeightsBf16)
    }

    /// Whether the mode needs loss scaling by default: the f16 mixed modes
    /// (f16's smallest subnormal is 2^-24; bf16's range is FP32's, and the
    /// pure-f16 baseline is deliberately unscaled).
    pub fn default_loss_scaling(self) -> bool {
        matches!(self, Precision::Autocast | Precision::MasterWeights)
    }

    /// The autocast policy of the mode: the op lists with its low-precision
    /// dtype; for [`Precision::F32`], every floating op in FP32 (so a region
    /// forced to FP32 inside a mixed one casts its f16 inputs up).
    pub fn policy(self) -> Arc<CastPolicy> {
        static POLICIES: OnceLock<[Arc<CastPolicy>; 3]> = OnceLock::new();
        let p = POLICIES.get_or_init(|| {
            [
                Arc::new(op_lists::fp32_policy()),
                Arc::new(op_lists::mixed_policy(DType::F16)),
                Arc::new(op_lists::mixed_policy(DType::BF16)),
            ]
        });
        match self.low_dtype() {
            None => p[0].clone(),
            Some(DType::F16) => p[1].clone(),
            Some(_) => p[2].clone(),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = AmpError;

    /// Parses a command-line token (also `O0`…`O3`, case-insensitive).
    fn from_str(s: &str) -> Result<Precision, AmpError> {
        let lower = s.to_ascii_lowercase();
        let found = Precision::ALL.into_iter().find(|p| p.name() == lower).or(match lower.as_str() {
            "o0" => Some(Precision::F32),
            "o1" => Some(Precision::Autocast),
            "o2" => Some(Precision::MasterWeights),
            "o3" => Some(Precision::PureF16),
            _ => None,
        });
        found.ok_or_else(|| AmpError::UnknownPrecision { token: s.to_string() })
    }
}

/// Runs `f` with `precision`'s op lists active on this thread. Scopes nest,
/// the innermost wins: `autocast(Precision::F32, || head.forward(&h))`
/// inside a mixed-precision forward runs that layer in FP32. Each scope has
/// its own parameter cast cache, so wrapping a whole step's forward in one
/// scope casts each FP32 parameter once per step.
pub fn autocast<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    let _g = autocast_guard(precision);
    f()
}

/// Keeps `precision`'s op lists active on this thread until the guard drops.
pub fn autocast_guard(precision: Precision) -> AutocastGuard {
    AutocastGuard::new(Some(precision.policy()))
}
