//! AVX-512 GEMM: a 14×32 f32 micro-kernel on all 32 zmm registers (28
//! accumulators, two B vectors, one broadcast A value), every edge tile
//! generated from the same body by const generics, and packing routines;
//! for large f32 products a 4×96 kernel reading A's rows in place.
//!
//! f16 and bf16 inputs are widened while packing into the f32 kernel (FP32
//! accumulation); with AVX-512-BF16, bgemm instead packs bf16 pairs and runs
//! a `vdpbf16ps` 14×32 kernel, which treats subnormal bf16 inputs as zero and
//! flushes subnormal partial results (its bound holds for normal inputs), and
//! for shallow products a `vdpbf16ps` kernel reading A's pairs in place with
//! the same dot products.
//! NaN and ±Inf propagate as IEEE FMA says; the store applies the tile's
//! epilogue (see `gemm::TileOut`): f16 results via `vcvtps2ph` (round to
//! nearest even, subnormals kept), bf16 by integer rounding (round to nearest
//! even, subnormals kept, NaN quieted).

use core::arch::x86_64::*;

use half::{bf16, f16};

use crate::dispatch::Kernel;
use crate::gemm::{
    APanel, BPanel, Dot, Dst, Impl, KernelShape, MicroTile, Path, Prev, RowsTile, Shallow, ShallowTile, Tall, TileOut,
    Transpose, Wide, check_tile, check_tile_transposed, pack, plain_dst,
};

/// Rows of the register block.
pub const MR: usize = 14;
/// Columns of the register block (two zmm).
pub const NR: usize = 32;
pub(crate) const L: usize = 16;

/// Lane mask for `cols` valid lanes of vector `v` (zero when none).
#[inline(always)]
pub(crate) fn lane_mask(cols: usize, v: usize) -> __mmask16 {
    let c = cols.saturating_sub(v * L).min(L);
    ((1u32 << c) - 1) as __mmask16
}

// ---------------------------------------------------------------- store

/// Applies a tile's store to one vector of results (`lanes` valid).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
#[inline]
unsafe fn store_vec(out: &mut TileOut<'_>, acc: __m512, alpha: __m512, i: usize, j: usize, mask: __mmask16) {
    // SAFETY: `check_tile` established that row i, columns j..j+lanes of the
    // destination, the scratch and the bias are inside their slices; masked
    // loads and stores touch no other lane.
    unsafe {
        let mut v = match out.prev {
            Prev::None => _mm512_mul_ps(acc, alpha),
            Prev::Beta(beta) => {
                let Dst::F32(c, ld) = &out.dst else { unreachable!() };
                let old = _mm512_maskz_loadu_ps(mask, c.as_ptr().add(i * ld + j));
                _mm512_fmadd_ps(acc, alpha, _mm512_mul_ps(_mm512_set1_ps(beta), old))
            }
            Prev::Dst => {
                let Dst::F32(c, ld) = &out.dst else { unreachable!() };
                let old = _mm512_maskz_loadu_ps(mask, c.as_ptr().add(i * ld + j));
                _mm512_fmadd_ps(acc, alpha, old)
            }
            Prev::From { src, ld } => {
                let old = _mm512_maskz_loadu_ps(mask, src.as_ptr().add(i * ld + j));
                _mm512_fmadd_ps(acc, alpha, old)
            }
        };
        if let Some(bias) = out.bias {
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(j)));
        }
        if out.relu {
            // x > 0 or NaN keeps x; everything else (incl. −0) becomes +0.
            let keep = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(v, _mm512_setzero_ps());
            v = _mm512_maskz_mov_ps(keep, v);
        }
        match &mut out.dst {
            Dst::F32(c, ld) => _mm512_mask_storeu_ps(c.as_mut_ptr().add(i * *ld + j), mask, v),
            Dst::F16(c, ld) => {
                let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
                _mm256_mask_storeu_epi16(c.as_mut_ptr().add(i * *ld + j).cast::<i16>(), mask, h);
            }
            Dst::Bf16(c, ld) => {
                let h = f32_to_bf16_rne(v);
                _mm256_mask_storeu_epi16(c.as_mut_ptr().add(i * *ld + j).cast::<i16>(), mask, h);
            }
        }
    }
}

/// Round to nearest even, subnormals kept, NaN quieted: `half`'s `bf16::from_f32`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn f32_to_bf16_rne(v: __m512) -> __m256i {
    let bits = _mm512_castps_si512(v);
    let hi = _mm512_srli_epi32::<16>(bits);
    let lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))));
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    let quiet = _mm512_or_si512(hi, _mm512_set1_epi32(0x40));
    _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rounded, nan, quiet))
}

/// Asks for the destination tile's lines (and the scratch tile it adds)
/// before the depth loop, so the store does not wait on memory: C was last
/// touched a whole block of B ago and has left L1 and often L2.
#[inline(always)]
pub(crate) fn prefetch_tile<const M: usize, const NV: usize>(out: &TileOut<'_>) {
    fn rows<T, const M: usize, const NV: usize>(p: *const T, ld: usize) {
        let bytes = NV * L * core::mem::size_of::<T>();
        for i in 0..M {
            let row = p.wrapping_add(i * ld).cast::<i8>();
            for line in (0..bytes).step_by(64) {
                // SAFETY: a prefetch never faults; the address is only a hint.
                unsafe { _mm_prefetch::<_MM_HINT_ET0>(row.wrapping_add(line)) };
            }
        }
    }
    match &out.dst {
        Dst::F32(c, ld) => rows::<f32, M, NV>(c.as_ptr(), *ld),
        Dst::F16(c, ld) => rows::<f16, M, NV>(c.as_ptr(), *ld),
        Dst::Bf16(c, ld) => rows::<bf16, M, NV>(c.as_ptr(), *ld),
    }
    if let Prev::From { src, ld } = out.prev {
        rows::<f32, M, NV>(src.as_ptr(), ld);
    }
}

/// `prefetch_tile` for a transposed tile: `rows` rows of C, `cols` columns.
#[inline(always)]
pub(crate) fn prefetch_tile_t(out: &TileOut<'_>, rows: usize, cols: usize) {
    fn lines<T>(p: *const T, ld: usize, rows: usize, cols: usize) {
        // Rows that follow each other (C of n columns, ldc = n) are one span
        // of lines: one prefetch per line instead of one per row.
        let (rows, cols) = if ld == cols { (1, rows * cols) } else { (rows, cols) };
        let bytes = cols * core::mem::size_of::<T>();
        for i in 0..rows {
            let row = p.wrapping_add(i * ld).cast::<i8>();
            for line in (0..bytes).step_by(64) {
                // SAFETY: a prefetch never faults; the address is only a hint.
                unsafe { _mm_prefetch::<_MM_HINT_ET0>(row.wrapping_add(line)) };
            }
        }
    }
    match &out.dst {
        Dst::F32(c, ld) => lines(c.as_ptr(), *ld, rows, cols),
        Dst::F16(c, ld) => lines(c.as_ptr(), *ld, rows, cols),
        Dst::Bf16(c, ld) => lines(c.as_ptr(), *ld, rows, cols),
    }
    if let Prev::From { src, ld } = out.prev {
        lines(src.as_ptr(), ld, rows, cols);
    }
}

/// Stores rows `i..i + R` of a kernel's results (`n` valid columns) into the
/// plain f32 destination `(C, ldc, accumulate)` of [`plain_dst`], straight
/// from the registers: inlined into each kernel body, so there is no call
/// and no copy of the accumulators through memory (an out-of-line store made
/// the kernels keep them on the stack: a 1.8 KB clear, 28 loads and 28
/// stores per tile, most of a tile's cost when the depth is short).
/// `alpha == 1` skips the scaling (`1·x` and `fma(x, 1, c)` round exactly
/// as `x` and `x + c`).
///
/// `inline(always)` and no `#[target_feature]` of its own (which stable Rust
/// does not allow together): as a `#[target_feature]` `#[inline]` function
/// it was left out of line in most kernel instances, with the accumulators
/// cleared by `memset` and passed through memory. Its intrinsics take the
/// features of the kernel it is inlined into.
///
/// # Safety
/// Rows `i..i + R`, columns `..n` of the destination must be inside it, and
/// the caller must enable AVX-512 F.
#[inline(always)]
pub(crate) unsafe fn store_plain<const R: usize, const NV: usize>(
    acc: &[[__m512; NV]; R],
    n: usize,
    i: usize,
    (p, ld, accumulate): (*mut f32, usize, bool),
    alpha: f32,
) {
    let one = alpha == 1.0;
    // SAFETY: the caller enables AVX-512 F.
    let alpha = unsafe { _mm512_set1_ps(alpha) };
    for (r, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            let mask = lane_mask(n, v);
            // SAFETY: the caller guarantees row i + r, columns v·16.. under
            // `mask` inside the destination.
            unsafe {
                let q = p.add((i + r) * ld + v * L);
                let y = match (accumulate, one) {
                    (false, true) => x,
                    (false, false) => _mm512_mul_ps(x, alpha),
                    (true, true) => _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, q)),
                    (true, false) => _mm512_fmadd_ps(x, alpha, _mm512_maskz_loadu_ps(mask, q)),
                };
                if mask == u16::MAX {
                    _mm512_storeu_ps(q, y);
                } else {
                    _mm512_mask_storeu_ps(q, mask, y);
                }
            }
        }
    }
}

/// Stores a kernel's M×(NV·16) tile (`n` valid columns) into `out`: a plain
/// f32 tile through [`store_plain`], every other epilogue through
/// [`store_tile`] (out of line: it runs once per tile at most, and its
/// per-vector dispatch would bloat every kernel instance). Inlined as
/// [`store_plain`] is, for the same reason.
///
/// # Safety
/// `check_tile` must have passed for the tile, and the caller must enable
/// the avx512 path's features.
#[inline(always)]
pub(crate) unsafe fn finish_tile<const M: usize, const NV: usize>(
    acc: &[[__m512; NV]; M],
    n: usize,
    out: &mut TileOut<'_>,
) {
    // SAFETY: forwarded from the caller (`check_tile` passed).
    unsafe {
        match plain_dst(out) {
            Some(dst) => store_plain(acc, n, 0, dst, out.alpha),
            None => {
                // A copy, so that only the copy's address escapes to the
                // call: passing `acc` itself made LLVM keep the accumulators
                // of some kernel instances in memory through the depth loop
                // (cleared by `memset`, FMAs on stack operands).
                let spill = *acc;
                store_tile(&spill, n, out)
            }
        }
    }
}

/// Stores a tile of Cᵀ (`$acc: [[__m512; NV]; M]`, M ≤ 16, NV ≤ 2: row i
/// of the tile is column i of C, `$n` valid columns are rows of C) into
/// `$out`, which describes the C tile (`$n` rows × M columns). Each
/// 16-column block is transposed in registers (`transpose16`), so every row
/// of C is one vector of M lanes, stored as `store_plain` stores a row: the
/// same arithmetic, so a transposed tile rounds exactly as the plain one.
/// `$rows: Option<&[[u8; L]; 2]>` names the row of C each lane of the two
/// accumulator vectors holds when they are not in order (the in-place pair
/// kernel's unpacked columns): the transposed rows are stored to those rows
/// instead of permuting the accumulators first. The blocks are taken with
/// constant indices (no loop over them): a run-time index into the
/// accumulators made LLVM keep them on the stack, cleared by `memset`.
macro_rules! finish_tile_t {
    ($acc:ident, $m:expr, $n:expr, $out:expr) => {
        finish_tile_t!($acc, $m, $n, $out, None)
    };
    ($acc:ident, $m:expr, $n:expr, $out:expr, $rows:expr) => {{
        let out: &mut TileOut<'_> = $out;
        let (m, n): (usize, usize) = ($m, $n);
        let rows: Option<&[[u8; L]; 2]> = $rows;
        // The mask goes through `black_box`: with M = 1 it is the constant 1,
        // and LLVM then wrote two bf16 lanes for the masked truncating store
        // of the bf16 epilogue (`vpmovdw` under a one-lane mask), so a C of
        // one column had its padding overwritten (tests/gemm.rs, narrow
        // products with n = 1 and a bf16 output).
        let mask = core::hint::black_box(lane_mask(m, 0));
        let plain = plain_dst(out);
        let one = out.alpha == 1.0;
        let nv = $acc[0].len();
        let (mut r0, mut r1) = ([_mm512_setzero_ps(); L], [_mm512_setzero_ps(); L]);
        for (i, row) in $acc.iter().enumerate() {
            r0[i] = row[0];
            if nv > 1 {
                r1[i] = row[nv - 1];
            }
        }
        macro_rules! block {
            ($r:ident, $v:literal) => {
                let t = transpose16(&$r);
                match plain {
                    // Overwritten f32 rows (the common case) in a loop of its
                    // own, small enough to unroll, so `t` stays in registers.
                    Some((p, ld, false)) if one => {
                        for (q, &x) in t.iter().enumerate() {
                            let i = match rows {
                                Some(map) => usize::from(map[$v][q]),
                                None => $v * L + q,
                            };
                            if i < n {
                                // SAFETY: `check_tile_transposed` established
                                // that row i, columns 0..m of the destination
                                // are inside it.
                                unsafe { _mm512_mask_storeu_ps(p.add(i * ld), mask, x) };
                            }
                        }
                    }
                    // SAFETY: `check_tile_transposed` passed for the tile (the
                    // caller's contract).
                    _ => unsafe { store_t_general(&t, rows, $v, n, m, out) },
                }
            };
        }
        block!(r0, 0);
        if nv > 1 {
            block!(r1, 1);
        }
    }};
}

/// The general case of `finish_tile_t!` for one transposed 16-column block
/// `t` (block `v` of the tile): beta, alpha, the epilogue and f16/bf16
/// outputs, row by row. Out of line, so that the common overwritten f32 case
/// inlined in the kernel keeps its block in registers (with this loop in the
/// kernel, LLVM stored every transposed block to the stack for it).
///
/// # Safety
/// `check_tile_transposed` must have passed for the tile `out` describes
/// (`n` rows, `m` columns of C), and the CPU must have the avx512 features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
#[inline(never)]
unsafe fn store_t_general(
    t: &[__m512; L],
    rows: Option<&[[u8; L]; 2]>,
    v: usize,
    n: usize,
    m: usize,
    out: &mut TileOut<'_>,
) {
    // Through `black_box` as in `finish_tile_t!`.
    let mask = core::hint::black_box(lane_mask(m, 0));
    let plain = plain_dst(out);
    let one = out.alpha == 1.0;
    let alpha = _mm512_set1_ps(out.alpha);
    for (q, &x) in t.iter().enumerate() {
        let i = match rows {
            Some(map) => usize::from(map[v][q]),
            None => v * L + q,
        };
        if i >= n {
            continue;
        }
        match plain {
            // SAFETY: `check_tile_transposed` established that row i,
            // columns 0..m of the destination are inside it.
            Some((p, ld, accumulate)) => unsafe {
                let q = p.add(i * ld);
                let y = match (accumulate, one) {
                    (false, true) => x,
                    (false, false) => _mm512_mul_ps(x, alpha),
                    (true, true) => _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, q)),
                    (true, false) => _mm512_fmadd_ps(x, alpha, _mm512_maskz_loadu_ps(mask, q)),
                };
                _mm512_mask_storeu_ps(q, mask, y);
            },
            // SAFETY: as above, for the destination, scratch and bias.
            None => unsafe { store_vec(out, x, alpha, i, 0, mask) },
        }
    }
}

/// The general store: bias, ReLU, beta, the f32 scratch, f16/bf16 rounding.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
#[inline(never)]
pub(crate) unsafe fn store_tile<const M: usize, const NV: usize>(
    acc: &[[__m512; NV]; M],
    n: usize,
    out: &mut TileOut<'_>,
) {
    let alpha = _mm512_set1_ps(out.alpha);
    for (i, row) in acc.iter().enumerate() {
        for (v, &a) in row.iter().enumerate() {
            // SAFETY: forwarded from the caller (`check_tile` passed).
            unsafe { store_vec(out, a, alpha, i, v * L, lane_mask(n, v)) };
        }
    }
}

// ---------------------------------------------------------------- f32 kernel

/// Depth below which the f32 kernel does not prefetch its C tile: the loop
/// is too short to hide the lines, and the prefetches only queue ahead of
/// the B loads (k = 10 products measured 3–5% faster without them).
const PREFETCH_MIN_K: usize = 32;

type UkrRaw<P> = unsafe fn(usize, *const P, usize, usize, *const P, usize, usize, &mut TileOut<'_>);

/// The f32 kernel body for an M×(NV·16) tile. `APACK`: A packed `[p][i]`
/// (stride M), else strided `(rs, cs)`; `BPACK`: B packed with row stride NR
/// (zero-padded), else rows of stride `ldb` read under the column mask.
/// `TRANS`: the tile is one of Cᵀ, stored transposed (`finish_tile_t!`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn ukr_f32<const M: usize, const NV: usize, const APACK: bool, const BPACK: bool, const TRANS: bool>(
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
    let mut acc = [[_mm512_setzero_ps(); NV]; M];
    if k >= PREFETCH_MIN_K {
        if TRANS {
            prefetch_tile_t(out, n, M);
        } else {
            prefetch_tile::<M, NV>(out);
        }
    }
    let (mut ap, mut bp) = (a, b);
    for _ in 0..k {
        // SAFETY: `check_tile` established that k steps of A (rs, cs) and B
        // (ldb, n columns; NR when packed) lie inside their slices.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = if !BPACK && v == NV - 1 {
                    _mm512_maskz_loadu_ps(last, bp.add(v * L))
                } else {
                    _mm512_loadu_ps(bp.add(v * L))
                };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*ap.add(i * rs));
                for (c, x) in row.iter_mut().zip(&bv) {
                    *c = _mm512_fmadd_ps(ai, *x, *c);
                }
            }
            ap = ap.wrapping_add(cs);
            bp = bp.wrapping_add(ldb);
        }
    }
    if TRANS {
        finish_tile_t!(acc, M, n, out);
    } else {
        // SAFETY: `check_tile` passed for this tile.
        unsafe { finish_tile(&acc, n, out) };
    }
}

macro_rules! ukr_grid {
    ($f:ident, $P:ty, $ap:literal, $bp:literal, $t:literal; $($m:literal)*) => {
        [ $( [$f::<$m, 1, $ap, $bp, $t> as UkrRaw<$P>, $f::<$m, 2, $ap, $bp, $t> as UkrRaw<$P>] ),* ]
    };
}

static F32_GRID: [[[[UkrRaw<f32>; 2]; MR]; 2]; 2] = [
    [
        ukr_grid!(ukr_f32, f32, false, false, false; 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
        ukr_grid!(ukr_f32, f32, false, true, false; 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
    ],
    [
        ukr_grid!(ukr_f32, f32, true, false, false; 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
        ukr_grid!(ukr_f32, f32, true, true, false; 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
    ],
];

/// The f32 kernel with the transposed store, packed operands only.
static F32_T_GRID: [[UkrRaw<f32>; 2]; MR] = ukr_grid!(ukr_f32, f32, true, true, true; 1 2 3 4 5 6 7 8 9 10 11 12 13 14);

/// Operands as raw parts: `(a, rs, cs, a_packed, b, ldb, b_packed)`.
///
/// # Panics
/// If B is given by columns (`BPanel::Cols`, read by the shallow kernel only).
pub(crate) fn raw_parts<P>(t: &MicroTile<'_, P>) -> (*const P, usize, usize, bool, *const P, usize, bool) {
    let (a, rs, cs, ap) = match t.a {
        APanel::Packed(d) => (d.as_ptr(), 1, t.m, true),
        APanel::Strided { data, rs, cs } => (data.as_ptr(), rs, cs, false),
    };
    let (b, ldb, bp) = match t.b {
        BPanel::Packed(d) => (d.as_ptr(), NR, true),
        BPanel::Rows { data, ld } => (data.as_ptr(), ld, false),
        BPanel::Cols { .. } => panic!("B by columns is read by the shallow kernel only"),
    };
    (a, rs, cs, ap, b, ldb, bp)
}

/// f32 micro-kernel, 14×32, and every smaller tile.
///
/// # Panics
/// If `check_tile` fails.
pub fn gemm_f32_avx512_14x32(t: &MicroTile<'_, f32>, out: &mut TileOut<'_>) {
    check_tile(t, out, MR, NR);
    let (a, rs, cs, ap, b, ldb, bp) = raw_parts(t);
    let f = F32_GRID[ap as usize][bp as usize][t.m - 1][t.n.div_ceil(L) - 1];
    // SAFETY: this kernel is reachable only through the avx512 table, handed
    // out only when the CPU has AVX-512 F/BW/VL/DQ; `check_tile` bounds every
    // access the kernel makes.
    unsafe { f(t.k, a, rs, cs, b, ldb, t.n, out) }
}

/// f32 micro-kernel for narrow products: a tile of Cᵀ (up to 14 columns of
/// C by 32 rows), stored transposed into the C tile `out` describes, with
/// the FMAs of [`gemm_f32_avx512_14x32`] (so the same bits).
///
/// # Panics
/// If `check_tile_transposed` fails or an operand is not packed.
pub fn gemm_f32_avx512_14x32_t(t: &MicroTile<'_, f32>, out: &mut TileOut<'_>) {
    check_tile_transposed(t, out, MR, NR);
    let (a, _, _, ap, b, _, bp) = raw_parts(t);
    assert!(ap && bp, "the transposed kernel reads packed panels only");
    let f = F32_T_GRID[t.m - 1][t.n.div_ceil(L) - 1];
    // SAFETY: this kernel is reachable only through the avx512 table, handed
    // out only when the CPU has AVX-512 F/BW/VL/DQ; `check_tile_transposed`
    // bounds every access the kernel makes.
    unsafe { f(t.k, a, 1, t.m, b, NR, t.n, out) }
}

// ---------------------------------------------------------------- wide f32 kernel

/// Rows of the wide kernel's register block.
pub const WIDE_MR: usize = 4;
/// Columns of the wide kernel's register block (six zmm).
pub const WIDE_NR: usize = 96;

type WideRaw = unsafe fn(usize, *const f32, usize, *const f32, usize, &mut TileOut<'_>);

/// The wide kernel body for an M×(NV·16) tile: A's M rows read in place
/// (`lda` apart, depth contiguous), B packed with row stride `WIDE_NR`
/// (zero-padded), so each depth step is NV vector loads, M broadcasts and
/// M·NV FMAs (24 accumulators + 6 B vectors + a broadcast for 4×96).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
unsafe fn wide_f32<const M: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; M];
    if k >= PREFETCH_MIN_K {
        prefetch_tile::<M, NV>(out);
    }
    let mut bp = b;
    for p in 0..k {
        // SAFETY: `check_tile` established that k depth steps of M rows of A
        // (`lda` apart) and k·WIDE_NR packed B values lie inside their slices.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(bp.add(v * L));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(i * lda + p));
                for (c, x) in row.iter_mut().zip(&bv) {
                    *c = _mm512_fmadd_ps(ai, *x, *c);
                }
            }
            bp = bp.add(WIDE_NR);
        }
    }
    // SAFETY: `check_tile` passed for this tile.
    unsafe { finish_tile(&acc, n, out) };
}

macro_rules! wide_grid {
    ($($m:literal)*) => {
        [ $( [wide_f32::<$m, 1> as WideRaw, wide_f32::<$m, 2>, wide_f32::<$m, 3>, wide_f32::<$m, 4>,
              wide_f32::<$m, 5>, wide_f32::<$m, 6>] ),* ]
    };
}

static WIDE_GRID: [[WideRaw; WIDE_NR / L]; WIDE_MR] = wide_grid!(1 2 3 4);

/// f32 wide kernel, 4×96, and every smaller tile: A strided with unit depth
/// stride (rows read in place), B packed by [`pack_b_wide_f32_avx512`].
/// NaN, ±Inf, ±0 and subnormals go through IEEE FMA as in the 14×32 kernel.
///
/// # Panics
/// If `check_tile` fails for a 4×96 block, A is packed or has a depth
/// stride other than 1, or B is not packed.
pub fn gemm_f32_avx512_wide_4x96(t: &MicroTile<'_, f32>, out: &mut TileOut<'_>) {
    check_tile(t, out, WIDE_MR, WIDE_NR);
    let (a, lda) = match t.a {
        APanel::Strided { data, rs, cs: 1 } => (data.as_ptr(), rs),
        _ => panic!("the wide kernel reads A's rows in place (depth stride 1)"),
    };
    let BPanel::Packed(b) = t.b else { panic!("the wide kernel reads packed B panels") };
    let f = WIDE_GRID[t.m - 1][t.n.div_ceil(L) - 1];
    // SAFETY: this kernel is reachable only through the avx512 table, handed
    // out only when the CPU has AVX-512 F/BW/VL/DQ; `check_tile` bounds every
    // access the kernel makes.
    unsafe { f(t.k, a, lda, b.as_ptr(), t.n, out) }
}

/// Packs an f32 B micro-panel of the wide kernel (`nr` = [`WIDE_NR`]).
///
/// # Panics
/// If `nr` is not `WIDE_NR`, `c` is outside 1..=nr, or a window is outside
/// its slice.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_wide_f32_avx512(
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
    pack_b_to_f32::<_, WIDE_NR>(s, ld, t, j0, c, p0, d, nr, o)
}

/// Packs an f16 B micro-panel `WIDE_NR` columns wide for the wide kernel,
/// widened to f32 (exactly, so hgemm on the wide kernel gives the bits of
/// its MR×NR kernel).
#[allow(clippy::too_many_arguments)]
pub fn pack_b_wide_f16_avx512(
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
    pack_b_to_f32::<_, WIDE_NR>(s, ld, t, j0, c, p0, d, nr, o)
}

// ---------------------------------------------------------------- shallow f32 kernel

/// The deepest product the shallow kernel takes: its B panel (2·K zmm), four
/// rows of accumulators and a broadcast fit the 32 registers up to K = 11;
/// at K = 12 it runs three rows at a time.
pub const TALL_MAX_K: usize = 12;

type TallRaw = unsafe fn(usize, *const f32, usize, usize, *const f32, usize, usize, &mut TileOut<'_>);

/// How the shallow kernel reads its B panel.
const B_PACKED: u8 = 0;
const B_ROWS: u8 = 1;
/// op(B) stored n×k (`BPanel::Cols`): 16 columns of K contiguous values at a
/// time, transposed in registers, instead of a transposing pack into a
/// buffer that the kernel reads back (igrad3, G·Wᵀ with W 512×10).
const B_COLS: u8 = 2;

/// The shallow f32 body: B (K depth steps × NV·16 columns, packed with row
/// stride NR, rows of stride `ldb` under the column mask, or columns of
/// stride `ldb`, as `BMODE` says) is loaded once,
/// then rows of A (strided `(rs, cs)`) run against it R at a time. Per
/// element the FMAs are those of `ukr_f32`, in the same order (from +0,
/// depth step 0 first), so the results are bit-identical to it.
///
/// `tall_rows` stays out of line, so each group of R rows reads the loaded
/// panel back from L1 rather than from registers: inlined (`inline(always)`),
/// the compiler spilled accumulators and re-tested the store's branches per
/// vector, and igrad3 (128×10×512) ran at 59–70 against 74–75 GFLOP/s; eight
/// or twelve rows per group ran at 62 and 57.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn tall_f32<const K: usize, const NV: usize, const R: usize, const BMODE: u8>(
    m: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let ldb = if BMODE == B_PACKED { NR } else { ldb };
    let mut bv = [[_mm512_setzero_ps(); NV]; K];
    if BMODE == B_COLS {
        let kmask = lane_mask(K, 0);
        for v in 0..NV {
            let mut r = [_mm512_setzero_ps(); L];
            for (j, x) in r.iter_mut().enumerate().take(n.saturating_sub(v * L)) {
                // SAFETY: `check_tile` established that n columns of K
                // values, `ldb` apart, lie inside the slice.
                *x = unsafe { _mm512_maskz_loadu_ps(kmask, b.add((v * L + j) * ldb)) };
            }
            let t = transpose16(&r);
            for (row, x) in bv.iter_mut().zip(t) {
                row[v] = x;
            }
        }
    } else {
        for (p, row) in bv.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                // SAFETY: `check_tile` established that K rows of B (ldb, n
                // columns; NR when packed) lie inside the slice.
                *x = unsafe {
                    if BMODE == B_PACKED {
                        _mm512_loadu_ps(b.add(p * ldb + v * L))
                    } else {
                        _mm512_maskz_loadu_ps(lane_mask(n, v), b.add(p * ldb + v * L))
                    }
                };
            }
        }
    }
    let plain = plain_dst(out);
    let mut i = 0;
    // Full-width tiles overwritten (beta = 0, no bias or ReLU: the input
    // gradient of a small layer): every group of R rows in one loop with
    // the panel in registers.
    if let Some((c, ldc, false)) = plain.filter(|_| n == NV * L && K * NV + R * NV + 3 <= 32) {
        let groups = m / R;
        // SAFETY: rows 0..groups·R are below m (`check_tile` bounds A and C for m rows).
        unsafe {
            match (out.alpha == 1.0, cs == 1) {
                (true, true) => tall_groups::<K, NV, R, true, true>(&bv, groups, a, rs, 1, c, ldc, 1.0),
                (true, false) => tall_groups::<K, NV, R, true, false>(&bv, groups, a, rs, cs, c, ldc, 1.0),
                (false, true) => tall_groups::<K, NV, R, false, true>(&bv, groups, a, rs, 1, c, ldc, out.alpha),
                (false, false) => tall_groups::<K, NV, R, false, false>(&bv, groups, a, rs, cs, c, ldc, out.alpha),
            }
        }
        i = groups * R;
    }
    while i + R <= m {
        // SAFETY: rows i..i+R are below m (`check_tile` bounds A and C for m rows).
        unsafe { tall_rows::<K, NV, R>(&bv, a.add(i * rs), rs, cs, n, i, plain, out) };
        i += R;
    }
    while i < m {
        // SAFETY: as above, one row.
        unsafe { tall_rows::<K, NV, 1>(&bv, a.add(i * rs), rs, cs, n, i, plain, out) };
        i += 1;
    }
}

/// `groups` groups of R rows of the shallow kernel from row 0, every tile
/// full (NV·16 columns) and overwritten with `alpha·acc` (`ONE`: alpha = 1,
/// stored as is; `UNIT`: `cs` = 1, A's rows contiguous, so every broadcast
/// is a constant offset from its row instead of one of K·R addresses the
/// compiler would keep on the stack): the FMAs and the rounding of [`tall_rows`] and
/// [`store_plain`], with the panel copied into locals so that it stays in
/// registers across the groups (2·K + 2·R + 2 ≤ 32 zmm for NV = 2) and no
/// call, spill or store dispatch per group.
///
/// # Safety
/// `groups·R` rows × K depth steps of A at `a` (strides `rs`, `cs`) and rows
/// `0..groups·R`, columns `0..NV·16` of C at `c` (row stride `ldc`) must be in
/// bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn tall_groups<const K: usize, const NV: usize, const R: usize, const ONE: bool, const UNIT: bool>(
    bv: &[[__m512; NV]; K],
    groups: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
) {
    let cs = if UNIT { 1 } else { cs };
    let b = *bv;
    let alpha = _mm512_set1_ps(alpha);
    for g in 0..groups {
        // SAFETY: the caller guarantees the group's rows of A and C.
        unsafe {
            let a = a.add(g * R * rs);
            let mut acc = [[_mm512_setzero_ps(); NV]; R];
            for (p, bp) in b.iter().enumerate() {
                for (r, row) in acc.iter_mut().enumerate() {
                    let ai = _mm512_set1_ps(*a.add(r * rs + p * cs));
                    for (x, y) in row.iter_mut().zip(bp) {
                        *x = _mm512_fmadd_ps(ai, *y, *x);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                let q = c.add((g * R + r) * ldc);
                for (v, &x) in row.iter().enumerate() {
                    _mm512_storeu_ps(q.add(v * L), if ONE { x } else { _mm512_mul_ps(x, alpha) });
                }
            }
        }
    }
}

/// R rows of the shallow kernel, starting at row `i` (`a` at its first element).
///
/// # Safety
/// R rows × K depth steps of A at `a` (strides `rs`, `cs`) and rows
/// `i..i + R` of the destination must be in bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tall_rows<const K: usize, const NV: usize, const R: usize>(
    bv: &[[__m512; NV]; K],
    a: *const f32,
    rs: usize,
    cs: usize,
    n: usize,
    i: usize,
    plain: Option<(*mut f32, usize, bool)>,
    out: &mut TileOut<'_>,
) {
    // SAFETY: the caller guarantees R rows × K depth steps of A and rows
    // i..i+R of the destination.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NV]; R];
        for (p, b) in bv.iter().enumerate() {
            for (r, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(r * rs + p * cs));
                for (c, x) in row.iter_mut().zip(b) {
                    *c = _mm512_fmadd_ps(ai, *x, *c);
                }
            }
        }
        match plain {
            Some(dst) => store_plain(&acc, n, i, dst, out.alpha),
            None => {
                let alpha = _mm512_set1_ps(out.alpha);
                for (r, row) in acc.iter().enumerate() {
                    for (v, &x) in row.iter().enumerate() {
                        store_vec(out, x, alpha, i + r, v * L, lane_mask(n, v));
                    }
                }
            }
        }
    }
}

macro_rules! tall_grid {
    ($($k:literal $r:literal),*) => {
        [ $( [
            [
                tall_f32::<$k, 1, $r, B_PACKED> as TallRaw,
                tall_f32::<$k, 1, $r, B_ROWS> as TallRaw,
                tall_f32::<$k, 1, $r, B_COLS> as TallRaw,
            ],
            [
                tall_f32::<$k, 2, $r, B_PACKED> as TallRaw,
                tall_f32::<$k, 2, $r, B_ROWS> as TallRaw,
                tall_f32::<$k, 2, $r, B_COLS> as TallRaw,
            ],
        ] ),* ]
    };
}

static TALL_GRID: [[[TallRaw; 3]; 2]; TALL_MAX_K] =
    tall_grid!(1 4, 2 4, 3 4, 4 4, 5 4, 6 4, 7 4, 8 4, 9 4, 10 4, 11 4, 12 3);

/// Shallow f32 kernel: any number of rows × up to 32 columns, depth up to
/// [`TALL_MAX_K`], A strided, B in registers.
///
/// # Panics
/// If `check_tile` fails (with no row limit), A is packed, or the depth is
/// outside 1..=`TALL_MAX_K`.
pub fn gemm_f32_avx512_tall_kx32(t: &MicroTile<'_, f32>, out: &mut TileOut<'_>) {
    check_tile(t, out, usize::MAX, NR);
    assert!((1..=TALL_MAX_K).contains(&t.k), "shallow kernel: depth {} outside 1..={TALL_MAX_K}", t.k);
    let APanel::Strided { data: a, rs, cs } = t.a else {
        panic!("the shallow kernel reads A in place");
    };
    let (b, ldb, mode) = match t.b {
        BPanel::Packed(d) => (d.as_ptr(), NR, B_PACKED),
        BPanel::Rows { data, ld } => (data.as_ptr(), ld, B_ROWS),
        BPanel::Cols { data, ld } => (data.as_ptr(), ld, B_COLS),
    };
    let a = a.as_ptr();
    let f = TALL_GRID[t.k - 1][t.n.div_ceil(L) - 1][mode as usize];
    // SAFETY: this kernel is reachable only through the avx512 table, handed
    // out only when the CPU has AVX-512 F/BW/VL/DQ; `check_tile` bounds every
    // access the kernel makes.
    unsafe { f(t.m, a, rs, cs, b, ldb, t.n, out) }
}

// ---------------------------------------------------------------- bf16 pairs kernel

/// The `vdpbf16ps` body: each depth step is a pair; A pairs broadcast as
/// 32-bit values, B pairs packed `[q][j]`. Packed operands only. `TRANS`:
/// the tile is one of Cᵀ, stored transposed (`finish_tile_t!`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn ukr_bf16<const M: usize, const NV: usize, const APACK: bool, const BPACK: bool, const TRANS: bool>(
    k: usize,
    a: *const u32,
    _rs: usize,
    _cs: usize,
    b: *const u32,
    _ldb: usize,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; M];
    if TRANS {
        prefetch_tile_t(out, n, M);
    } else {
        prefetch_tile::<M, NV>(out);
    }
    let (mut ap, mut bp) = (a, b);
    for _ in 0..k {
        // SAFETY: `check_tile` established that k pair steps of the packed A
        // (stride M) and B (stride NR) panels lie inside their slices.
        unsafe {
            let mut bv = [_mm512_setzero_si512(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_loadu_si512(bp.add(v * L).cast());
            }
            dp_step(&mut acc, ap, &bv);
            ap = ap.wrapping_add(M);
            bp = bp.wrapping_add(NR);
        }
    }
    if TRANS {
        finish_tile_t!(acc, M, n, out);
    } else {
        // SAFETY: `check_tile` passed for this tile.
        unsafe { finish_tile(&acc, n, out) };
    }
}

/// One pair step of the `vdpbf16ps` bodies: A's pairs for rows `0..M` at
/// `ap`, broadcast, against the B pair vectors `bv`. Inlined into each
/// kernel, whose features its intrinsics take (as [`store_plain`]).
///
/// # Safety
/// `M` pairs must be readable at `ap`, and the caller must enable AVX-512-BF16.
#[inline(always)]
unsafe fn dp_step<const M: usize, const NV: usize>(acc: &mut [[__m512; NV]; M], ap: *const u32, bv: &[__m512i; NV]) {
    for (i, row) in acc.iter_mut().enumerate() {
        // SAFETY: forwarded from the caller.
        unsafe {
            let ai: __m512bh = core::mem::transmute(_mm512_set1_epi32(*ap.add(i) as i32));
            for (c, x) in row.iter_mut().zip(bv) {
                *c = _mm512_dpbf16_ps(*c, ai, core::mem::transmute::<__m512i, __m512bh>(*x));
            }
        }
    }
}

/// `vpermt2w` indices interleaving two vectors of 16-bit lanes into pairs:
/// lane `2i` takes lane `i` of the first, lane `2i + 1` lane `i` of the
/// second (add 16 for lanes 16..32).
const PAIR_IDX: [u16; 32] = {
    let mut t = [0u16; 32];
    let mut l = 0;
    while l < 32 {
        t[l] = if l % 2 == 0 { (l / 2) as u16 } else { 32 + (l / 2) as u16 };
        l += 1;
    }
    t
};

/// The transposed `vdpbf16ps` body with B read as bf16 rows in place
/// (stride `ldb`, `depth` rows, `n` valid columns): each two rows are
/// interleaved in registers into the pairs `pack_b_bf16_pairs_avx512`
/// would pack (zero past `n`, and as the high half of an odd depth's last
/// pair), so every dot product is the packed kernel's. 32 columns by
/// in-lane unpacks (columns permuted, each stored to its own row of C by
/// the transposed store: wgrad3 167 against 162 GFLOP/s with `vpermt2w` in
/// the loop), 16 by `vpermt2w`. A packed `[q][i]` (stride M).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")]
unsafe fn ukr_bf16_t_rows<const M: usize, const NV: usize>(
    depth: usize,
    a: *const u32,
    b: *const u16,
    ldb: usize,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; M];
    prefetch_tile_t(out, n, M);
    let emask: __mmask32 = if n >= 2 * L { u32::MAX } else { (1u32 << n) - 1 };
    // SAFETY: the caller checked that `depth` rows of `n` elements at stride
    // `ldb` are readable at `b` (the mask keeps each load inside its row)
    // and `depth.div_ceil(2)` steps of M pairs at `a`.
    unsafe {
        let idx = [
            _mm512_loadu_si512(PAIR_IDX.as_ptr().cast()),
            _mm512_add_epi16(_mm512_loadu_si512(PAIR_IDX.as_ptr().cast()), _mm512_set1_epi16(L as i16)),
        ];
        // Whole pairs, then an odd depth's last row against zero, outside
        // the loop (a test per step otherwise).
        for q in 0..depth / 2 {
            let lo = _mm512_maskz_loadu_epi16(emask, b.add(2 * q * ldb).cast());
            let hi = _mm512_maskz_loadu_epi16(emask, b.add((2 * q + 1) * ldb).cast());
            rows_step(&mut acc, lo, hi, &idx, a.add(q * M));
        }
        if depth % 2 == 1 {
            let q = depth / 2;
            let lo = _mm512_maskz_loadu_epi16(emask, b.add(2 * q * ldb).cast());
            rows_step(&mut acc, lo, _mm512_setzero_si512(), &idx, a.add(q * M));
        }
    }
    finish_tile_t!(acc, M, n, out, if NV == 2 { Some(&UNPACKED) } else { None });
}

/// One pair step of [`ukr_bf16_t_rows`]: rows `lo` and `hi` of B interleaved
/// into pairs (32 columns: in-lane unpacks, columns in the order of
/// `UNPACKED`; 16: `vpermt2w` with `idx[0]`), against A's M pairs at `ap`.
/// Inlined into the kernel, whose features its intrinsics take.
///
/// # Safety
/// M pairs must be readable at `ap`, and the caller must enable AVX-512-BF16.
#[inline(always)]
unsafe fn rows_step<const M: usize, const NV: usize>(
    acc: &mut [[__m512; NV]; M],
    lo: __m512i,
    hi: __m512i,
    idx: &[__m512i; 2],
    ap: *const u32,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let mut bv = [_mm512_setzero_si512(); NV];
        if NV == 2 {
            // In-lane unpacks, cheaper than `vpermt2w`: columns in the
            // order of `UNPACKED`, which the transposed store follows.
            bv[0] = _mm512_unpacklo_epi16(lo, hi);
            bv[NV - 1] = _mm512_unpackhi_epi16(lo, hi);
        } else {
            bv[0] = _mm512_permutex2var_epi16(lo, idx[0], hi);
        }
        dp_step(acc, ap, &bv);
    }
}

/// After `vpunpcklwd`/`vpunpckhwd` of two rows of 32 bf16, the first pair
/// vector holds columns 0–3, 8–11, 16–19, 24–27 and the second 4–7, 12–15,
/// 20–23, 28–31: the column of Cᵀ (row of C) in each lane of the two
/// accumulators, where the transposed store puts it.
const UNPACKED: [[u8; L]; 2] = {
    let mut t = [[0u8; L]; 2];
    let mut l = 0;
    while l < L {
        t[0][l] = ((l / 4) * 8 + l % 4) as u8;
        t[1][l] = ((l / 4) * 8 + 4 + l % 4) as u8;
        l += 1;
    }
    t
};

type RowsRaw = unsafe fn(usize, *const u32, *const u16, usize, usize, &mut TileOut<'_>);

macro_rules! rows_grid {
    ($($m:literal)*) => {
        [ $( [ukr_bf16_t_rows::<$m, 1> as RowsRaw, ukr_bf16_t_rows::<$m, 2> as RowsRaw] ),* ]
    };
}

static BF16_T_ROWS_GRID: [[RowsRaw; 2]; MR] = rows_grid!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);

static BF16_GRID: [[UkrRaw<u32>; 2]; MR] =
    ukr_grid!(ukr_bf16, u32, true, true, false; 1 2 3 4 5 6 7 8 9 10 11 12 13 14);
static BF16_T_GRID: [[UkrRaw<u32>; 2]; MR] =
    ukr_grid!(ukr_bf16, u32, true, true, true; 1 2 3 4 5 6 7 8 9 10 11 12 13 14);

/// bf16 pair micro-kernel (`vdpbf16ps`), 14×32 and every smaller tile.
/// Subnormal bf16 inputs count as zero and subnormal partial sums are flushed.
///
/// # Panics
/// If `check_tile` fails or an operand is not packed.
pub fn gemm_bf16_f32acc_avx512bf16_14x32(t: &MicroTile<'_, u32>, out: &mut TileOut<'_>) {
    check_tile(t, out, MR, NR);
    let (a, _, _, ap, b, _, bp) = raw_parts(t);
    assert!(ap && bp, "the vdpbf16ps kernel reads packed panels only");
    let f = BF16_GRID[t.m - 1][t.n.div_ceil(L) - 1];
    // SAFETY: installed only when the CPU has AVX-512-BF16 besides the avx512
    // path's features; `check_tile` bounds every access.
    unsafe { f(t.k, a, 0, 0, b, 0, t.n, out) }
}

/// bf16 pair micro-kernel for narrow products: a tile of Cᵀ, stored
/// transposed into the C tile `out` describes (as
/// [`gemm_f32_avx512_14x32_t`]), with the dot products of
/// [`gemm_bf16_f32acc_avx512bf16_14x32`] (so the same bits).
///
/// # Panics
/// If `check_tile_transposed` fails or an operand is not packed.
pub fn gemm_bf16_f32acc_avx512bf16_14x32_t(t: &MicroTile<'_, u32>, out: &mut TileOut<'_>) {
    check_tile_transposed(t, out, MR, NR);
    let (a, _, _, ap, b, _, bp) = raw_parts(t);
    assert!(ap && bp, "the vdpbf16ps kernel reads packed panels only");
    let f = BF16_T_GRID[t.m - 1][t.n.div_ceil(L) - 1];
    // SAFETY: installed only when the CPU has AVX-512-BF16 besides the avx512
    // path's features; `check_tile_transposed` bounds every access.
    unsafe { f(t.k, a, 0, 0, b, 0, t.n, out) }
}

/// bf16 pair micro-kernel for narrow products with A stored k×m: a tile of
/// Cᵀ as [`gemm_bf16_f32acc_avx512bf16_14x32_t`] computes it, with op(A)ᵀ's
/// rows read in place — two rows interleaved into pairs in registers, as
/// the pair packer would — instead of packed panels: the same dot products,
/// so the same bits. Subnormal bf16 inputs count as zero.
///
/// # Panics
/// If the tile exceeds 14×32, the A panel or B's rows are too short, or
/// `check_tile_transposed`'s checks of the C tile fail.
pub fn gemm_bf16_f32acc_avx512bf16_14x32_t_rows(t: &RowsTile<'_, bf16, u32>, out: &mut TileOut<'_>) {
    // The C-side checks (depth 0: the operands are checked below).
    let shape = MicroTile { k: 0, m: t.m, n: t.n, a: APanel::Packed(t.a), b: BPanel::Packed(&[]) };
    check_tile_transposed(&shape, out, MR, NR);
    if t.k > 0 {
        assert!(t.a.len() >= t.k.div_ceil(2) * t.m, "packed A panel too short");
        assert!(t.b.len() >= (t.k - 1) * t.ldb + t.n, "B rows too short");
    }
    let f = BF16_T_ROWS_GRID[t.m - 1][t.n.div_ceil(L) - 1];
    // SAFETY: installed only when the CPU has AVX-512-BF16 besides the avx512
    // path's features; the operands and the C tile are checked above.
    unsafe { f(t.k, t.a.as_ptr(), t.b.as_ptr().cast(), t.ldb, t.n, out) }
}

// ---------------------------------------------------------------- shallow bf16 pairs kernel

/// The deepest product (in bf16 elements) the shallow `vdpbf16ps` kernel
/// takes: a group's A pairs (⌈K/2⌉ per row), its accumulators and a B
/// vector fit the 32 registers up to K = 16 (three rows at a time past 12).
pub const BF16_SHALLOW_MAX_K: usize = 16;

/// Columns of op(B) the shallow kernel packs at a time: ⌈K/2⌉ pair vectors
/// per 16 columns, at most 16 KiB, which stay in L1 while every row runs
/// through them.
const SHALLOW_COLS: usize = 512;

/// Pair vectors of one [`SHALLOW_COLS`] block at the deepest K.
const SHALLOW_BUF: usize = SHALLOW_COLS / L * BF16_SHALLOW_MAX_K.div_ceil(2);

type ShallowRaw = unsafe fn(usize, *const u16, usize, *const u16, usize, usize, &mut TileOut<'_>);

/// A's pair at `p`, broadcast: two adjacent bf16 as one 32-bit value, or
/// (`HALF`: an odd depth's last pair) the element alone with a zero high
/// half, as the pair packer pads it. Inlined into the kernels, whose
/// features it takes.
///
/// # Safety
/// The pair's elements (one when `HALF`) must be readable, and the caller
/// must enable AVX-512 F.
#[inline(always)]
unsafe fn a_pair<const HALF: bool>(p: *const u16) -> __m512i {
    // SAFETY: forwarded from the caller.
    unsafe { if HALF { _mm512_set1_epi32(i32::from(*p)) } else { _mm512_set1_epi32(p.cast::<i32>().read_unaligned()) } }
}

/// Packs columns `j0..j0 + w` (w ≤ [`SHALLOW_COLS`]) of op(B) as Q pair
/// vectors per 16 columns, vector `v`'s pair `q` at `dst[v·Q + q]`: the
/// pairs the pair packer writes (zero past `w` and as the high half of an
/// odd depth's last pair). `COLS`: B stored n×k, each column's k values one
/// masked load, 16 columns transposed in registers; else B stored k×n, two
/// rows interleaved by `vpermt2w`.
///
/// # Safety
/// op(B)'s k × (j0 + w) window at `b` (stride `ldb`) must be readable,
/// `⌈w/16⌉·Q` vectors writable at `dst`, and the caller must enable
/// AVX-512 F/BW.
#[inline(always)]
unsafe fn shallow_pack_b<const Q: usize, const COLS: bool>(
    b: *const u16,
    ldb: usize,
    k: usize,
    j0: usize,
    w: usize,
    dst: *mut __m512i,
) {
    // SAFETY: forwarded from the caller; every load is masked to the window.
    unsafe {
        if COLS {
            let kmask: __mmask32 = (1u32 << k) - 1;
            for v in 0..w.div_ceil(L) {
                let mut r = [_mm512_setzero_ps(); L];
                for (j, x) in r.iter_mut().enumerate().take(w - v * L) {
                    *x = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(kmask, b.add((j0 + v * L + j) * ldb).cast()));
                }
                let t = transpose16(&r);
                for (q, x) in t.iter().enumerate().take(Q) {
                    _mm512_storeu_si512(dst.add(v * Q + q).cast(), _mm512_castps_si512(*x));
                }
            }
        } else {
            let idx0 = _mm512_loadu_si512(PAIR_IDX.as_ptr().cast());
            let idx1 = _mm512_add_epi16(idx0, _mm512_set1_epi16(L as i16));
            let nv = w.div_ceil(L);
            for h in 0..w.div_ceil(2 * L) {
                let left = w - 2 * h * L;
                let nmask: __mmask32 = if left >= 2 * L { u32::MAX } else { (1u32 << left) - 1 };
                let col = b.add(j0 + 2 * h * L);
                for q in 0..Q {
                    let lo = _mm512_maskz_loadu_epi16(nmask, col.add(2 * q * ldb).cast());
                    let hi = if 2 * q + 1 < k {
                        _mm512_maskz_loadu_epi16(nmask, col.add((2 * q + 1) * ldb).cast())
                    } else {
                        _mm512_setzero_si512()
                    };
                    _mm512_storeu_si512(dst.add(2 * h * Q + q).cast(), _mm512_permutex2var_epi16(lo, idx0, hi));
                    if 2 * h + 1 < nv {
                        _mm512_storeu_si512(
                            dst.add((2 * h + 1) * Q + q).cast(),
                            _mm512_permutex2var_epi16(lo, idx1, hi),
                        );
                    }
                }
            }
        }
    }
}

/// The shallow `vdpbf16ps` body: op(B) is packed [`SHALLOW_COLS`] columns
/// at a time into pair vectors on the stack (L1), then A's rows run through
/// them R at a time, each row's pairs broadcast into registers once, each
/// B vector loaded once per R rows, and each row of C written in order
/// (tiles of a few columns down many rows hit a few L1 sets and wait on
/// L2 for every line). Per element the dot products are those of
/// `ukr_bf16`, in the same order (from +0, pair 0 first), so the results
/// are bit-identical to the 14×32 kernel's.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")]
unsafe fn shallow_bf16<const Q: usize, const ODD: bool, const R: usize, const COLS: bool>(
    m: usize,
    a: *const u16,
    lda: usize,
    b: *const u16,
    ldb: usize,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let k = 2 * Q - usize::from(ODD);
    let mut panel = core::mem::MaybeUninit::<[__m512i; SHALLOW_BUF]>::uninit();
    let bp = panel.as_mut_ptr().cast::<__m512i>();
    let plain = plain_dst(out);
    let mut j0 = 0;
    while j0 < n {
        let w = SHALLOW_COLS.min(n - j0);
        // SAFETY: the entry point checked op(B)'s window; ⌈w/16⌉·Q ≤ SHALLOW_BUF vectors.
        unsafe { shallow_pack_b::<Q, COLS>(b, ldb, k, j0, w, bp) };
        let bp = bp.cast_const();
        let mut i = 0;
        // Overwritten without bias or ReLU (beta = 0: the input gradient of
        // a small layer): every group of R rows in one loop, no store
        // dispatch.
        if let Some((c, ldc, false)) = plain {
            let groups = m / R;
            // SAFETY: rows 0..groups·R are below m (the entry point bounds A
            // and C for m rows), columns j0..j0 + w below n.
            unsafe {
                if out.alpha == 1.0 {
                    shallow_groups::<Q, ODD, R, true>(bp, w, groups, a, lda, c.add(j0), ldc, 1.0);
                } else {
                    shallow_groups::<Q, ODD, R, false>(bp, w, groups, a, lda, c.add(j0), ldc, out.alpha);
                }
            }
            i = groups * R;
        }
        while i + R <= m {
            // SAFETY: rows i..i+R are below m.
            unsafe { shallow_rows::<Q, ODD, R>(bp, w, a.add(i * lda), lda, i, j0, plain, out) };
            i += R;
        }
        while i < m {
            // SAFETY: as above, one row.
            unsafe { shallow_rows::<Q, ODD, 1>(bp, w, a.add(i * lda), lda, i, j0, plain, out) };
            i += 1;
        }
        j0 += w;
    }
}

/// R rows' A pairs at `a` (stride `lda`), broadcast.
///
/// # Safety
/// R rows of `2·Q − ODD` elements must be readable at `a`, and the caller
/// must enable AVX-512 F.
#[inline(always)]
unsafe fn shallow_a<const Q: usize, const ODD: bool, const R: usize>(a: *const u16, lda: usize) -> [[__m512i; Q]; R] {
    // SAFETY: the caller enables AVX-512 F.
    let mut av = [[unsafe { _mm512_setzero_si512() }; Q]; R];
    for (r, row) in av.iter_mut().enumerate() {
        for (q, x) in row.iter_mut().enumerate() {
            // SAFETY: forwarded from the caller.
            unsafe {
                let p = a.add(r * lda + 2 * q);
                *x = if ODD && q == Q - 1 { a_pair::<true>(p) } else { a_pair::<false>(p) };
            }
        }
    }
    av
}

/// R rows' dot products with packed B vector `v` (its Q pairs at `bp[v·Q..]`),
/// pairs in order from +0.
///
/// # Safety
/// Q vectors must be readable at `bp + v·Q`, and the caller must enable
/// AVX-512-BF16.
#[inline(always)]
unsafe fn shallow_dots<const Q: usize, const R: usize>(
    av: &[[__m512i; Q]; R],
    bp: *const __m512i,
    v: usize,
) -> [[__m512; 1]; R] {
    // SAFETY: the caller enables AVX-512 F.
    let mut acc = [[unsafe { _mm512_setzero_ps() }]; R];
    for q in 0..Q {
        // SAFETY: forwarded from the caller.
        unsafe {
            let bq: __m512bh = core::mem::transmute(_mm512_loadu_si512(bp.add(v * Q + q).cast()));
            for (x, row) in acc.iter_mut().zip(av) {
                x[0] = _mm512_dpbf16_ps(x[0], core::mem::transmute::<__m512i, __m512bh>(row[q]), bq);
            }
        }
    }
    acc
}

/// `groups` groups of R rows of the shallow kernel from row 0 against the
/// packed block (`w` columns), overwritten with `alpha·acc` (`ONE`: alpha
/// = 1, stored as is): the dot products and the rounding of
/// [`shallow_rows`] and [`store_plain`], with full vectors stored unmasked
/// and no store dispatch.
///
/// # Safety
/// `groups·R` rows of `2·Q − ODD` elements of A at `a` (stride `lda`),
/// rows `0..groups·R`, columns `0..w` of C at `c` (row stride `ldc`) and
/// `⌈w/16⌉·Q` packed vectors at `bp` must be in bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn shallow_groups<const Q: usize, const ODD: bool, const R: usize, const ONE: bool>(
    bp: *const __m512i,
    w: usize,
    groups: usize,
    a: *const u16,
    lda: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
) {
    let alpha = _mm512_set1_ps(alpha);
    let (full, tail) = (w / L, lane_mask(w % L, 0));
    for g in 0..groups {
        // SAFETY: the caller guarantees the group's rows of A and C and the
        // packed vectors.
        unsafe {
            let av = shallow_a::<Q, ODD, R>(a.add(g * R * lda), lda);
            let c = c.add(g * R * ldc);
            for v in 0..full {
                let acc = shallow_dots::<Q, R>(&av, bp, v);
                for (r, x) in acc.iter().enumerate() {
                    _mm512_storeu_ps(c.add(r * ldc + v * L), if ONE { x[0] } else { _mm512_mul_ps(x[0], alpha) });
                }
            }
            if tail != 0 {
                let acc = shallow_dots::<Q, R>(&av, bp, full);
                for (r, x) in acc.iter().enumerate() {
                    let y = if ONE { x[0] } else { _mm512_mul_ps(x[0], alpha) };
                    _mm512_mask_storeu_ps(c.add(r * ldc + full * L), tail, y);
                }
            }
        }
    }
}

/// R rows of the shallow kernel from row `i` (`a` at its first element)
/// against the packed block of columns `j0..j0 + w`, with the tile's
/// epilogue.
///
/// # Safety
/// R rows of `2·Q − ODD` elements of A at `a` (stride `lda`), rows
/// `i..i + R`, columns `j0..j0 + w` of the destination and `⌈w/16⌉·Q`
/// packed vectors at `bp` must be in bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn shallow_rows<const Q: usize, const ODD: bool, const R: usize>(
    bp: *const __m512i,
    w: usize,
    a: *const u16,
    lda: usize,
    i: usize,
    j0: usize,
    plain: Option<(*mut f32, usize, bool)>,
    out: &mut TileOut<'_>,
) {
    // SAFETY: the caller guarantees R rows of A, rows i..i+R of the
    // destination and the packed vectors.
    unsafe {
        let av = shallow_a::<Q, ODD, R>(a, lda);
        let alpha = _mm512_set1_ps(out.alpha);
        for v in 0..w.div_ceil(L) {
            let acc = shallow_dots::<Q, R>(&av, bp, v);
            let (col, cols) = (j0 + v * L, (w - v * L).min(L));
            match plain {
                Some((p, ld, accumulate)) => store_plain(&acc, cols, i, (p.add(col), ld, accumulate), out.alpha),
                None => {
                    for (r, x) in acc.iter().enumerate() {
                        store_vec(out, x[0], alpha, i + r, col, lane_mask(cols, 0));
                    }
                }
            }
        }
    }
}

macro_rules! shallow_grid {
    ($($q:literal $odd:literal $r:literal),*) => {
        [ $( [
            shallow_bf16::<$q, $odd, $r, false> as ShallowRaw,
            shallow_bf16::<$q, $odd, $r, true> as ShallowRaw,
        ] ),* ]
    };
}

/// By depth k (Q = ⌈k/2⌉ pairs, odd k) and B's layout (stored n×k second).
static SHALLOW_BF16_GRID: [[ShallowRaw; 2]; BF16_SHALLOW_MAX_K] = shallow_grid!(
    1 true 4, 1 false 4, 2 true 4, 2 false 4, 3 true 4, 3 false 4, 4 true 4, 4 false 4,
    5 true 4, 5 false 4, 6 true 4, 6 false 4, 7 true 3, 7 false 3, 8 true 3, 8 false 3
);

/// Shallow bf16 pair kernel (`vdpbf16ps`): any number of rows and columns,
/// depth up to [`BF16_SHALLOW_MAX_K`], A's rows read in place (pairs of
/// adjacent elements broadcast), op(B) packed as pairs on the stack
/// [`SHALLOW_COLS`] columns at a time. The dot products of
/// [`gemm_bf16_f32acc_avx512bf16_14x32`], so the same bits: subnormal bf16
/// inputs count as zero, subnormal partial sums are flushed, NaN and ±Inf
/// propagate as in that kernel (sums from +0, so an all-zero row gives +0).
///
/// # Panics
/// If the depth is outside 1..=[`BF16_SHALLOW_MAX_K`], the tile is empty,
/// A or B's window is outside its slice, or `check_tile`'s checks of the C
/// tile fail.
pub fn gemm_bf16_f32acc_avx512bf16_shallow(t: &ShallowTile<'_, bf16>, out: &mut TileOut<'_>) {
    // The C-side checks (depth 0: the operands are checked below).
    let shape = MicroTile::<u32> { k: 0, m: t.m, n: t.n, a: APanel::Packed(&[]), b: BPanel::Packed(&[]) };
    check_tile(&shape, out, usize::MAX, usize::MAX);
    let (m, n, k) = (t.m, t.n, t.k);
    assert!((1..=BF16_SHALLOW_MAX_K).contains(&k), "shallow kernel: depth {k} outside 1..={BF16_SHALLOW_MAX_K}");
    assert!(t.lda >= k && t.a.len() >= (m - 1) * t.lda + k, "shallow kernel: A too short");
    let cols = t.tb == Transpose::Yes;
    let b_ok = if cols {
        t.ldb >= k && t.b.len() >= (n - 1) * t.ldb + k
    } else {
        t.ldb >= n && t.b.len() >= (k - 1) * t.ldb + n
    };
    assert!(b_ok, "shallow kernel: B too short");
    let f = SHALLOW_BF16_GRID[k - 1][usize::from(cols)];
    // SAFETY: installed only when the CPU has AVX-512-BF16 besides the avx512
    // path's features; the operands and the C tile are checked above.
    unsafe { f(m, t.a.as_ptr().cast(), t.lda, t.b.as_ptr().cast(), t.ldb, n, out) }
}

// ---------------------------------------------------------------- dot kernel

/// A row type the dot kernel reads in place, `STEP` depth steps per vector.
trait DotRow: Copy + 'static {
    /// Depth steps per vector: 16 widened f16, or 32 bf16 as 16 pairs.
    const STEP: usize;
    /// The first `valid` depth steps of a row at `p` (zero past them).
    ///
    /// # Safety
    /// `valid ≤ STEP` elements must be readable at `p`.
    unsafe fn load(p: *const Self, valid: usize) -> __m512;
    /// `acc + a·b` over one vector of depth steps.
    ///
    /// # Safety
    /// The caller's target features must include the instruction's.
    unsafe fn madd(acc: __m512, a: __m512, b: __m512) -> __m512;
}

impl DotRow for f16 {
    const STEP: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const f16, valid: usize) -> __m512 {
        // SAFETY: forwarded; the mask keeps the load inside `valid`.
        unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lane_mask(valid, 0), p.cast())) }
    }
    #[inline(always)]
    unsafe fn madd(acc: __m512, a: __m512, b: __m512) -> __m512 {
        // SAFETY: forwarded.
        unsafe { _mm512_fmadd_ps(a, b, acc) }
    }
}

impl DotRow for bf16 {
    const STEP: usize = 32;
    #[inline(always)]
    unsafe fn load(p: *const bf16, valid: usize) -> __m512 {
        let mask: __mmask32 = if valid >= 32 { u32::MAX } else { (1u32 << valid) - 1 };
        // SAFETY: forwarded; the element mask keeps the load inside `valid`
        // (an odd depth's last pair reads a zero high half).
        unsafe { _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, p.cast())) }
    }
    #[inline(always)]
    unsafe fn madd(acc: __m512, a: __m512, b: __m512) -> __m512 {
        // SAFETY: forwarded (the bf16 entry point enables AVX-512-BF16).
        unsafe {
            _mm512_dpbf16_ps(
                acc,
                core::mem::transmute::<__m512, __m512bh>(a),
                core::mem::transmute::<__m512, __m512bh>(b),
            )
        }
    }
}

/// `v[j]`, or `z` past the end. A function, not a closure: a closure is
/// compiled without the entry's target features.
#[inline(always)]
fn or_zero<const N: usize>(v: &[__m512; N], j: usize, z: __m512) -> __m512 {
    if j < N { v[j] } else { z }
}

/// Lane j of the result is the sum of the 16 lanes of `v[j]` (zero past N),
/// in a fixed tree: lanes 4 apart, then 2 apart inside each 128-bit block,
/// then the blocks pairwise — 45 shuffles and adds for 16 sums.
#[inline(always)]
fn hsum16<const N: usize>(v: &[__m512; N]) -> __m512 {
    // SAFETY: register-only arithmetic; the callers enable AVX-512F.
    unsafe {
        let z = _mm512_setzero_ps();
        let mut s = [z; 8];
        for (h, x) in s.iter_mut().enumerate() {
            let (a, b) = (or_zero(v, 2 * h, z), or_zero(v, 2 * h + 1, z));
            *x = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
        }
        let mut t = [z; 4];
        for (h, x) in t.iter_mut().enumerate() {
            let (a, b) = (s[2 * h], s[2 * h + 1]);
            *x = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(a, b), _mm512_shuffle_ps::<0xEE>(a, b));
        }
        let u0 = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(t[0], t[1]), _mm512_shuffle_f32x4::<0xDD>(t[0], t[1]));
        let u1 = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(t[2], t[3]), _mm512_shuffle_f32x4::<0xDD>(t[2], t[3]));
        _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(u0, u1), _mm512_shuffle_f32x4::<0xDD>(u0, u1))
    }
}

/// R rows of the dot kernel from row `i`: A's rows in place, op(B)ᵀ's N
/// rows (stride `ldbt`, zero-padded) streamed from L1, one B vector live
/// at a time, so R·N accumulators fit the registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_rows<T: DotRow, const N: usize, const R: usize>(
    a: *const T,
    lda: usize,
    i: usize,
    bt: *const f32,
    ldbt: usize,
    k: usize,
    plain: Option<(*mut f32, usize, bool)>,
    out: &mut TileOut<'_>,
) {
    // SAFETY: the caller guarantees R rows of k elements at `a` (stride
    // `lda`) from row i, N rows of ⌈k/STEP⌉·16 lanes at `bt`, and a CPU
    // with the entry point's features.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); N]; R];
        let (mut p, mut c) = (0, 0);
        while p < k {
            let valid = (k - p).min(T::STEP);
            let mut av = [_mm512_setzero_ps(); R];
            for (r, x) in av.iter_mut().enumerate() {
                *x = T::load(a.add((i + r) * lda + p), valid);
            }
            for j in 0..N {
                let b = _mm512_loadu_ps(bt.add(j * ldbt + c * L));
                for (row, &x) in acc.iter_mut().zip(&av) {
                    row[j] = T::madd(row[j], x, b);
                }
            }
            p += T::STEP;
            c += 1;
        }
        // `black_box`: a constant one-lane mask (N = 1) miscompiles the bf16
        // store (see `finish_tile_t!`).
        let mask = core::hint::black_box(lane_mask(N, 0));
        let one = out.alpha == 1.0;
        let alpha = _mm512_set1_ps(out.alpha);
        for (r, row) in acc.iter().enumerate() {
            let x = hsum16(row);
            match plain {
                Some((p, ld, accumulate)) => {
                    let q = p.add((i + r) * ld);
                    let y = match (accumulate, one) {
                        (false, true) => x,
                        (false, false) => _mm512_mul_ps(x, alpha),
                        (true, true) => _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, q)),
                        (true, false) => _mm512_fmadd_ps(x, alpha, _mm512_maskz_loadu_ps(mask, q)),
                    };
                    _mm512_mask_storeu_ps(q, mask, y);
                }
                None => store_vec(out, x, alpha, i + r, 0, mask),
            }
        }
    }
}

/// Every row of a dot-kernel task, R at a time, then one at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_all<T: DotRow, const N: usize, const R: usize>(
    a: *const T,
    lda: usize,
    rows: usize,
    bt: *const f32,
    ldbt: usize,
    k: usize,
    out: &mut TileOut<'_>,
) {
    let plain = plain_dst(out);
    let mut i = 0;
    // SAFETY: forwarded from the entry point's checks, row by row.
    unsafe {
        while i + R <= rows {
            dot_rows::<T, N, R>(a, lda, i, bt, ldbt, k, plain, out);
            i += R;
        }
        while i < rows {
            dot_rows::<T, N, 1>(a, lda, i, bt, ldbt, k, plain, out);
            i += 1;
        }
    }
}

type DotRaw<T> = unsafe fn(*const T, usize, usize, *const f32, usize, usize, &mut TileOut<'_>);

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
unsafe fn dot_f16<const N: usize, const R: usize>(
    a: *const f16,
    lda: usize,
    rows: usize,
    bt: *const f32,
    ldbt: usize,
    k: usize,
    out: &mut TileOut<'_>,
) {
    // SAFETY: forwarded.
    unsafe { dot_all::<f16, N, R>(a, lda, rows, bt, ldbt, k, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")]
unsafe fn dot_bf16<const N: usize, const R: usize>(
    a: *const bf16,
    lda: usize,
    rows: usize,
    bt: *const f32,
    ldbt: usize,
    k: usize,
    out: &mut TileOut<'_>,
) {
    // SAFETY: forwarded.
    unsafe { dot_all::<bf16, N, R>(a, lda, rows, bt, ldbt, k, out) }
}

/// Columns the dot kernel takes (one vector of sums per row of C).
pub const DOT_MAX_N: usize = MR;

macro_rules! dot_grid {
    ($f:ident, $T:ty) => {
        [
            $f::<1, 4> as DotRaw<$T>,
            $f::<2, 4>,
            $f::<3, 4>,
            $f::<4, 4>,
            $f::<5, 4>,
            $f::<6, 4>,
            $f::<7, 2>,
            $f::<8, 2>,
            $f::<9, 2>,
            $f::<10, 2>,
            $f::<11, 2>,
            $f::<12, 2>,
            $f::<13, 2>,
            $f::<14, 2>,
        ]
    };
}

static DOT_F16: [DotRaw<f16>; DOT_MAX_N] = dot_grid!(dot_f16, f16);
static DOT_BF16: [DotRaw<bf16>; DOT_MAX_N] = dot_grid!(dot_bf16, bf16);

/// The dot kernel's checks: A rows, op(B)ᵀ rows, and the C rows `out` holds.
#[allow(clippy::too_many_arguments)]
fn check_dot<T, P>(a: &[T], lda: usize, rows: usize, bt: &[P], ldbt: usize, k: usize, n: usize, out: &TileOut<'_>) {
    assert!(rows >= 1 && (1..=DOT_MAX_N).contains(&n) && k >= 1, "dot kernel: {rows} rows × {n} columns × {k}");
    assert!(lda >= k && a.len() >= (rows - 1) * lda + k, "dot kernel: A too short");
    assert!(ldbt >= k.div_ceil(32) * 16 && bt.len() >= n * ldbt, "dot kernel: op(B)ᵀ too short");
    let (len, ld) = match &out.dst {
        Dst::F32(c, ld) => (c.len(), *ld),
        Dst::F16(c, ld) => (c.len(), *ld),
        Dst::Bf16(c, ld) => (c.len(), *ld),
    };
    assert!(ld >= n && len >= (rows - 1) * ld + n, "dot kernel: C too short");
    let f32_dst = matches!(out.dst, Dst::F32(..));
    assert!(f32_dst || !matches!(out.prev, Prev::Beta(_) | Prev::Dst), "accumulating into an f16/bf16 C tile");
    assert!(!matches!(out.prev, Prev::From { .. }), "the dot kernel takes no scratch");
    if let Some(bias) = out.bias {
        assert!(bias.len() >= n, "bias shorter than the tile");
    }
}

/// hgemm dot kernel: rows of f16 A widened in registers (16 depth steps per
/// vector), op(B)ᵀ widened by [`pack_bt_f16_avx512`], FP32 FMAs.
///
/// # Panics
/// If the slices do not hold the rows, `n` is outside 1..=[`DOT_MAX_N`] or
/// `ldbt < ⌈k/16⌉·16`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f16_f32acc_avx512_dot(
    a: &[f16],
    lda: usize,
    rows: usize,
    bt: &[f32],
    ldbt: usize,
    k: usize,
    n: usize,
    out: &mut TileOut<'_>,
) {
    check_dot(a, lda, rows, bt, ldbt, k, n, out);
    assert!(ldbt >= k.div_ceil(16) * 16, "dot kernel: op(B)ᵀ rows too short");
    // SAFETY: avx512 table only; `check_dot` bounds every access.
    unsafe { DOT_F16[n - 1](a.as_ptr(), lda, rows, bt.as_ptr(), ldbt, k, out) }
}

/// bgemm dot kernel (`vdpbf16ps`): rows of bf16 A read in place as pairs (32
/// depth steps per vector), op(B)ᵀ pairs from [`pack_bt_bf16_pairs_avx512`].
/// Subnormal bf16 inputs count as zero, as in the pair micro-kernel.
///
/// # Panics
/// As [`gemm_f16_f32acc_avx512_dot`], with `ldbt < ⌈k/32⌉·16`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_bf16_f32acc_avx512bf16_dot(
    a: &[bf16],
    lda: usize,
    rows: usize,
    bt: &[u32],
    ldbt: usize,
    k: usize,
    n: usize,
    out: &mut TileOut<'_>,
) {
    check_dot(a, lda, rows, bt, ldbt, k, n, out);
    // SAFETY: installed only with AVX-512-BF16; `check_dot` bounds every access.
    unsafe { DOT_BF16[n - 1](a.as_ptr(), lda, rows, bt.as_ptr().cast(), ldbt, k, out) }
}

/// op(B)ᵀ for the hgemm dot kernel: row j at `dst[j·ldbt..]`, widened, zero
/// past k. B stored n×k is widened row by row; stored k×n, 16 depth steps
/// of the n columns are transposed in registers.
///
/// # Panics
/// If B's window or `dst` is too short, `n > 16` or `ldbt < ⌈k/16⌉·16`.
pub fn pack_bt_f16_avx512(b: &[f16], ldb: usize, tb: Transpose, k: usize, n: usize, dst: &mut [f32], ldbt: usize) {
    assert!(n <= L && ldbt >= k.div_ceil(L) * L && dst.len() >= n * ldbt, "pack_bt: destination too short");
    if n == 0 || k == 0 {
        return;
    }
    let (off, span) = pack::b_window(tb, ldb, 0, n, 0, k);
    assert!(off + span <= b.len(), "pack_bt: window outside B");
    let (s, d) = (b[off..].as_ptr(), dst.as_mut_ptr());
    // SAFETY: window and destination checked above; masks keep every load
    // inside the window; avx512 table only.
    unsafe { pack_bt_f16_raw(s, ldb, tb, k, n, d, ldbt) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
unsafe fn pack_bt_f16_raw(s: *const f16, ldb: usize, tb: Transpose, k: usize, n: usize, d: *mut f32, ldbt: usize) {
    // SAFETY: see `pack_bt_f16_avx512`.
    unsafe {
        for j in 0..n {
            for c in k.div_ceil(L) * L / L..ldbt / L {
                _mm512_storeu_ps(d.add(j * ldbt + c * L), _mm512_setzero_ps());
            }
        }
        let mut p = 0;
        while p < k {
            let valid = (k - p).min(L);
            match tb {
                Transpose::Yes => {
                    for j in 0..n {
                        _mm512_storeu_ps(
                            d.add(j * ldbt + p),
                            <f16 as Lanes>::load(s.add(j * ldb + p), lane_mask(valid, 0)),
                        );
                    }
                }
                Transpose::No => {
                    let mut r = [_mm512_setzero_ps(); L];
                    for (q, x) in r.iter_mut().enumerate().take(valid) {
                        *x = <f16 as Lanes>::load(s.add((p + q) * ldb), lane_mask(n, 0));
                    }
                    for (j, x) in transpose16(&r).iter().enumerate().take(n) {
                        _mm512_storeu_ps(d.add(j * ldbt + p), *x);
                    }
                }
            }
            p += L;
        }
    }
}

/// op(B)ᵀ for the bgemm dot kernel: row j at `dst[j·ldbt..]` as pairs along
/// k (an odd depth's last pair has a zero high half), zero past them. B
/// stored n×k is copied row by row; stored k×n, two depth rows are
/// interleaved (`vpermt2w`) and 16 pairs of the n columns transposed in
/// registers.
///
/// # Panics
/// If B's window or `dst` is too short, `n > 16` or `ldbt < ⌈k/32⌉·16`.
pub fn pack_bt_bf16_pairs_avx512(
    b: &[bf16],
    ldb: usize,
    tb: Transpose,
    k: usize,
    n: usize,
    dst: &mut [u32],
    ldbt: usize,
) {
    assert!(n <= L && ldbt >= k.div_ceil(2 * L) * L && dst.len() >= n * ldbt, "pack_bt: destination too short");
    if n == 0 || k == 0 {
        return;
    }
    let (off, span) = pack::b_window(tb, ldb, 0, n, 0, k);
    assert!(off + span <= b.len(), "pack_bt: window outside B");
    let (s, d) = (b[off..].as_ptr().cast::<u16>(), dst.as_mut_ptr());
    // SAFETY: window and destination checked above; masks keep every load
    // inside the window; avx512 table only.
    unsafe { pack_bt_pairs_raw(s, ldb, tb, k, n, d, ldbt) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn pack_bt_pairs_raw(s: *const u16, ldb: usize, tb: Transpose, k: usize, n: usize, d: *mut u32, ldbt: usize) {
    const PAIRS: [u16; 32] = {
        let mut t = [0u16; 32];
        let mut l = 0;
        while l < 32 {
            t[l] = if l % 2 == 0 { (l / 2) as u16 } else { 32 + (l / 2) as u16 };
            l += 1;
        }
        t
    };
    // SAFETY: see `pack_bt_bf16_pairs_avx512`.
    unsafe {
        let zero_from = k.div_ceil(2 * L) * L;
        for j in 0..n {
            for c in zero_from / L..ldbt / L {
                _mm512_storeu_si512(d.add(j * ldbt + c * L).cast(), _mm512_setzero_si512());
            }
        }
        let idx = _mm512_loadu_si512(PAIRS.as_ptr().cast());
        let nmask: __mmask32 = (1u32 << n) - 1;
        let mut p = 0;
        while p < k {
            let valid = (k - p).min(2 * L);
            match tb {
                Transpose::Yes => {
                    let emask: __mmask32 = if valid >= 32 { u32::MAX } else { (1u32 << valid) - 1 };
                    for j in 0..n {
                        let v = _mm512_maskz_loadu_epi16(emask, s.add(j * ldb + p).cast());
                        _mm512_storeu_si512(d.add(j * ldbt + p / 2).cast(), v);
                    }
                }
                Transpose::No => {
                    let mut r = [_mm512_setzero_ps(); L];
                    for (q, x) in r.iter_mut().enumerate().take(valid.div_ceil(2)) {
                        let lo = _mm512_maskz_loadu_epi16(nmask, s.add((p + 2 * q) * ldb).cast());
                        let hi = if 2 * q + 1 < valid {
                            _mm512_maskz_loadu_epi16(nmask, s.add((p + 2 * q + 1) * ldb).cast())
                        } else {
                            _mm512_setzero_si512()
                        };
                        *x = _mm512_castsi512_ps(_mm512_permutex2var_epi16(lo, idx, hi));
                    }
                    for (j, x) in transpose16(&r).iter().enumerate().take(n) {
                        _mm512_storeu_ps(d.add(j * ldbt + p / 2).cast(), *x);
                    }
                }
            }
            p += 2 * L;
        }
    }
}

// ---------------------------------------------------------------- packing

/// Loads 16 values (lanes under `mask`) of an input type as f32.
trait Lanes: Copy + 'static {
    /// # Safety
    /// Lanes under `mask` must be readable at `p`.
    unsafe fn load(p: *const Self, mask: __mmask16) -> __m512;
}

impl Lanes for f32 {
    #[inline(always)]
    unsafe fn load(p: *const f32, mask: __mmask16) -> __m512 {
        // SAFETY: forwarded.
        unsafe { _mm512_maskz_loadu_ps(mask, p) }
    }
}

impl Lanes for f16 {
    #[inline(always)]
    unsafe fn load(p: *const f16, mask: __mmask16) -> __m512 {
        // SAFETY: forwarded.
        unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p.cast())) }
    }
}

impl Lanes for bf16 {
    #[inline(always)]
    unsafe fn load(p: *const bf16, mask: __mmask16) -> __m512 {
        // SAFETY: forwarded.
        unsafe {
            let h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p.cast()));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(h))
        }
    }
}

/// Transposes a 16×16 block of 32-bit lanes held in 16 registers (row `i`
/// of the result is lane `i` of every input), in 64 shuffles: the packers'
/// transposing loops use it instead of element-by-element copies.
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose16(r: &[__m512; L]) -> [__m512; L] {
    let mut t = [_mm512_setzero_ps(); L];
    for i in 0..L / 2 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + c], 128-bit lane l: column 4l + c of rows 4g..4g+4.
    let mut u = [_mm512_setzero_ps(); L];
    for g in 0..4 {
        let b = 4 * g;
        u[b] = _mm512_shuffle_ps::<0x44>(t[b], t[b + 2]);
        u[b + 1] = _mm512_shuffle_ps::<0xEE>(t[b], t[b + 2]);
        u[b + 2] = _mm512_shuffle_ps::<0x44>(t[b + 1], t[b + 3]);
        u[b + 3] = _mm512_shuffle_ps::<0xEE>(t[b + 1], t[b + 3]);
    }
    let mut out = [_mm512_setzero_ps(); L];
    for c in 0..4 {
        let v = _mm512_shuffle_f32x4::<0x88>(u[c], u[4 + c]);
        let w = _mm512_shuffle_f32x4::<0x88>(u[8 + c], u[12 + c]);
        let v1 = _mm512_shuffle_f32x4::<0xDD>(u[c], u[4 + c]);
        let w1 = _mm512_shuffle_f32x4::<0xDD>(u[8 + c], u[12 + c]);
        out[c] = _mm512_shuffle_f32x4::<0x88>(v, w);
        out[8 + c] = _mm512_shuffle_f32x4::<0xDD>(v, w);
        out[4 + c] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
        out[12 + c] = _mm512_shuffle_f32x4::<0xDD>(v1, w1);
    }
    out
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_a_raw<T: Lanes>(src: *const T, ld: usize, t: Transpose, rows: usize, depth: usize, dst: *mut f32) {
    let rmask = lane_mask(rows, 0);
    // SAFETY: the caller checked that op(A)'s rows × depth window starting at
    // `src` and rows·depth elements at `dst` are in bounds; masks keep every
    // access inside the window.
    unsafe {
        match t {
            // Stored k×m: each depth step's rows are contiguous.
            Transpose::Yes => {
                for p in 0..depth {
                    _mm512_mask_storeu_ps(dst.add(p * rows), rmask, T::load(src.add(p * ld), rmask));
                }
            }
            // Stored m×k: up to 16 depth steps of every row (a masked load
            // for the last few, so short depths stay vectorised), transposed
            // in registers, each depth step's `rows` values one masked store.
            Transpose::No => {
                let mut p = 0;
                while p < depth {
                    let w = (depth - p).min(L);
                    let mask = lane_mask(w, 0);
                    let mut r = [_mm512_setzero_ps(); L];
                    for (i, x) in r.iter_mut().enumerate().take(rows) {
                        *x = T::load(src.add(i * ld + p), mask);
                    }
                    for (q, x) in transpose16(&r).iter().enumerate().take(w) {
                        _mm512_mask_storeu_ps(dst.add((p + q) * rows), rmask, *x);
                    }
                    p += w;
                }
            }
        }
    }
}

/// Packs a B micro-panel `W` columns wide (NR, or the wide kernel's
/// `WIDE_NR`): depth step p at `dst[p·W..]`, columns past `cols` zero.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
unsafe fn pack_b_raw<T: Lanes, const W: usize>(
    src: *const T,
    ld: usize,
    t: Transpose,
    cols: usize,
    depth: usize,
    dst: *mut f32,
) {
    // SAFETY: as `pack_a_raw`, for op(B)'s depth × cols window and depth·W
    // elements at `dst`.
    unsafe {
        match t {
            Transpose::No => {
                for p in 0..depth {
                    let s = src.add(p * ld);
                    for v in 0..W / L {
                        let mask = lane_mask(cols, v);
                        _mm512_storeu_ps(dst.add(p * W + v * L), T::load(s.wrapping_add(v * L), mask));
                    }
                }
            }
            // Stored n×k: up to 16 depth steps of each column (masked for the
            // last few), transposed in registers per half of the panel;
            // columns past `cols` stay zero.
            Transpose::Yes => {
                let mut p = 0;
                while p < depth {
                    let w = (depth - p).min(L);
                    let mask = lane_mask(w, 0);
                    for h in 0..W / L {
                        let mut r = [_mm512_setzero_ps(); L];
                        for (j, x) in r.iter_mut().enumerate().take(cols.saturating_sub(h * L)) {
                            *x = T::load(src.add((h * L + j) * ld + p), mask);
                        }
                        let t = if h * L < cols { transpose16(&r) } else { r };
                        for (q, x) in t.iter().enumerate().take(w) {
                            _mm512_storeu_ps(dst.add((p + q) * W + h * L), *x);
                        }
                    }
                    p += w;
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
    // SAFETY: window and destination checked above; avx512 table only.
    unsafe { pack_a_raw(src.as_ptr().add(off), ld, t, rows, depth, dst.as_mut_ptr()) }
}

#[allow(clippy::too_many_arguments)]
fn pack_b_to_f32<T: Lanes, const W: usize>(
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
    assert!(nr == W && (1..=W).contains(&cols) && dst.len() >= W * depth);
    if depth == 0 {
        return;
    }
    let (off, span) = pack::b_window(t, ld, j0, cols, p0, depth);
    assert!(off + span <= src.len(), "pack_b: window outside B");
    // SAFETY: window and destination checked above; avx512 table only.
    unsafe { pack_b_raw::<T, W>(src.as_ptr().add(off), ld, t, cols, depth, dst.as_mut_ptr()) }
}

/// Packs an f32 A micro-panel.
#[allow(clippy::too_many_arguments)]
pub fn pack_a_f32_avx512(s: &[f32], ld: usize, t: Transpose, i0: usize, r: usize, p0: usize, d: usize, o: &mut [f32]) {
    pack_a_to_f32(s, ld, t, i0, r, p0, d, o)
}

/// Packs an f32 B micro-panel.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_f32_avx512(
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
    pack_b_to_f32::<_, NR>(s, ld, t, j0, c, p0, d, nr, o)
}

/// Packs an f16 A micro-panel, widened to f32.
#[allow(clippy::too_many_arguments)]
pub fn pack_a_f16_f32_avx512(
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
pub fn pack_b_f16_f32_avx512(
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
    pack_b_to_f32::<_, NR>(s, ld, t, j0, c, p0, d, nr, o)
}

/// Packs a bf16 A micro-panel, widened to f32.
#[allow(clippy::too_many_arguments)]
pub fn pack_a_bf16_f32_avx512(
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
pub fn pack_b_bf16_f32_avx512(
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
    pack_b_to_f32::<_, NR>(s, ld, t, j0, c, p0, d, nr, o)
}

// ---------------------------------------------------------------- bf16 pair packing

/// Interleaves two rows of `count ≤ 32` bf16 into `count` pairs (`lo` in the
/// low half) at `dst`, writing `width ≥ count` u32 (zeros past `count`).
/// `hi` may be null (an odd depth's last step: its half is zero).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
unsafe fn interleave_pairs(lo: *const u16, hi: *const u16, count: usize, width: usize, dst: *mut u32) {
    let mask = if count >= 32 { u32::MAX } else { (1u32 << count) - 1 };
    // SAFETY: the caller guarantees `count` readable lanes at `lo` (and `hi`
    // unless null) and `width` writable u32 at `dst`; masks keep the rest untouched.
    unsafe {
        let a = _mm512_maskz_loadu_epi16(mask, lo.cast());
        let b = if hi.is_null() { _mm512_setzero_si512() } else { _mm512_maskz_loadu_epi16(mask, hi.cast()) };
        let idx0 = _mm512_loadu_si512(PAIR_IDX.as_ptr().cast());
        let idx1 = _mm512_add_epi16(idx0, _mm512_set1_epi16(16));
        let p0 = _mm512_permutex2var_epi16(a, idx0, b);
        let p1 = _mm512_permutex2var_epi16(a, idx1, b);
        let (m0, m1) = (lane_mask(width, 0), lane_mask(width, 1));
        _mm512_mask_storeu_epi32(dst.cast(), m0, p0);
        if width > L {
            _mm512_mask_storeu_epi32(dst.add(L).cast(), m1, p1);
        }
    }
}

/// `dst[q·width + j]` = the pair of rows `2q`, `2q + 1` at column `j` of
/// `src` (stride `ld`), for `j < count` (zero for `count ≤ j < width`),
/// `q < depth.div_ceil(2)`; an odd depth's last pair has a zero high half.
/// The loop sits in a target-feature function so that [`interleave_pairs`]
/// inlines into it (the packers, without the features, called it once per
/// pair).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn interleave_rows(src: *const u16, ld: usize, count: usize, depth: usize, width: usize, dst: *mut u32) {
    for q in 0..depth / 2 {
        // SAFETY: the caller guarantees `depth` rows of `count` readable u16
        // at stride `ld` and `width·depth.div_ceil(2)` writable u32 at `dst`.
        unsafe { interleave_pairs(src.add(2 * q * ld), src.add((2 * q + 1) * ld), count, width, dst.add(q * width)) };
    }
    if depth % 2 == 1 {
        let q = depth / 2;
        // SAFETY: as above, for the last row.
        unsafe { interleave_pairs(src.add(2 * q * ld), core::ptr::null(), count, width, dst.add(q * width)) };
    }
}

/// `dst[q·width + j]` = the pair at `src + j·ld + 2q` for `j < count` (zero
/// for `count ≤ j < width`), `q < depth.div_ceil(2)`; an odd depth's last
/// pair has a zero high half. Up to 16 pairs of each row are one masked load
/// (the mask counts bf16 elements, so an odd depth's missing half reads as
/// zero), transposed in registers as 32-bit lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
unsafe fn gather_pairs(src: *const u16, ld: usize, count: usize, depth: usize, width: usize, dst: *mut u32) {
    let pairs = depth.div_ceil(2);
    // SAFETY: the caller guarantees `count` rows of `depth` readable u16 at
    // stride `ld` and `width·depth.div_ceil(2)` writable u32 at `dst`; the
    // element mask keeps loads inside each row, the lane mask stores inside
    // `width`.
    unsafe {
        let mut q = 0;
        while q < pairs {
            let w = (pairs - q).min(L);
            let elems = (depth - 2 * q).min(2 * L);
            let emask: __mmask32 = if elems >= 32 { u32::MAX } else { (1u32 << elems) - 1 };
            for h in 0..width.div_ceil(L) {
                let mut r = [_mm512_setzero_ps(); L];
                for (j, x) in r.iter_mut().enumerate().take(count.saturating_sub(h * L)) {
                    let v = _mm512_maskz_loadu_epi16(emask, src.add((h * L + j) * ld + 2 * q).cast());
                    *x = _mm512_castsi512_ps(v);
                }
                let t = if h * L < count { transpose16(&r) } else { r };
                let smask = lane_mask(width - h * L, 0);
                for (qq, x) in t.iter().enumerate().take(w) {
                    _mm512_mask_storeu_ps(dst.add((q + qq) * width + h * L).cast(), smask, *x);
                }
            }
            q += w;
        }
    }
}

/// Packs a bf16 A micro-panel as depth pairs (`pack::pack_a_bf16_pairs_generic`'s layout).
#[allow(clippy::too_many_arguments)]
pub fn pack_a_bf16_pairs_avx512(
    src: &[bf16],
    ld: usize,
    t: Transpose,
    i0: usize,
    rows: usize,
    p0: usize,
    depth: usize,
    dst: &mut [u32],
) {
    let pairs = depth.div_ceil(2);
    assert!((1..=MR).contains(&rows) && dst.len() >= rows * pairs);
    if depth == 0 {
        return;
    }
    let (off, span) = pack::a_window(t, ld, i0, rows, p0, depth);
    assert!(off + span <= src.len(), "pack_a: window outside A");
    let (s, d) = (src[off..].as_ptr().cast::<u16>(), dst.as_mut_ptr());
    // SAFETY: window and destination checked above; avx512 table only.
    unsafe {
        match t {
            Transpose::No => gather_pairs(s, ld, rows, depth, rows, d),
            Transpose::Yes => interleave_rows(s, ld, rows, depth, rows, d),
        }
    }
}

/// Packs a bf16 B micro-panel as depth pairs, zero-padded to NR columns
/// (`pack::pack_b_bf16_pairs_generic`'s layout).
#[allow(clippy::too_many_arguments)]
pub fn pack_b_bf16_pairs_avx512(
    src: &[bf16],
    ld: usize,
    t: Transpose,
    j0: usize,
    cols: usize,
    p0: usize,
    depth: usize,
    nr: usize,
    dst: &mut [u32],
) {
    let pairs = depth.div_ceil(2);
    assert!(nr == NR && (1..=NR).contains(&cols) && dst.len() >= NR * pairs);
    if depth == 0 {
        return;
    }
    let (off, span) = pack::b_window(t, ld, j0, cols, p0, depth);
    assert!(off + span <= src.len(), "pack_b: window outside B");
    let (s, d) = (src[off..].as_ptr().cast::<u16>(), dst.as_mut_ptr());
    // SAFETY: window and destination checked above; avx512 table only.
    unsafe {
        match t {
            Transpose::No => interleave_rows(s, ld, cols, depth, NR, d),
            Transpose::Yes => gather_pairs(s, ld, cols, depth, NR, d),
        }
    }
}

/// sgemm's wide kernel and the shapes it takes (hgemm's: the same kernel,
/// B widened while packing, A widened once).
pub(crate) fn wide<T>(pack_b: Kernel<crate::gemm::PackBFn<T, f32>>) -> Wide<T> {
    Wide {
        ukr: Kernel { f: gemm_f32_avx512_wide_4x96, name: "gemm_f32_avx512_wide_4x96" },
        pack_b,
        mr: WIDE_MR,
        nr: WIDE_NR,
        // Every measured shape from 128 up ran faster on it (128³ 1.07×,
        // 1024³ 1.04×, the MLP forward 1.04×: docs/kernels.md); n = 10 and
        // k = 10 ran slower (their narrow and shallow kernels stay).
        min_m: 128,
        min_n: 128,
        min_k: 128,
    }
}

/// The avx512 path's GEMM registry; bgemm uses `vdpbf16ps` when `bf16`.
pub(crate) fn table(bf16_dot: bool) -> crate::gemm::Table {
    let shape = KernelShape { mr: MR, nr: NR, kpack: 1, bytes_per_k: 4 };
    let ukr: Kernel<crate::gemm::UkrFn<f32>> = Kernel { f: gemm_f32_avx512_14x32, name: "gemm_f32_avx512_14x32" };
    let tall = Some(Tall {
        ukr: Kernel { f: gemm_f32_avx512_tall_kx32, name: "gemm_f32_avx512_tall_kx32" },
        max_k: TALL_MAX_K,
    });
    let narrow: Option<Kernel<crate::gemm::UkrFn<f32>>> =
        Some(Kernel { f: gemm_f32_avx512_14x32_t, name: "gemm_f32_avx512_14x32_t" });
    let bgemm = if bf16_dot {
        Path::Pairs(Impl {
            shape: KernelShape { mr: MR, nr: NR, kpack: 2, bytes_per_k: 2 },
            ukr: Kernel { f: gemm_bf16_f32acc_avx512bf16_14x32, name: "gemm_bf16_f32acc_avx512bf16_14x32" },
            pack_a: Kernel { f: pack_a_bf16_pairs_avx512, name: "pack_a_bf16_pairs_avx512" },
            pack_b: Kernel { f: pack_b_bf16_pairs_avx512, name: "pack_b_bf16_pairs_avx512" },
            unpacked: false,
            tall: None,
            narrow: Some(Kernel {
                f: gemm_bf16_f32acc_avx512bf16_14x32_t,
                name: "gemm_bf16_f32acc_avx512bf16_14x32_t",
            }),
            wide: None,
            dot: Some(Dot {
                ukr: Kernel { f: gemm_bf16_f32acc_avx512bf16_dot, name: "gemm_bf16_f32acc_avx512bf16_dot" },
                pack: Kernel { f: pack_bt_bf16_pairs_avx512, name: "pack_bt_bf16_pairs_avx512" },
                min_k: 1,
                rows: Some(Kernel {
                    f: gemm_bf16_f32acc_avx512bf16_14x32_t_rows,
                    name: "gemm_bf16_f32acc_avx512bf16_14x32_t_rows",
                }),
            }),
            shallow: Some(Shallow {
                ukr: Kernel { f: gemm_bf16_f32acc_avx512bf16_shallow, name: "gemm_bf16_f32acc_avx512bf16_shallow" },
                max_k: BF16_SHALLOW_MAX_K,
            }),
        })
    } else {
        Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack_a_bf16_f32_avx512, name: "pack_a_bf16_f32_avx512" },
            pack_b: Kernel { f: pack_b_bf16_f32_avx512, name: "pack_b_bf16_f32_avx512" },
            unpacked: true,
            tall,
            narrow,
            dot: None,
            shallow: None,
            wide: None,
        })
    };
    crate::gemm::Table {
        sgemm: Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack_a_f32_avx512, name: "pack_a_f32_avx512" },
            pack_b: Kernel { f: pack_b_f32_avx512, name: "pack_b_f32_avx512" },
            unpacked: true,
            tall,
            narrow: None,
            dot: None,
            shallow: None,
            wide: Some(wide(Kernel { f: pack_b_wide_f32_avx512, name: "pack_b_wide_f32_avx512" })),
        }),
        hgemm: Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack_a_f16_f32_avx512, name: "pack_a_f16_f32_avx512" },
            pack_b: Kernel { f: pack_b_f16_f32_avx512, name: "pack_b_f16_f32_avx512" },
            unpacked: true,
            tall,
            narrow,
            wide: Some(wide(Kernel { f: pack_b_wide_f16_avx512, name: "pack_b_wide_f16_avx512" })),
            dot: Some(Dot {
                ukr: Kernel { f: gemm_f16_f32acc_avx512_dot, name: "gemm_f16_f32acc_avx512_dot" },
                pack: Kernel { f: pack_bt_f16_avx512, name: "pack_bt_f16_avx512" },
                min_k: 64,
                rows: None,
            }),
            shallow: None,
        }),
        bgemm,
    }
}

/// avx512's hgemm without the dot kernel (narrow products with A stored m×k
/// on the 14×32 kernel, widened while packing: the table's entry before the
/// dot kernel, 0.80× of it on fwd3), reachable through
/// `gemm::hgemm_alternatives` so tests and benchmarks keep both.
pub(crate) fn hgemm_no_dot() -> Path<f16> {
    let Path::F32(imp) = table(false).hgemm else { unreachable!("avx512 hgemm packs f32 panels") };
    Path::F32(Impl { dot: None, ..imp })
}

// ---------------------------------------------------------------- peak loops

/// Register-resident FMA loop: 24 independent zmm chains, `iters` rounds
/// (written in assembly so that nothing but the FMAs runs in the loop).
#[target_feature(enable = "avx512f,fma")]
fn fma_loop_avx512(iters: u64) {
    // SAFETY: register-only arithmetic; the features are enabled.
    unsafe {
        core::arch::asm!(
            "vxorps xmm30, xmm30, xmm30",
            "vxorps xmm31, xmm31, xmm31",
            "2:",
            "vfmadd231ps zmm0, zmm30, zmm31",
            "vfmadd231ps zmm1, zmm30, zmm31",
            "vfmadd231ps zmm2, zmm30, zmm31",
            "vfmadd231ps zmm3, zmm30, zmm31",
            "vfmadd231ps zmm4, zmm30, zmm31",
            "vfmadd231ps zmm5, zmm30, zmm31",
            "vfmadd231ps zmm6, zmm30, zmm31",
            "vfmadd231ps zmm7, zmm30, zmm31",
            "vfmadd231ps zmm8, zmm30, zmm31",
            "vfmadd231ps zmm9, zmm30, zmm31",
            "vfmadd231ps zmm10, zmm30, zmm31",
            "vfmadd231ps zmm11, zmm30, zmm31",
            "vfmadd231ps zmm12, zmm30, zmm31",
            "vfmadd231ps zmm13, zmm30, zmm31",
            "vfmadd231ps zmm14, zmm30, zmm31",
            "vfmadd231ps zmm15, zmm30, zmm31",
            "vfmadd231ps zmm16, zmm30, zmm31",
            "vfmadd231ps zmm17, zmm30, zmm31",
            "vfmadd231ps zmm18, zmm30, zmm31",
            "vfmadd231ps zmm19, zmm30, zmm31",
            "vfmadd231ps zmm20, zmm30, zmm31",
            "vfmadd231ps zmm21, zmm30, zmm31",
            "vfmadd231ps zmm22, zmm30, zmm31",
            "vfmadd231ps zmm23, zmm30, zmm31",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) iters.max(1) => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _, out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _, out("zmm30") _, out("zmm31") _,
            options(nostack),
        );
    }
}

/// Register-resident `vdpbf16ps` loop: 24 independent zmm chains.
#[target_feature(enable = "avx512f,avx512bf16")]
fn dpbf16_loop_avx512(iters: u64) {
    // SAFETY: register-only arithmetic; the features are enabled.
    unsafe {
        core::arch::asm!(
            "vxorps xmm30, xmm30, xmm30",
            "vxorps xmm31, xmm31, xmm31",
            "2:",
            "vdpbf16ps zmm0, zmm30, zmm31",
            "vdpbf16ps zmm1, zmm30, zmm31",
            "vdpbf16ps zmm2, zmm30, zmm31",
            "vdpbf16ps zmm3, zmm30, zmm31",
            "vdpbf16ps zmm4, zmm30, zmm31",
            "vdpbf16ps zmm5, zmm30, zmm31",
            "vdpbf16ps zmm6, zmm30, zmm31",
            "vdpbf16ps zmm7, zmm30, zmm31",
            "vdpbf16ps zmm8, zmm30, zmm31",
            "vdpbf16ps zmm9, zmm30, zmm31",
            "vdpbf16ps zmm10, zmm30, zmm31",
            "vdpbf16ps zmm11, zmm30, zmm31",
            "vdpbf16ps zmm12, zmm30, zmm31",
            "vdpbf16ps zmm13, zmm30, zmm31",
            "vdpbf16ps zmm14, zmm30, zmm31",
            "vdpbf16ps zmm15, zmm30, zmm31",
            "vdpbf16ps zmm16, zmm30, zmm31",
            "vdpbf16ps zmm17, zmm30, zmm31",
            "vdpbf16ps zmm18, zmm30, zmm31",
            "vdpbf16ps zmm19, zmm30, zmm31",
            "vdpbf16ps zmm20, zmm30, zmm31",
            "vdpbf16ps zmm21, zmm30, zmm31",
            "vdpbf16ps zmm22, zmm30, zmm31",
            "vdpbf16ps zmm23, zmm30, zmm31",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) iters.max(1) => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _, out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _, out("zmm30") _, out("zmm31") _,
            options(nostack),
        );
    }
}

/// FLOPs of `iters` rounds of the f32 FMA peak loop (and its result, to keep it).
pub(crate) fn fma_peak(iters: u64) -> Option<(f64, f32)> {
    if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")) {
        return None;
    }
    // SAFETY: the features were just detected.
    unsafe { fma_loop_avx512(iters) };
    Some((iters.max(1) as f64 * 24.0 * 16.0 * 2.0, 0.0))
}

/// FLOPs of `iters` rounds of the bf16 dot-product peak loop (2 products and
/// 2 sums per lane and instruction).
pub(crate) fn dpbf16_peak(iters: u64) -> Option<(f64, f32)> {
    if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")) {
        return None;
    }
    // SAFETY: the features were just detected.
    unsafe { dpbf16_loop_avx512(iters) };
    Some((iters.max(1) as f64 * 24.0 * 16.0 * 4.0, 0.0))
}
