//! SIMD compute kernels for mixprec: pure functions over slices.
//!
//! Every kernel has a scalar reference (`scalar`) and hand-written paths for
//! AVX2/F16C, AVX-512 (with AVX-512-BF16), AVX-512-FP16 and NEON, chosen once
//! per process at run time ([`active_isa`], `MIXPREC_ISA`, `MIXPREC_FEATURES`).
//! FP16 and BF16 inputs are always accumulated in FP32. The public functions
//! are safe; `unsafe` lives only in `x86/` and `aarch64/`.
//!
//! ```
//! use half::f16;
//! let src = [1.0f32, 0.1, 65504.0, 1e6];
//! let mut dst = [f16::ZERO; 4];
//! mixprec_kernels::convert::f32_to_f16(&src, &mut dst);
//! assert_eq!(dst[2], f16::MAX);
//! assert!(dst[3].is_infinite());
//! ```

pub mod amp;
pub mod convert;
pub mod dispatch;
pub mod ew;
pub mod gemm;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod reduce;
pub mod scalar;
mod simd;
pub mod slice;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use dispatch::{
    DispatchReport, FeatureMask, Features, Isa, Kernels, active_isa, dispatch_report, features, table, table_masked,
};
