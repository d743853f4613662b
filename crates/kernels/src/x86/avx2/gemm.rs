//! AVX2 + FMA GEMM: a 6×16 f32 micro-kernel on the 16 ymm registers (12
//! accumulators, two B vectors, one broadcast A value), every edge tile
//! generated from the same body by const generics, and packing routines;
//! f16 (F16C) and bf16 inputs are widened while packing.
//!
//! NaN and ±Inf propagate as IEEE FMA says; the store applies the tile's
//! epilogue (see `gemm::TileOut`): f16 results via `vcvtps2ph` (round to
//! nearest even, subnormals kept), bf16 by integer rounding (round to nearest
//! even, subnormals kept, NaN quieted).

use core::arch::x86_64::*;

use half::{bf16, f16};

use crate::dispatch::Kernel;
use crate::gemm::{
    APanel, BPanel, Dst, Impl, KernelShape, MicroTile, Path, Prev, TileOut, Transpose, check_tile, pack, plain_dst,
};

/// Rows of the register block.
pub const MR: usize = 6;
/// Columns of the register block (two ymm).
pub const NR: usize = 16;
const L: usize = 8;

/// Lane mask (all-ones lanes) for `cols` valid lanes of vector `v`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn lane_mask(cols: usize, v: usize) -> __m256i {
    let c = cols.saturating_sub(v * L).min(L) as i32;
    _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// Round to nearest even, subnormals kept, NaN quieted (`bf16::from_f32`):
/// the eight results as u16 lanes of an xmm.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn f32_to_bf16_rne(v: __m256) -> __m128i {
    let bits = _mm256_castps_si256(v);
    let hi = _mm256_srli_epi32::<16>(bits);
    let lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))));
    let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    let quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
    let r = _mm256_blendv_epi8(rounded, quiet, nan);
    // Every lane is below 2^16, so the unsigned saturating pack is exact;
    // it interleaves the 128-bit halves, which the permute puts back in order.
    let packed = _mm256_packus_epi32(r, r);
    _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b1000>(packed))
}

/// Stores the first `lanes ≤ 8` u16 lanes of `v` at `dst` (AVX2 has no
/// 16-bit masked store): one 16-byte store for a full vector, else pieces of
/// 4, 2 and 1 lanes, so the results never pass through memory.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn store_u16s(dst: *mut u16, v: __m128i, lanes: usize) {
    // SAFETY: the caller guarantees `lanes` writable u16 at `dst`.
    unsafe {
        if lanes == L {
            _mm_storeu_si128(dst.cast(), v);
            return;
        }
        let (mut v, mut at) = (v, 0);
        if lanes & 4 != 0 {
            _mm_storel_epi64(dst.cast(), v);
            v = _mm_srli_si128::<8>(v);
            at = 4;
        }
        if lanes & 2 != 0 {
            _mm_storeu_si32(dst.add(at).cast(), v);
            v = _mm_srli_si128::<4>(v);
            at += 2;
        }
        if lanes & 1 != 0 {
            *dst.add(at) = _mm_extract_epi16::<0>(v) as u16;
        }
    }
}

/// The general store of one vector: beta, the f32 scratch, bias, ReLU,
/// f16/bf16 rounding.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn store_vec(out: &mut TileOut<'_>, acc: __m256, alpha: __m256, i: usize, j: usize, lanes: usize) {
    let mask = lane_mask(lanes, 0);
    // SAFETY: `check_tile` established that row i, columns j..j+lanes of the
    // destination, the scratch and the bias are inside their slices; masked
    // loads and stores and `store_u16s` touch no other element.
    unsafe {
        let mut v = match out.prev {
            Prev::None => _mm256_mul_ps(acc, alpha),
            Prev::Beta(beta) => {
                let Dst::F32(c, ld) = &out.dst else { unreachable!() };
                let old = _mm256_maskload_ps(c.as_ptr().add(i * ld + j), mask);
                _mm256_fmadd_ps(acc, alpha, _mm256_mul_ps(_mm256_set1_ps(beta), old))
            }
            Prev::Dst => {
                let Dst::F32(c, ld) = &out.dst else { unreachable!() };
                let old = _mm256_maskload_ps(c.as_ptr().add(i * ld + j), mask);
                _mm256_fmadd_ps(acc, alpha, old)
            }
            Prev::From { src, ld } => {
                let old = _mm256_maskload_ps(src.as_ptr().add(i * ld + j), mask);
                _mm256_fmadd_ps(acc, alpha, old)
            }
        };
        if let Some(bias) = out.bias {
            v = _mm256_add_ps(v, _mm256_maskload_ps(bias.as_ptr().add(j), mask));
        }
        if out.relu {
            // x > 0 or NaN keeps x; everything else (incl. −0) becomes +0.
            let keep = _mm256_cmp_ps::<_CMP_NLE_UQ>(v, _mm256_setzero_ps());
            v = _mm256_and_ps(keep, v);
        }
        match &mut out.dst {
            Dst::F32(c, ld) => _mm256_maskstore_ps(c.as_mut_ptr().add(i * *ld + j), mask, v),
            Dst::F16(c, ld) => {
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                store_u16s(c.as_mut_ptr().add(i * *ld + j).cast(), h, lanes);
            }
            Dst::Bf16(c, ld) => store_u16s(c.as_mut_ptr().add(i * *ld + j).cast(), f32_to_bf16_rne(v), lanes),
        }
    }
}

type UkrRaw = unsafe fn(usize, *const f32, usize, usize, *const f32, usize, usize, &mut TileOut<'_>);

/// The kernel body for an M×(NV·8) tile; see the avx512 kernel for the
/// meaning of `APACK`/`BPACK`.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn ukr_f32<const M: usize, const NV: usize, const APACK: bool, const BPACK: bool>(
    k: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let (rs, cs) = if APACK { (1, M) } else { (rs, cs) };
    let ldb = if BPACK { NR } else { ldb };
    let last = lane_mask(n, NV - 1);
    let mut acc = [[_mm256_setzero_ps(); NV]; M];
    let (mut ap, mut bp) = (a, b);
    for _ in 0..k {
        // SAFETY: `check_tile` established that k steps of A (rs, cs) and B
        // (ldb, n columns; NR when packed) lie inside their slices.
        unsafe {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = if !BPACK && v == NV - 1 {
                    _mm256_maskload_ps(bp.add(v * L), last)
                } else {
                    _mm256_loadu_ps(bp.add(v * L))
                };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_broadcast_ss(&*ap.add(i * rs));
                for (c, x) in row.iter_mut().zip(&bv) {
                    *c = _mm256_fmadd_ps(ai, *x, *c);
                }
            }
            ap = ap.wrapping_add(cs);
            bp = bp.wrapping_add(ldb);
        }
    }
    let alpha = _mm256_set1_ps(out.alpha);
    match plain_dst(out) {
        // A plain f32 tile: straight to C, no per-vector dispatch on the
        // output kind; full vectors unmasked, `alpha == 1` unscaled (`1·x`
        // and `fma(x, 1, c)` round exactly as `x` and `x + c`).
        Some((p, ld, accumulate)) => {
            let one = out.alpha == 1.0;
            for (i, row) in acc.iter().enumerate() {
                for (v, &x) in row.iter().enumerate() {
                    let lanes = n.saturating_sub(v * L).min(L);
                    let mask = lane_mask(lanes, 0);
                    // SAFETY: `check_tile` established that row i, columns
                    // v·8..v·8+lanes are inside the destination.
                    unsafe {
                        let q = p.add(i * ld + v * L);
                        let y = match (accumulate, one) {
                            (false, true) => x,
                            (false, false) => _mm256_mul_ps(x, alpha),
                            (true, true) => _mm256_add_ps(x, _mm256_maskload_ps(q, mask)),
                            (true, false) => _mm256_fmadd_ps(x, alpha, _mm256_maskload_ps(q, mask)),
                        };
                        if lanes == L {
                            _mm256_storeu_ps(q, y);
                        } else {
                            _mm256_maskstore_ps(q, mask, y);
                        }
                    }
                }
            }
        }
        None => {
            for (i, row) in acc.iter().enumerate() {
                for (v, &x) in row.iter().enumerate() {
                    let lanes = n.saturating_sub(v * L).min(L);
                    // SAFETY: `check_tile` passed for this tile.
                    unsafe { store_vec(out, x, alpha, i, v * L, lanes) };
                }
            }
        }
    }
}

macro_rules! ukr_grid {
    ($ap:literal, $bp:literal; $($m:literal)*) => {
        [ $( [ukr_f32::<$m, 1, $ap, $bp> as UkrRaw, ukr_f32::<$m, 2, $ap, $bp> as UkrRaw] ),* ]
    };
}

static GRID: [[[[UkrRaw; 2]; MR]; 2]; 2] = [
    [ukr_grid!(false, false; 1 2 3 4 5 6), ukr_grid!(false, true; 1 2 3 4 5 6)],
    [ukr_grid!(true, false; 1 2 3 4 5 6), ukr_grid!(true, true; 1 2 3 4 5 6)],
];

/// f32 micro-kernel, 6×16, and every smaller tile.
///
/// # Panics
/// If `check_tile` fails or B is given by columns (`BPanel::Cols`).
pub fn gemm_f32_avx2_6x16(t: &MicroTile<'_, f32>, out: &mut TileOut<'_>) {
    check_tile(t, out, MR, NR);
    let (a, rs, cs, ap) = match t.a {
        APanel::Packed(d) => (d.as_ptr(), 1, t.m, true),
        APanel::Strided { data, rs, cs } => (data.as_ptr(), rs, cs, false),
    };
    let (b, ldb, bp) = match t.b {
        BPanel::Packed(d) => (d.as_ptr(), NR, true),
        BPanel::Rows { data, ld } => (data.as_ptr(), ld, false),
        BPanel::Cols { .. } => panic!("the avx2 kernel reads B packed or by rows"),
    };
    let f = GRID[ap as usize][bp as usize][t.m - 1][t.n.div_ceil(L) - 1];
    // SAFETY: reachable only through the avx2 (or a higher) table, handed out
    // only when the CPU has AVX2, FMA and F16C; `check_tile` bounds every access.
    unsafe { f(t.k, a, rs, cs, b, ldb, t.n, out) }
}

// ---------------------------------------------------------------- packing

/// Loads 8 values of an input type as f32.
trait Lanes: Copy + 'static {
    /// # Safety
    /// 8 values must be readable at `p`.
    unsafe fn load8(p: *const Self) -> __m256;
    /// # Safety
    /// `p` must be readable.
    unsafe fn one(p: *const Self) -> f32;
}

impl Lanes for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY: forwarded.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn one(p: *const f32) -> f32 {
        // SAFETY: forwarded.
        unsafe { *p }
    }
}

impl Lanes for f16 {
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> __m256 {
        // SAFETY: forwarded.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
    #[inline(always)]
    unsafe fn one(p: *const f16) -> f32 {
        // SAFETY: forwarded.
        unsafe { crate::scalar::convert::f16_bits_to_f32((*p).to_bits()) }
    }
}

impl Lanes for bf16 {
    #[inline(always)]
    unsafe fn load8(p: *const bf16) -> __m256 {
        // SAFETY: forwarded.
        unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast())))) }
    }
    #[inline(always)]
    unsafe fn one(p: *const bf16) -> f32 {
        // SAFETY: forwarded.
        unsafe { f32::from_bits(((*p).to_bits() as u32) << 16) }
    }
}

/// Copies `n ≤ 16` values from `src` (stride 1) widened into `dst`, zero past `n`
/// up to `pad`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn copy_row<T: Lanes>(src: *const T, n: usize, pad: usize, dst: *mut f32) {
    // SAFETY: the caller guarantees n readable values at `src` and `pad`
    // writable ones at `dst`.
    unsafe {
        let mut j = 0;
        while j + L <= n {
            _mm256_storeu_ps(dst.add(j), T::load8(src.add(j)));
            j += L;
        }
        for j in j..pad {
            *dst.add(j) = if j < n { T::one(src.add(j)) } else { 0.0 };
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pack_a_raw<T: Lanes>(src: *const T, ld: usize, t: Transpose, rows: usize, depth: usize, dst: *mut f32) {
    // SAFETY: the caller checked op(A)'s rows × depth window at `src` and
    // rows·depth elements at `dst`.
    unsafe {
        match t {
            Transpose::Yes => {
                for p in 0..depth {
                    copy_row(src.add(p * ld), rows, rows, dst.add(p * rows));
                }
            }
            Transpose::No => {
                for i in 0..rows {
                    for p in 0..depth {
                        *dst.add(p * rows + i) = T::one(src.add(i * ld + p));
                    }
                }
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pack_b_raw<T: Lanes>(src: *const T, ld: usize, t: Transpose, cols: usize, depth: usize, dst: *mut f32) {
    // SAFETY: as `pack_a_raw`, for op(B)'s depth × cols window and depth·NR at `dst`.
    unsafe {
        match t {
            Transpose::No => {
                for p in 0..depth {
                    copy_row(src.add(p * ld), cols, NR, dst.add(p * NR));
                }
            }
            Transpose::Yes => {
                for p in 0..depth {
                    for j in 0..NR {
                        *dst.add(p * NR + j) = if j < cols { T::one(src.add(j * ld + p)) } else { 0.0 };
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pack_a_to_f32<T: Lanes>(
    src: &[T],
    ld: usize,
    t: Transpose,
    i0: usize,
    rows: usize,
    p0: usize,
    depth: usize,
    dst: &mut [f32],
) {
    assert!((1..=MR).contains(&rows) && dst.len() >= rows * depth);
    if depth == 0 {
        return;
    }
    let (off, span) = pack::a_window(t, ld, i0, rows, p0, depth);
    assert!(off + span <= src.len(), "pack_a: window outside A");
    // SAFETY: window and destination checked above; avx2 table only.
    unsafe { pack_a_raw(src.as_ptr().add(off), ld, t, rows, depth, dst.as_mut_ptr()) }
}

#[allow(clippy::too_many_arguments)]
fn pack_b_to_f32<T: Lanes>(
    src: &[T],
    ld: usize,
    t: Transpose,
    j0: usize,
    cols: usize,
    p0: usize,
    depth: usize,
    nr: usize,
    dst: &mut [f32],
) {
    assert!(nr == NR && (1..=NR).contains(&cols) && dst.len() >= NR * depth);
    if depth == 0 {
        return;
    }
    let (off, span) = pack::b_window(t, ld, j0, cols, p0, depth);
    assert!(off + span <= src.len(), "pack_b: window outside B");
    // SAFETY: window and destination checked above; avx2 table only.
    unsafe { pack_b_raw(src.as_ptr().add(off), ld, t, cols, depth, dst.as_mut_ptr()) }
}

/// Packs an f32 A micro-panel.
#[allow(clippy::too_many_arguments)]
pub fn pack_a_f32_avx2(s: &[f32], ld: usize, t: Transpose, i0: usize, r: usize, p0: usize, d: usize, o: &mut [f32]) {
    pack_a_to_f32(s, ld, t, i0, r, p0, d, o)
}

/// Packs an f32 B micro-panel.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_f32_avx2(
    s: &[f32],
    ld: usize,
    t: Transpose,
    j0: usize,
    c: usize,
    p0: usize,
    d: usize,
    nr: usize,
    o: &mut [f32],
) {
    pack_b_to_f32(s, ld, t, j0, c, p0, d, nr, o)
}

/// Packs an f16 A micro-panel, widened to f32.
#[allow(clippy::too_many_arguments)]
pub fn pack_a_f16_f32_avx2(
    s: &[f16],
    ld: usize,
    t: Transpose,
    i0: usize,
    r: usize,
    p0: usize,
    d: usize,
    o: &mut [f32],
) {
    pack_a_to_f32(s, ld, t, i0, r, p0, d, o)
}

/// Packs an f16 B micro-panel, widened to f32.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_f16_f32_avx2(
    s: &[f16],
    ld: usize,
    t: Transpose,
    j0: usize,
    c: usize,
    p0: usize,
    d: usize,
    nr: usize,
    o: &mut [f32],
) {
    pack_b_to_f32(s, ld, t, j0, c, p0, d, nr, o)
}

/// Packs a bf16 A micro-panel, widened to f32.
#[allow(clippy::too_many_arguments)]
pub fn pack_a_bf16_f32_avx2(
    s: &[bf16],
    ld: usize,
    t: Transpose,
    i0: usize,
    r: usize,
    p0: usize,
    d: usize,
    o: &mut [f32],
) {
    pack_a_to_f32(s, ld, t, i0, r, p0, d, o)
}

/// Packs a bf16 B micro-panel, widened to f32.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_bf16_f32_avx2(
    s: &[bf16],
    ld: usize,
    t: Transpose,
    j0: usize,
    c: usize,
    p0: usize,
    d: usize,
    nr: usize,
    o: &mut [f32],
) {
    pack_b_to_f32(s, ld, t, j0, c, p0, d, nr, o)
}

/// The avx2 path's GEMM registry.
pub(crate) fn table() -> crate::gemm::Table {
    let shape = KernelShape { mr: MR, nr: NR, kpack: 1, bytes_per_k: 4 };
    let ukr: Kernel<crate::gemm::UkrFn<f32>> = Kernel { f: gemm_f32_avx2_6x16, name: "gemm_f32_avx2_6x16" };
    crate::gemm::Table {
        sgemm: Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack_a_f32_avx2, name: "pack_a_f32_avx2" },
            pack_b: Kernel { f: pack_b_f32_avx2, name: "pack_b_f32_avx2" },
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
            pack_a: Kernel { f: pack_a_f16_f32_avx2, name: "pack_a_f16_f32_avx2" },
            pack_b: Kernel { f: pack_b_f16_f32_avx2, name: "pack_b_f16_f32_avx2" },
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
            pack_a: Kernel { f: pack_a_bf16_f32_avx2, name: "pack_a_bf16_f32_avx2" },
            pack_b: Kernel { f: pack_b_bf16_f32_avx2, name: "pack_b_bf16_f32_avx2" },
            unpacked: true,
            tall: None,
            narrow: None,
            dot: None,
            shallow: None,
            wide: None,
        }),
    }
}

/// Register-resident FMA loop: 12 independent ymm chains, `iters` rounds
/// (written in assembly so that nothing but the FMAs runs in the loop).
#[target_feature(enable = "avx2,fma")]
fn fma_loop_avx2(iters: u64) {
    // SAFETY: register-only arithmetic; the features are enabled.
    unsafe {
        core::arch::asm!(
            "vxorps xmm14, xmm14, xmm14",
            "vxorps xmm15, xmm15, xmm15",
            "2:",
            "vfmadd231ps ymm0, ymm14, ymm15",
            "vfmadd231ps ymm1, ymm14, ymm15",
            "vfmadd231ps ymm2, ymm14, ymm15",
            "vfmadd231ps ymm3, ymm14, ymm15",
            "vfmadd231ps ymm4, ymm14, ymm15",
            "vfmadd231ps ymm5, ymm14, ymm15",
            "vfmadd231ps ymm6, ymm14, ymm15",
            "vfmadd231ps ymm7, ymm14, ymm15",
            "vfmadd231ps ymm8, ymm14, ymm15",
            "vfmadd231ps ymm9, ymm14, ymm15",
            "vfmadd231ps ymm10, ymm14, ymm15",
            "vfmadd231ps ymm11, ymm14, ymm15",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) iters.max(1) => _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        );
    }
}

/// FLOPs of `iters` rounds of the ymm FMA peak loop (and its result).
pub(crate) fn fma_peak(iters: u64) -> Option<(f64, f32)> {
    if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")) {
        return None;
    }
    // SAFETY: the features were just detected.
    unsafe { fma_loop_avx2(iters) };
    Some((iters.max(1) as f64 * 12.0 * 8.0 * 2.0, 0.0))
}
