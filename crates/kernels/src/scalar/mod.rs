//! The scalar reference of every kernel: portable, obviously correct, and
//! the oracle every SIMD path is tested against. Its table is where every
//! ISA's table starts.

pub mod amp;
pub mod convert;
pub mod gemm;

use crate::dispatch::{Isa, Kernels, kernel};

/// The reference table.
pub(crate) fn table() -> Kernels {
    Kernels {
        isa: Isa::Scalar,
        convert: crate::convert::Table {
            f32_to_f16: kernel!(convert::f32_to_f16_scalar),
            f16_to_f32: kernel!(convert::f16_to_f32_scalar),
            f32_to_bf16: kernel!(convert::f32_to_bf16_scalar),
            bf16_to_f32: kernel!(convert::bf16_to_f32_scalar),
        },
        amp: crate::amp::Table {
            unscale_and_check: kernel!(amp::unscale_and_check_scalar),
            unscale_and_check_f16: kernel!(amp::unscale_and_check_f16_scalar),
        },
        gemm: crate::gemm::Table {
            sgemm: kernel!(gemm::sgemm_scalar),
            hgemm: kernel!(gemm::hgemm_scalar),
            bgemm: kernel!(gemm::bgemm_scalar),
        },
    }
}
