//! The scalar reference of every kernel: portable, obviously correct, and
//! the oracle every SIMD path is tested against. Its table is where every
//! ISA's table starts.

pub mod amp;
pub mod convert;
pub mod ew;
pub mod gemm;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod reduce;

use crate::dispatch::{Features, Isa, Kernels, kernel};

/// The reference table.
pub(crate) fn table() -> Kernels {
    Kernels {
        isa: Isa::Scalar,
        features: Features::default(),
        convert: crate::convert::Table {
            f32_to_f16: kernel!(convert::f32_to_f16_scalar),
            f16_to_f32: kernel!(convert::f16_to_f32_scalar),
            f32_to_bf16: kernel!(convert::f32_to_bf16_scalar),
            bf16_to_f32: kernel!(convert::bf16_to_f32_scalar),
        },
        amp: crate::amp::Table {
            unscale_and_check: kernel!(amp::unscale_and_check_scalar),
            unscale_and_check_f16: kernel!(amp::unscale_and_check_f16_scalar),
            has_non_finite: kernel!(amp::has_non_finite_scalar),
            has_non_finite_f16: kernel!(amp::has_non_finite_f16_scalar),
            has_non_finite_bf16: kernel!(amp::has_non_finite_bf16_scalar),
            master_to_f16: kernel!(amp::master_to_f16_scalar),
            master_to_bf16: kernel!(amp::master_to_bf16_scalar),
            sum_squares: kernel!(amp::sum_squares_scalar),
            max_abs_finite: kernel!(amp::max_abs_finite_scalar),
        },
        gemm: gemm::table(),
        ew: crate::ew::Table {
            binary: kernel!(ew::binary_scalar),
            binary_assign: kernel!(ew::binary_assign_scalar),
            unary: kernel!(ew::unary_scalar),
            unary_grad: kernel!(ew::unary_grad_scalar),
            select: kernel!(ew::select_scalar),
            axpy: kernel!(ew::axpy_scalar),
            lstm_cell: kernel!(ew::lstm_cell_scalar),
            lstm_cell_grad: kernel!(ew::lstm_cell_grad_scalar),
        },
        reduce: crate::reduce::Table {
            rows: kernel!(reduce::reduce_rows_scalar),
            cols: kernel!(reduce::reduce_cols_scalar),
            arg_rows: kernel!(reduce::arg_rows_scalar),
            arg_cols: kernel!(reduce::arg_cols_scalar),
            max_pool2x2: kernel!(reduce::max_pool2x2_scalar),
            softmax_rows: kernel!(reduce::softmax_rows_scalar),
            softmax_cols: kernel!(reduce::softmax_cols_scalar),
            softmax_grad_rows: kernel!(reduce::softmax_grad_rows_scalar),
            dot: kernel!(reduce::dot_scalar),
            moments_rows: kernel!(reduce::moments_rows_scalar),
            moments_cols: kernel!(reduce::moments_cols_scalar),
        },
        loss: crate::loss::Table {
            cross_entropy: kernel!(loss::cross_entropy_scalar),
            cross_entropy_grad: kernel!(loss::cross_entropy_grad_scalar),
        },
        optim: crate::optim::Table {
            sgd: kernel!(optim::sgd_scalar),
            adam: kernel!(optim::adam_scalar),
            sgd_scaled: kernel!(optim::sgd_scaled_scalar),
            adam_scaled: kernel!(optim::adam_scaled_scalar),
        },
        norm: crate::norm::Table {
            affine_rows: kernel!(norm::affine_rows_scalar),
            grad_sums_rows: kernel!(norm::grad_sums_rows_scalar),
            grad_rows: kernel!(norm::grad_rows_scalar),
        },
    }
}
