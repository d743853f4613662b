//! hgemm on AVX-512-FP16 with the conversion in registers: f16 panels packed
//! as f16 (half the bytes of the avx512 path's widened panels, so KC doubles
//! for the same share of L1 and packing writes half as much), widened by
//! `vcvtph2psx` — A with an embedded broadcast, one instruction per element —
//! into the same 14×32 FP32 FMAs as sgemm. The FP16 FMAs are not used: they
//! accumulate in FP16, which the contract forbids. The widening is exact
//! (NaN, ±Inf, ±0 and subnormals keep their values); the store is the avx512
//! path's.
//!
//! Not installed: each `vcvtph2psx` takes an FMA port slot, 16 conversions
//! per 28 FMAs, while converting while packing widens each element once per
//! block. On a Sapphire Rapids Xeon this kernel ran 57 GFLOP/s against the
//! avx512 path's 101.7 at 1024³ (docs/kernels.md), so the `avx512fp16` table
//! keeps avx512's hgemm; this one stays reachable through
//! `gemm::hgemm_alternatives` so the comparison can be repeated.

use core::arch::x86_64::*;

use half::f16;

use crate::dispatch::Kernel;
use crate::gemm::{Impl, KernelShape, MicroTile, Path, TileOut, check_tile, pack};
use crate::x86::avx512::gemm::{L, MR, NR, finish_tile, prefetch_tile, raw_parts};

type UkrRaw = unsafe fn(usize, *const f16, *const f16, usize, &mut TileOut<'_>);

/// The body for an M×(NV·16) tile of packed f16 panels (A `[p][i]` with
/// stride M, B `[p][j]` with stride NR, zero-padded).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512fp16,fma,f16c")]
unsafe fn ukr_f16<const M: usize, const NV: usize>(
    k: usize,
    a: *const f16,
    b: *const f16,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; M];
    prefetch_tile::<M, NV>(out);
    let (mut ap, mut bp) = (a, b);
    for _ in 0..k {
        // SAFETY: `check_tile` established that k steps of the packed A
        // (stride M) and B (stride NR) panels lie inside their slices.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                let h: __m256h = core::mem::transmute(_mm256_loadu_si256(bp.add(v * L).cast()));
                *x = _mm512_cvtxph_ps(h);
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai: __m512;
                core::arch::asm!(
                    "vcvtph2psx {d}, word ptr [{p}]{{1to16}}",
                    d = out(zmm_reg) ai,
                    p = in(reg) ap.add(i),
                    options(pure, readonly, nostack, preserves_flags),
                );
                for (c, x) in row.iter_mut().zip(&bv) {
                    *c = _mm512_fmadd_ps(ai, *x, *c);
                }
            }
            ap = ap.wrapping_add(M);
            bp = bp.wrapping_add(NR);
        }
    }
    // SAFETY: `check_tile` passed for this tile.
    unsafe { finish_tile(&acc, n, out) };
}

macro_rules! grid {
    ($($m:literal)*) => { [ $( [ukr_f16::<$m, 1> as UkrRaw, ukr_f16::<$m, 2> as UkrRaw] ),* ] };
}

static F16_GRID: [[UkrRaw; 2]; MR] = grid!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);

/// f16-panel micro-kernel, 14×32 and every smaller tile, FP32 accumulation.
///
/// # Panics
/// If `check_tile` fails or an operand is not packed.
pub fn gemm_f16_f32acc_avx512fp16_14x32(t: &MicroTile<'_, f16>, out: &mut TileOut<'_>) {
    check_tile(t, out, MR, NR);
    let (a, _, _, ap, b, _, bp) = raw_parts(t);
    assert!(ap && bp, "the avx512fp16 hgemm kernel reads packed panels only");
    let f = F16_GRID[t.m - 1][t.n.div_ceil(L) - 1];
    // SAFETY: installed only on the avx512fp16 path, whose CPUs have
    // AVX-512-FP16 besides the avx512 features; `check_tile` bounds every access.
    unsafe { f(t.k, a, b, t.n, out) }
}

/// The f16-panel hgemm (not the table's entry: see the module docs).
pub(crate) fn hgemm_f16_panels() -> Path<f16> {
    Path::F16(Impl {
        shape: KernelShape { mr: MR, nr: NR, kpack: 1, bytes_per_k: 2 },
        ukr: Kernel { f: gemm_f16_f32acc_avx512fp16_14x32, name: "gemm_f16_f32acc_avx512fp16_14x32" },
        pack_a: Kernel { f: pack::pack_a_f16_generic, name: "pack_a_f16_generic" },
        pack_b: Kernel { f: pack::pack_b_f16_generic, name: "pack_b_f16_generic" },
        unpacked: false,
        tall: None,
        narrow: None,
        dot: None,
        shallow: None,
        wide: None,
    })
}
