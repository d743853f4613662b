//! The `neon` path: Advanced SIMD, 8 f32 lanes per vector (two registers);
//! native FP16 arithmetic and `fmlal` dot products where FEAT_FP16/FHM are
//! present (`fp16.rs`); GEMM micro-kernels and packers in `gemm.rs`; the
//! integer-key 2×2 max pool in `pool.rs`.
//! `install` overrides the entries of the table this path implements; the
//! kernels are the generic bodies of `crate::simd` on the [`Neon`] token.

mod fp16;
pub mod gemm;
mod pool;
mod simd;

pub(crate) use simd::Neon;

use half::{bf16, f16};

use crate::aarch64::entries;
use crate::dispatch::{Features, Kernels, kernel};
use crate::ew::{BinaryOp, GradOp, LstmSaved, Operand, UnaryOp};
use crate::optim::{AdamStep, Sgd};
use crate::reduce::{ArgOp, ReduceOp, SoftmaxOp};
use crate::simd::{amp, cast, ew, loss, lstm, norm, optim, reduce};
use crate::slice::{Dst, Src};

entries! {
    features = "neon", token = Neon;
    fn f32_to_f16_neon(src: &[f32], dst: &mut [f16]) = cast::cast::<Neon, f32, f16>;
    fn f16_to_f32_neon(src: &[f16], dst: &mut [f32]) = cast::cast::<Neon, f16, f32>;
    fn f32_to_bf16_neon(src: &[f32], dst: &mut [bf16]) = cast::cast::<Neon, f32, bf16>;
    fn bf16_to_f32_neon(src: &[bf16], dst: &mut [f32]) = cast::cast::<Neon, bf16, f32>;
    fn unscale_and_check_neon(g: &mut [f32], inv: f32) -> bool = amp::unscale_in_place::<Neon>;
    fn unscale_and_check_f16_neon(g: &[f16], inv: f32, out: &mut [f32]) -> bool = amp::unscale_into::<Neon, f16>;
    fn has_non_finite_neon(x: &[f32]) -> bool = amp::has_non_finite::<Neon, f32>;
    fn has_non_finite_f16_neon(x: &[f16]) -> bool = amp::has_non_finite::<Neon, f16>;
    fn has_non_finite_bf16_neon(x: &[bf16]) -> bool = amp::has_non_finite::<Neon, bf16>;
    fn master_to_f16_neon(m: &[f32], out: &mut [f16]) -> bool = amp::copy_master::<Neon, f16>;
    fn master_to_bf16_neon(m: &[f32], out: &mut [bf16]) -> bool = amp::copy_master::<Neon, bf16>;
    fn sum_squares_neon(x: &[&[f32]]) -> f32 = amp::sum_squares::<Neon>;
    fn max_abs_finite_neon(x: Src<'_>) -> f32 = amp::max_abs_finite::<Neon>;
    fn binary_neon(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) = ew::binary::<Neon>;
    fn binary_assign_neon(op: BinaryOp, rows: usize, n: usize, acc: Dst<'_>, b: Operand<'_>) = ew::binary_assign::<Neon>;
    fn unary_neon(op: UnaryOp, x: Src<'_>, dst: Dst<'_>) = ew::unary::<Neon>;
    fn unary_grad_neon(op: GradOp, g: Src<'_>, saved: Src<'_>, dst: Dst<'_>) = ew::unary_grad::<Neon>;
    fn select_neon(rows: usize, n: usize, c: Operand<'_>, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) = ew::select::<Neon>;
    fn axpy_neon(alpha: f32, x: Src<'_>, y: Dst<'_>) = ew::axpy::<Neon>;
    fn lstm_cell_neon(hs: usize, gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tanh_c: &mut [f32], h: Dst<'_>) = lstm::lstm_cell::<Neon>;
    fn lstm_cell_grad_neon(hs: usize, saved: LstmSaved<'_>, dy: Src<'_>, dh_next: &[f32], dc: &mut [f32], dgates: Dst<'_>) = lstm::lstm_cell_grad::<Neon>;
    fn reduce_rows_neon(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::rows::<Neon>;
    fn reduce_cols_neon(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::cols::<Neon>;
    fn arg_rows_neon(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) = reduce::arg_rows::<Neon>;
    fn arg_cols_neon(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) = reduce::arg_cols::<Neon>;
    fn max_pool2x2_neon(planes: usize, h: usize, w: usize, x: Src<'_>, y: Dst<'_>, idx: &mut [u8]) = crate::simd::pool::max_pool2x2::<Neon>;
    fn softmax_rows_neon(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_rows::<Neon>;
    fn softmax_cols_neon(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_cols::<Neon>;
    fn softmax_grad_rows_neon(op: SoftmaxOp, g: Src<'_>, y: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_grad_rows::<Neon>;
    fn dot_neon(a: Src<'_>, b: Src<'_>) -> f64 = reduce::dot::<Neon>;
    fn moments_rows_neon(x: Src<'_>, rows: usize, n: usize, mean: Dst<'_>, var: Dst<'_>) = reduce::moments_rows::<Neon>;
    fn moments_cols_neon(x: Src<'_>, rows: usize, n: usize, mean: Dst<'_>, var: Dst<'_>) = reduce::moments_cols::<Neon>;
    fn cross_entropy_neon(x: Src<'_>, rows: usize, n: usize, t: &[usize], loss: Dst<'_>, lse: Dst<'_>) = loss::cross_entropy::<Neon>;
    fn cross_entropy_grad_neon(x: Src<'_>, rows: usize, n: usize, t: &[usize], lse: Src<'_>, g: Src<'_>, grad: Dst<'_>) = loss::cross_entropy_grad::<Neon>;
    fn sgd_neon(p: &Sgd, w: &mut [f32], g: &[f32], buf: Option<&mut [f32]>, first: bool, copy: Option<Dst<'_>>) = optim::sgd::<Neon>;
    fn adam_neon(a: &AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], copy: Option<Dst<'_>>) = optim::adam::<Neon>;
    fn sgd_scaled_neon(p: &Sgd, w: &mut [f32], g: Src<'_>, inv_scale: f32, buf: Option<&mut [f32]>, first: bool, copy: Option<Dst<'_>>) = optim::sgd_scaled::<Neon>;
    fn adam_scaled_neon(a: &AdamStep, w: &mut [f32], g: Src<'_>, inv_scale: f32, m: &mut [f32], v: &mut [f32], copy: Option<Dst<'_>>) = optim::adam_scaled::<Neon>;
    fn norm_affine_rows_neon(x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], relu: bool, y: Dst<'_>) = norm::affine_rows::<Neon>;
    fn norm_grad_sums_rows_neon(g: Src<'_>, relu: Option<&[[f64; 4]]>, x: Src<'_>, rows: usize, n: usize, mu: &[f64], sums: &mut [[f64; 2]]) = norm::grad_sums_rows::<Neon>;
    fn norm_grad_rows_neon(g: Src<'_>, relu: Option<&[[f64; 4]]>, x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], dx: Dst<'_>) = norm::grad_rows::<Neon>;
}

/// Overrides the entries this path implements.
pub(crate) fn install(k: &mut Kernels, features: Features) {
    k.convert.f32_to_f16 = kernel!(f32_to_f16_neon);
    k.convert.f16_to_f32 = kernel!(f16_to_f32_neon);
    k.convert.f32_to_bf16 = kernel!(f32_to_bf16_neon);
    k.convert.bf16_to_f32 = kernel!(bf16_to_f32_neon);
    k.amp.unscale_and_check = kernel!(unscale_and_check_neon);
    k.amp.unscale_and_check_f16 = kernel!(unscale_and_check_f16_neon);
    k.amp.has_non_finite = kernel!(has_non_finite_neon);
    k.amp.has_non_finite_f16 = kernel!(has_non_finite_f16_neon);
    k.amp.has_non_finite_bf16 = kernel!(has_non_finite_bf16_neon);
    k.amp.master_to_f16 = kernel!(master_to_f16_neon);
    k.amp.master_to_bf16 = kernel!(master_to_bf16_neon);
    k.amp.sum_squares = kernel!(sum_squares_neon);
    k.amp.max_abs_finite = kernel!(max_abs_finite_neon);
    k.ew.binary = kernel!(binary_neon);
    k.ew.binary_assign = kernel!(binary_assign_neon);
    k.ew.unary = kernel!(unary_neon);
    k.ew.unary_grad = kernel!(unary_grad_neon);
    k.ew.select = kernel!(select_neon);
    k.ew.axpy = kernel!(axpy_neon);
    k.ew.lstm_cell = kernel!(lstm_cell_neon);
    k.ew.lstm_cell_grad = kernel!(lstm_cell_grad_neon);
    k.reduce.rows = kernel!(reduce_rows_neon);
    k.reduce.cols = kernel!(reduce_cols_neon);
    k.reduce.arg_rows = kernel!(arg_rows_neon);
    k.reduce.arg_cols = kernel!(arg_cols_neon);
    k.reduce.max_pool2x2 = kernel!(max_pool2x2_neon);
    k.reduce.softmax_rows = kernel!(softmax_rows_neon);
    k.reduce.softmax_cols = kernel!(softmax_cols_neon);
    k.reduce.softmax_grad_rows = kernel!(softmax_grad_rows_neon);
    k.reduce.dot = kernel!(dot_neon);
    k.reduce.moments_rows = kernel!(moments_rows_neon);
    k.reduce.moments_cols = kernel!(moments_cols_neon);
    k.loss.cross_entropy = kernel!(cross_entropy_neon);
    k.loss.cross_entropy_grad = kernel!(cross_entropy_grad_neon);
    k.optim.sgd = kernel!(sgd_neon);
    k.optim.adam = kernel!(adam_neon);
    k.optim.sgd_scaled = kernel!(sgd_scaled_neon);
    k.optim.adam_scaled = kernel!(adam_scaled_neon);
    k.norm.affine_rows = kernel!(norm_affine_rows_neon);
    k.norm.grad_sums_rows = kernel!(norm_grad_sums_rows_neon);
    k.norm.grad_rows = kernel!(norm_grad_rows_neon);
    k.gemm = gemm::table(features.fp16 && features.fhm);
    if features.fp16 {
        k.ew.binary = kernel!(fp16::binary_neon_fp16);
        k.ew.unary = kernel!(fp16::unary_neon_fp16);
    }
    if features.fhm {
        k.reduce.dot = kernel!(fp16::dot_neon_fhm);
    }
}
