//! The `avx512` path: AVX-512 F/BW/VL/DQ, 16 f32 lanes, masked tails; where
//! the CPU has AVX-512-BF16, kernels that write bf16 use `vcvtneps2bf16`
//! (with its subnormal flush undone, see `simd.rs`).
//! `install` overrides the entries of the table this path implements.

pub mod gemm;
mod simd;

pub(crate) use simd::Avx512;

use half::{bf16, f16};

use crate::dispatch::{Features, Kernels, kernel};
use crate::ew::{BinaryOp, GradOp, LstmSaved, Operand, UnaryOp};
use crate::optim::{AdamStep, Sgd};
use crate::reduce::{ArgOp, ReduceOp, SoftmaxOp};
use crate::simd::{amp, cast, ew, loss, lstm, norm, optim, reduce};
use crate::slice::{Dst, Src};
use crate::x86::entries;

type V4 = Avx512<false>;
type V4Bf16 = Avx512<true>;

entries! {
    features = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c", token = V4;
    fn f32_to_f16_avx512(src: &[f32], dst: &mut [f16]) = cast::cast::<V4, f32, f16>;
    fn f16_to_f32_avx512(src: &[f16], dst: &mut [f32]) = cast::cast::<V4, f16, f32>;
    fn f32_to_bf16_avx512(src: &[f32], dst: &mut [bf16]) = cast::cast::<V4, f32, bf16>;
    fn bf16_to_f32_avx512(src: &[bf16], dst: &mut [f32]) = cast::cast::<V4, bf16, f32>;
    fn unscale_and_check_avx512(g: &mut [f32], inv: f32) -> bool = amp::unscale_in_place::<V4>;
    fn unscale_and_check_f16_avx512(g: &[f16], inv: f32, out: &mut [f32]) -> bool = amp::unscale_into::<V4, f16>;
    fn has_non_finite_avx512(x: &[f32]) -> bool = amp::has_non_finite::<V4, f32>;
    fn has_non_finite_f16_avx512(x: &[f16]) -> bool = amp::has_non_finite::<V4, f16>;
    fn has_non_finite_bf16_avx512(x: &[bf16]) -> bool = amp::has_non_finite::<V4, bf16>;
    fn master_to_f16_avx512(m: &[f32], out: &mut [f16]) -> bool = amp::copy_master::<V4, f16>;
    fn master_to_bf16_avx512(m: &[f32], out: &mut [bf16]) -> bool = amp::copy_master::<V4, bf16>;
    fn sum_squares_avx512(x: &[&[f32]]) -> f32 = amp::sum_squares::<V4>;
    fn max_abs_finite_avx512(x: Src<'_>) -> f32 = amp::max_abs_finite::<V4>;
    fn binary_avx512(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) = ew::binary::<V4>;
    fn binary_assign_avx512(op: BinaryOp, rows: usize, n: usize, acc: Dst<'_>, b: Operand<'_>) = ew::binary_assign::<V4>;
    fn unary_avx512(op: UnaryOp, x: Src<'_>, dst: Dst<'_>) = ew::unary::<V4>;
    fn unary_grad_avx512(op: GradOp, g: Src<'_>, saved: Src<'_>, dst: Dst<'_>) = ew::unary_grad::<V4>;
    fn select_avx512(rows: usize, n: usize, c: Operand<'_>, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) = ew::select::<V4>;
    fn axpy_avx512(alpha: f32, x: Src<'_>, y: Dst<'_>) = ew::axpy::<V4>;
    fn lstm_cell_avx512(hs: usize, gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tanh_c: &mut [f32], h: Dst<'_>) = lstm::lstm_cell::<V4>;
    fn lstm_cell_grad_avx512(hs: usize, saved: LstmSaved<'_>, dy: Src<'_>, dh_next: &[f32], dc: &mut [f32], dgates: Dst<'_>) = lstm::lstm_cell_grad::<V4>;
    fn reduce_rows_avx512(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::rows::<V4>;
    fn reduce_cols_avx512(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::cols::<V4>;
    fn arg_rows_avx512(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) = reduce::arg_rows::<V4>;
    fn arg_cols_avx512(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) = reduce::arg_cols::<V4>;
    fn softmax_rows_avx512(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_rows::<V4>;
    fn softmax_cols_avx512(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_cols::<V4>;
    fn softmax_grad_rows_avx512(op: SoftmaxOp, g: Src<'_>, y: Src<'_>, rows: usize, n: usize, out: Dst<'_>) = reduce::softmax_grad_rows::<V4>;
    fn dot_avx512(a: Src<'_>, b: Src<'_>) -> f64 = reduce::dot::<V4>;
    fn moments_rows_avx512(x: Src<'_>, rows: usize, n: usize, mean: Dst<'_>, var: Dst<'_>) = reduce::moments_rows::<V4>;
    fn moments_cols_avx512(x: Src<'_>, rows: usize, n: usize, mean: Dst<'_>, var: Dst<'_>) = reduce::moments_cols::<V4>;
    fn cross_entropy_avx512(x: Src<'_>, rows: usize, n: usize, t: &[usize], loss: Dst<'_>, lse: Dst<'_>) = loss::cross_entropy::<V4>;
    fn cross_entropy_grad_avx512(x: Src<'_>, rows: usize, n: usize, t: &[usize], lse: Src<'_>, g: Src<'_>, grad: Dst<'_>) = loss::cross_entropy_grad::<V4>;
    fn sgd_avx512(p: &Sgd, w: &mut [f32], g: &[f32], buf: Option<&mut [f32]>, first: bool, copy: Option<Dst<'_>>) = optim::sgd::<V4>;
    fn adam_avx512(a: &AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], copy: Option<Dst<'_>>) = optim::adam::<V4>;
    fn sgd_scaled_avx512(p: &Sgd, w: &mut [f32], g: Src<'_>, inv_scale: f32, buf: Option<&mut [f32]>, first: bool, copy: Option<Dst<'_>>) = optim::sgd_scaled::<V4>;
    fn adam_scaled_avx512(a: &AdamStep, w: &mut [f32], g: Src<'_>, inv_scale: f32, m: &mut [f32], v: &mut [f32], copy: Option<Dst<'_>>) = optim::adam_scaled::<V4>;
    fn norm_affine_rows_avx512(x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], relu: bool, y: Dst<'_>) = norm::affine_rows::<V4>;
    fn norm_grad_sums_rows_avx512(g: Src<'_>, relu: Option<&[[f64; 4]]>, x: Src<'_>, rows: usize, n: usize, mu: &[f64], sums: &mut [[f64; 2]]) = norm::grad_sums_rows::<V4>;
    fn norm_grad_rows_avx512(g: Src<'_>, relu: Option<&[[f64; 4]]>, x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], dx: Dst<'_>) = norm::grad_rows::<V4>;
}

entries! {
    features = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512bf16", token = V4Bf16;
    fn f32_to_bf16_avx512_bf16(src: &[f32], dst: &mut [bf16]) = cast::cast::<V4Bf16, f32, bf16>;
    fn master_to_bf16_avx512_bf16(m: &[f32], out: &mut [bf16]) -> bool = amp::copy_master::<V4Bf16, bf16>;
}

/// Overrides the entries this path implements.
pub(crate) fn install(k: &mut Kernels, features: Features) {
    k.gemm = gemm::table(features.bf16);
    k.convert.f32_to_f16 = kernel!(f32_to_f16_avx512);
    k.convert.f16_to_f32 = kernel!(f16_to_f32_avx512);
    k.convert.f32_to_bf16 = kernel!(f32_to_bf16_avx512);
    k.convert.bf16_to_f32 = kernel!(bf16_to_f32_avx512);
    k.amp.unscale_and_check = kernel!(unscale_and_check_avx512);
    k.amp.unscale_and_check_f16 = kernel!(unscale_and_check_f16_avx512);
    k.amp.has_non_finite = kernel!(has_non_finite_avx512);
    k.amp.has_non_finite_f16 = kernel!(has_non_finite_f16_avx512);
    k.amp.has_non_finite_bf16 = kernel!(has_non_finite_bf16_avx512);
    k.amp.master_to_f16 = kernel!(master_to_f16_avx512);
    k.amp.master_to_bf16 = kernel!(master_to_bf16_avx512);
    k.amp.sum_squares = kernel!(sum_squares_avx512);
    k.amp.max_abs_finite = kernel!(max_abs_finite_avx512);
    k.ew.binary = kernel!(binary_avx512);
    k.ew.binary_assign = kernel!(binary_assign_avx512);
    k.ew.unary = kernel!(unary_avx512);
    k.ew.unary_grad = kernel!(unary_grad_avx512);
    k.ew.select = kernel!(select_avx512);
    k.ew.axpy = kernel!(axpy_avx512);
    k.ew.lstm_cell = kernel!(lstm_cell_avx512);
    k.ew.lstm_cell_grad = kernel!(lstm_cell_grad_avx512);
    k.reduce.rows = kernel!(reduce_rows_avx512);
    k.reduce.cols = kernel!(reduce_cols_avx512);
    k.reduce.arg_rows = kernel!(arg_rows_avx512);
    k.reduce.arg_cols = kernel!(arg_cols_avx512);
    k.reduce.softmax_rows = kernel!(softmax_rows_avx512);
    k.reduce.softmax_cols = kernel!(softmax_cols_avx512);
    k.reduce.softmax_grad_rows = kernel!(softmax_grad_rows_avx512);
    k.reduce.dot = kernel!(dot_avx512);
    k.reduce.moments_rows = kernel!(moments_rows_avx512);
    k.reduce.moments_cols = kernel!(moments_cols_avx512);
    k.loss.cross_entropy = kernel!(cross_entropy_avx512);
    k.loss.cross_entropy_grad = kernel!(cross_entropy_grad_avx512);
    k.optim.sgd = kernel!(sgd_avx512);
    k.optim.adam = kernel!(adam_avx512);
    k.optim.sgd_scaled = kernel!(sgd_scaled_avx512);
    k.optim.adam_scaled = kernel!(adam_scaled_avx512);
    k.norm.affine_rows = kernel!(norm_affine_rows_avx512);
    k.norm.grad_sums_rows = kernel!(norm_grad_sums_rows_avx512);
    k.norm.grad_rows = kernel!(norm_grad_rows_avx512);
    if features.bf16 {
        k.convert.f32_to_bf16 = kernel!(f32_to_bf16_avx512_bf16);
        k.amp.master_to_bf16 = kernel!(master_to_bf16_avx512_bf16);
    }
}
