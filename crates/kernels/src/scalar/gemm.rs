//! Reference GEMM: `C = alpha·op(A)·op(B) + beta·C` with FP32 accumulation,
//! one dot product per element in increasing `p`. Arguments were checked by
//! `gemm::check_args`.
//!
//! NaN and ±Inf propagate as IEEE arithmetic says, except where BLAS says an
//! operand is not read: with `beta == 0` C is overwritten (a NaN there does
//! not survive), with `alpha == 0` or `k == 0` A and B are not read.

use half::{bf16, f16};

use crate::gemm::{APanel, BPanel, Dst, MicroTile, Prev, TileOut, Transpose};

/// An element type GEMM can read: widened exactly to f32.
pub trait GemmInput: Copy + Send + Sync + 'static {
    /// The exact f32 value.
    fn to_f32(self) -> f32;
    /// The slice itself when the type is f32 (micro-kernels may read it unpacked).
    fn as_f32(s: &[Self]) -> Option<&[f32]> {
        let _ = s;
        None
    }
    /// Widens `src` into `dst` (same length), exactly.
    fn widen(src: &[Self], dst: &mut [f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s.to_f32();
        }
    }
}

impl GemmInput for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    fn as_f32(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
}

impl GemmInput for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        super::convert::f16_bits_to_f32(self.to_bits())
    }
    fn widen(src: &[f16], dst: &mut [f32]) {
        crate::convert::f16_to_f32(src, dst);
    }
}

impl GemmInput for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        super::convert::bf16_bits_to_f32(self.to_bits())
    }
    fn widen(src: &[bf16], dst: &mut [f32]) {
        crate::convert::bf16_to_f32(src, dst);
    }
}

/// The reference for every GEMM element type.
#[allow(clippy::too_many_arguments)]
pub fn gemm_ref<T: GemmInput>(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    crate::gemm::check_args(ta, tb, m, n, k, a.len(), lda, b.len(), ldb, c.len(), ldc);
    if m == 0 || n == 0 {
        return;
    }
    let at = |i: usize, p: usize| match ta {
        Transpose::No => a[i * lda + p],
        Transpose::Yes => a[p * lda + i],
    };
    let bt = |p: usize, j: usize| match tb {
        Transpose::No => b[p * ldb + j],
        Transpose::Yes => b[j * ldb + p],
    };
    let skip_product = alpha == 0.0 || k == 0;
    for i in 0..m {
        for j in 0..n {
            let mut ab_acc = 0.0f32;
            if !skip_product {
                for p in 0..k {
                    ab_acc += at(i, p).to_f32() * bt(p, j).to_f32();
                }
            }
            let ab = if skip_product { 0.0 } else { alpha * ab_acc };
            let cij = &mut c[i * ldc + j];
            *cij = match (beta == 0.0, skip_product) {
                (true, _) => ab,
                (false, true) => beta * *cij,
                (false, false) => ab_acc.mul_add(alpha, beta * *cij),
            };
        }
    }
}

/// The scalar micro-kernel's register block.
pub const MR: usize = 4;
/// The scalar micro-kernel's columns.
pub const NR: usize = 8;

/// Reference micro-kernel on f32 panels: `acc += a·b` in increasing depth,
/// then [`store_tile`]. Any tile up to MR×NR.
///
/// # Panics
/// If the tile exceeds MR×NR or a panel is shorter than the tile needs.
pub fn gemm_f32_scalar_4x8(t: &MicroTile<'_, f32>, out: &mut TileOut<'_>) {
    assert!(t.m <= MR && t.n <= NR, "scalar micro-kernel: {}x{} tile exceeds {MR}x{NR}", t.m, t.n);
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..t.k {
        let mut b = [0.0f32; NR];
        for (j, bj) in b.iter_mut().enumerate().take(t.n) {
            *bj = match t.b {
                BPanel::Packed(d) => d[p * NR + j],
                BPanel::Rows { data, ld } => data[p * ld + j],
                BPanel::Cols { data, ld } => data[j * ld + p],
            };
        }
        for (i, row) in acc.iter_mut().enumerate().take(t.m) {
            let a = match t.a {
                APanel::Packed(d) => d[p * t.m + i],
                APanel::Strided { data, rs, cs } => data[i * rs + p * cs],
            };
            for (c, bj) in row.iter_mut().zip(&b) {
                *c += a * bj;
            }
        }
    }
    store_tile(t.m, t.n, |i, j| acc[i][j], out);
}

/// The reference of every micro-kernel's store: `alpha·acc` combined with the
/// previous value by one fused multiply-add (`alpha·acc + beta·dst`, or
/// `alpha·acc + dst`), plus the bias, then ReLU, then one rounding to the
/// destination type (round to nearest even). Fusing the scale into the sum
/// keeps a depth-1 product within the bound `2·k·u·|alpha|·|A||B| + 2·u·|beta·C|`.
pub fn store_tile(m: usize, n: usize, acc: impl Fn(usize, usize) -> f32, out: &mut TileOut<'_>) {
    for i in 0..m {
        for j in 0..n {
            store_one(out, i, j, acc(i, j));
        }
    }
}

/// [`store_tile`] for element (i, j) of the tile alone: SIMD stores call it
/// for the columns and destination types they do not handle in vectors.
#[inline]
pub fn store_one(out: &mut TileOut<'_>, i: usize, j: usize, a: f32) {
    let alpha = out.alpha;
    let prev_dst = match &out.dst {
        Dst::F32(c, ld) => Some(c[i * ld + j]),
        _ => None,
    };
    let mut v = match out.prev {
        Prev::None => alpha * a,
        Prev::Beta(beta) => a.mul_add(alpha, beta * prev_dst.expect("beta needs an f32 destination")),
        Prev::Dst => a.mul_add(alpha, prev_dst.expect("accumulation needs an f32 destination")),
        Prev::From { src, ld } => a.mul_add(alpha, src[i * ld + j]),
    };
    if let Some(bias) = out.bias {
        v += bias[j];
    }
    if out.relu {
        v = crate::gemm::relu(v);
    }
    match &mut out.dst {
        Dst::F32(c, ld) => c[i * *ld + j] = v,
        Dst::F16(c, ld) => c[i * *ld + j] = f16::from_f32(v),
        Dst::Bf16(c, ld) => c[i * *ld + j] = bf16::from_f32(v),
    }
}

/// Reference sgemm (see [`crate::gemm::sgemm`]).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_scalar(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// Reference hgemm (see [`crate::gemm::hgemm`]).
#[allow(clippy::too_many_arguments)]
pub fn hgemm_scalar(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f16],
    lda: usize,
    b: &[f16],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// Reference bgemm (see [`crate::gemm::bgemm`]).
#[allow(clippy::too_many_arguments)]
pub fn bgemm_scalar(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[bf16],
    lda: usize,
    b: &[bf16],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// The scalar GEMM registry: the reference micro-kernel on f32 panels, with
/// f16/bf16 widened while packing.
pub(crate) fn table() -> crate::gemm::Table {
    use crate::dispatch::Kernel;
    use crate::gemm::{Impl, KernelShape, Path, pack};
    let shape = KernelShape { mr: MR, nr: NR, kpack: 1, bytes_per_k: 4 };
    let ukr: Kernel<crate::gemm::UkrFn<f32>> = Kernel { f: gemm_f32_scalar_4x8, name: "gemm_f32_scalar_4x8" };
    crate::gemm::Table {
        sgemm: Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack::pack_a_f32_generic::<f32>, name: "pack_a_f32_generic" },
            pack_b: Kernel { f: pack::pack_b_f32_generic::<f32>, name: "pack_b_f32_generic" },
            unpacked: true,
            tall: None,
            narrow: None,
            dot: None,
            shallow: None,
            wide: None,
        }),
        hgemm: Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack::pack_a_f32_generic::<f16>, name: "pack_a_f16_f32_generic" },
            pack_b: Kernel { f: pack::pack_b_f32_generic::<f16>, name: "pack_b_f16_f32_generic" },
            unpacked: true,
            tall: None,
            narrow: None,
            dot: None,
            shallow: None,
            wide: None,
        }),
        bgemm: Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack::pack_a_f32_generic::<bf16>, name: "pack_a_bf16_f32_generic" },
            pack_b: Kernel { f: pack::pack_b_f32_generic::<bf16>, name: "pack_b_bf16_f32_generic" },
            unpacked: true,
            tall: None,
            narrow: None,
            dot: None,
            shallow: None,
            wide: None,
        }),
    }
}
