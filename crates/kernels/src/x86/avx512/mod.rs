//! The `avx512` path: AVX-512 F/BW/VL/DQ (AVX-512-BF16 where present).
//! `install` overrides the entries of the table this path implements.

pub mod gemm;

use crate::dispatch::{Features, Kernels};

/// Overrides the entries this path implements.
pub(crate) fn install(k: &mut Kernels, features: Features) {
    k.gemm = gemm::table(features.bf16);
}
