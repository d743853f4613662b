//! The `avx512fp16` path: AVX-512-FP16 on top of the avx512 path.
//! `install` overrides the entries of the table this path implements.

pub mod gemm;

use crate::dispatch::{Features, Kernels};

/// Overrides the entries this path implements.
pub(crate) fn install(k: &mut Kernels, _features: Features) {
    k.gemm.hgemm = gemm::hgemm();
}
