//! The `avx2` path: AVX2 + FMA + F16C.
//! `install` overrides the entries of the table this path implements.

pub mod gemm;

use crate::dispatch::{Features, Kernels};

/// Overrides the entries this path implements.
pub(crate) fn install(k: &mut Kernels, features: Features) {
    k.gemm = gemm::table();
    let _ = features;
}
