//! The `avx2` path: AVX2 + FMA + F16C, 8 f32 lanes.
//! `install` overrides the entries of the table this path implements; the
//! kernels are the generic bodies of `crate::simd` on the [`Avx2`] token.

pub mod gemm;
mod pool;
mod simd;

pub(crate) use simd::Avx2;

use half::{bf16, f16};

use crate::dispatch::{Features, Kernels, kernel};
use crate::ew::{BinaryOp, GradOp, LstmSaved, Operand, UnaryOp};
use crate::optim::{AdamStep, Sgd};
use crate::reduce::{ArgOp, ReduceOp, SoftmaxOp};
use crate::simd::{amp, cast, ew, loss, lstm, norm, optim, reduce};
use crate::slice::{Dst, Src};
use crate::x86::entries;

entries! {
    features = "avx2,fma,f16c", token = Avx2;
    fn f32_to_f16_avx2(src: &[f32], dst: &mut [f16]) = cast::cast::<Avx2, f32, f16>;
    fn f16_to_f32_avx2(src: &[f16], dst: &mut [f32]) = cast::cast::<Avx2, f16, f32>;
    fn f32_to_bf16_avx2(src: &[f32], dst: &mut [bf16]) = cast::cast::<Avx2, f32, bf16>;
    fn bf16_to_f32_avx2(src: &[bf16], dst: &mut [f32]) = cast::cast::<Avx2, bf16, f32>;
    fn unscale_and_check_avx2(g: &mut [f32], inv: f32) -> bool = amp::unscale_in_place::<Avx2>;
    fn unscale_and_check_f16_avx2(g: &[f16], inv: f32, out: &mut [f32]) -> bool = amp::unscale_into::<Avx2, f16>;
    fn has_non_finite_avx2(x: &[f32]) -> bool = amp::has_non_finite::<Avx2, f32>;
    fn has_non_finite_f16_avx2(x: &[f16]) -> bool = amp::has_non_finite::<Avx2, f16>;
    fn has_non_finite_bf16_avx2(x: &[bf16]) -> bool = amp::has_non_finite::<Avx2, bf16>;
    fn master_to_f16_avx2(m: &[f32], out: &mut [f16]) -> bool = amp::copy_master::<Avx2, f16>;
    fn master_to_bf16_avx2(m: &[f32], out: &mut [bf16]) -> bool = amp::copy_master::<Avx2, bf16>;
    fn sum_squares_avx2(x: &[&[f32]]) -> f32 = amp::sum_squares::<Avx2>;
    fn max_abs_finite_avx2(x: Src<'_>) -> f32 = amp::max_abs_finite::<Avx2>;
    fn binary_avx2(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) = ew::binary::<Avx2>;
    fn binary_assign_avx2(op: BinaryOp, rows: usize, n: usize, acc: Dst<'_>, b: Operand<'_>) = ew::binary_assign::<Avx2>;
    fn unary_avx2(op: UnaryOp, x: Src<'_>, dst: Dst<'_>) = ew::unary::<Avx2>;
    fn unary_grad_avx2(op: GradOp, g: Src<'_>, saved: Src<'_>, dst: Dst<'_>) = ew::unary_grad::<Avx2>;
    fn select_avx2(rows: usize, n: usize, c: Operand<'_>, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) = ew::select::<Avx2>;
    fn axpy_avx2(alpha: f32, x: Src<'_>, y: Dst<'_>) = ew::axpy::<Avx2>;
    fn lstm_cell_avx2(hs: usize, gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tanh_c: &mut [f32], h: Dst<'_>) = lstm::lstm_cell::<Avx2>;
    fn lstm_cell_grad_avx2(hs: usize, saved: LstmSaved<'_>, dy: Src<'_>, dh_next: &[f32], dc: &mut [f32], dgates: Dst<'_>) = lstm::lstm_cell_grad::<Avx2>;
    fn reduce_rows_avx2(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::rows::<Avx2>;
    fn reduce_cols_avx2(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::cols::<Avx2>;
    fn arg_rows_avx2(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) = reduce::arg_rows::<Avx2>;
    fn arg_cols_avx2(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) = reduce::arg_cols::<Avx2>;
    fn max_pool2x2_avx2(planes: usize, h: usize, w: usize, x: Src<'_>, y: Dst<'_>, idx: &mut [u8]) = crate::simd::pool::max_pool2x2::<Avx2>;
    fn softmax_rows_avx2(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_rows::<Avx2>;
    fn softmax_cols_avx2(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_cols::<Avx2>;
    fn softmax_grad_rows_avx2(op: SoftmaxOp, g: Src<'_>, y: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_grad_rows::<Avx2>;
    fn dot_avx2(a: Src<'_>, b: Src<'_>) -> f64 = reduce::dot::<Avx2>;
    fn moments_rows_avx2(x: Src<'_>, rows: usize, n: usize, mean: Dst<'_>, var: Dst<'_>) = reduce::moments_rows::<Avx2>;
    fn moments_cols_avx2(x: Src<'_>, rows: usize, n: usize, mean: Dst<'_>, var: Dst<'_>) = reduce::moments_cols::<Avx2>;
    fn cross_entropy_avx2(x: Src<'_>, rows: usize, n: usize, t: &[usize], loss: Dst<'_>, lse: Dst<'_>) = loss::cross_entropy::<Avx2>;
    fn cross_entropy_grad_avx2(x: Src<'_>, rows: usize, n: usize, t: &[usize], lse: Src<'_>, g: Src<'_>, grad: Dst<'_>) = loss::cross_entropy_grad::<Avx2>;
    fn sgd_avx2(p: &Sgd, w: &mut [f32], g: &[f32], buf: Option<&mut [f32]>, first: bool, copy: Option<Dst<'_>>) = optim::sgd::<Avx2>;
    fn adam_avx2(a: &AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], copy: Option<Dst<'_>>) = optim::adam::<Avx2>;
    fn sgd_scaled_avx2(p: &Sgd, w: &mut [f32], g: Src<'_>, inv_scale: f32, buf: Option<&mut [f32]>, first: bool, copy: Option<Dst<'_>>) = optim::sgd_scaled::<Avx2>;
    fn adam_scaled_avx2(a: &AdamStep, w: &mut [f32], g: Src<'_>, inv_scale: f32, m: &mut [f32], v: &mut [f32], copy: Option<Dst<'_>>) = optim::adam_scaled::<Avx2>;
    fn norm_affine_rows_avx2(x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], relu: bool, y: Dst<'_>) = norm::affine_rows::<Avx2>;
    fn norm_grad_sums_rows_avx2(g: Src<'_>, relu: Option<&[[f64; 4]]>, x: Src<'_>, rows: usize, n: usize, mu: &[f64], sums: &mut [[f64; 2]]) = norm::grad_sums_rows::<Avx2>;
    fn norm_grad_rows_avx2(g: Src<'_>, relu: Option<&[[f64; 4]]>, x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], dx: Dst<'_>) = norm::grad_rows::<Avx2>;
}

/// Overrides the entries this path implements.
pub(crate) fn install(k: &mut Kernels, _features: Features) {
    k.gemm = gemm::table();
    k.convert.f32_to_f16 = kernel!(f32_to_f16_avx2);
    k.convert.f16_to_f32 = kernel!(f16_to_f32_avx2);
    k.convert.f32_to_bf16 = kernel!(f32_to_bf16_avx2);
    k.convert.bf16_to_f32 = kernel!(bf16_to_f32_avx2);
    k.amp.unscale_and_check = kernel!(unscale_and_check_avx2);
    k.amp.unscale_and_check_f16 = kernel!(unscale_and_check_f16_avx2);
    k.amp.has_non_finite = kernel!(has_non_finite_avx2);
    k.amp.has_non_finite_f16 = kernel!(has_non_finite_f16_avx2);
    k.amp.has_non_finite_bf16 = kernel!(has_non_finite_bf16_avx2);
    k.amp.master_to_f16 = kernel!(master_to_f16_avx2);
    k.amp.master_to_bf16 = kernel!(master_to_bf16_avx2);
    k.amp.sum_squares = kernel!(sum_squares_avx2);
    k.amp.max_abs_finite = kernel!(max_abs_finite_avx2);
    k.ew.binary = kernel!(binary_avx2);
    k.ew.binary_assign = kernel!(binary_assign_avx2);
    k.ew.unary = kernel!(unary_avx2);
    k.ew.unary_grad = kernel!(unary_grad_avx2);
    k.ew.select = kernel!(select_avx2);
    k.ew.axpy = kernel!(axpy_avx2);
    k.ew.lstm_cell = kernel!(lstm_cell_avx2);
    k.ew.lstm_cell_grad = kernel!(lstm_cell_grad_avx2);
    k.reduce.rows = kernel!(reduce_rows_avx2);
    k.reduce.cols = kernel!(reduce_cols_avx2);
    k.reduce.arg_rows = kernel!(arg_rows_avx2);
    k.reduce.arg_cols = kernel!(arg_cols_avx2);
    k.reduce.max_pool2x2 = kernel!(max_pool2x2_avx2);
    k.reduce.softmax_rows = kernel!(softmax_rows_avx2);
    k.reduce.softmax_cols = kernel!(softmax_cols_avx2);
    k.reduce.softmax_grad_rows = kernel!(softmax_grad_rows_avx2);
    k.reduce.dot = kernel!(dot_avx2);
    k.reduce.moments_rows = kernel!(moments_rows_avx2);
    k.reduce.moments_cols = kernel!(moments_cols_avx2);
    k.loss.cross_entropy = kernel!(cross_entropy_avx2);
    k.loss.cross_entropy_grad = kernel!(cross_entropy_grad_avx2);
    k.optim.sgd = kernel!(sgd_avx2);
    k.optim.adam = kernel!(adam_avx2);
    k.optim.sgd_scaled = kernel!(sgd_scaled_avx2);
    k.optim.adam_scaled = kernel!(adam_scaled_avx2);
    k.norm.affine_rows = kernel!(norm_affine_rows_avx2);
    k.norm.grad_sums_rows = kernel!(norm_grad_sums_rows_avx2);
    k.norm.grad_rows = kernel!(norm_grad_rows_avx2);
}
