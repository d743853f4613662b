//! NEON GEMM: an 8×12 f32 micro-kernel (24 accumulators, three B vectors,
//! eight A values in two vectors multiplied by lane: `fmla v.4s, v.4s,
//! v.s[l]`), every edge tile generated from the same body by const generics,
//! and SIMD packers that transpose 4×4 blocks and widen f16/bf16 while
//! packing. With FEAT_FHM, hgemm keeps f16 panels and multiplies by lane with
//! `fmlal`/`fmlal2`: f16 products exact, accumulated in FP32 with one
//! rounding, i.e. the FP32 FMA of the widened values.
//!
//! NaN and ±Inf propagate as IEEE FMA says; ±0 and subnormals are kept (the
//! default FPCR does not flush). The store is `scalar::gemm::store_tile`'s:
//! f32 and f16 destinations in vectors (`fcvtn` rounds to nearest even,
//! subnormals kept), bf16 destinations and partial vectors element by element.

use std::arch::aarch64::*;

use half::{bf16, f16};

use crate::dispatch::Kernel;
use crate::gemm::{APanel, BPanel, Dst, Impl, KernelShape, MicroTile, Path, Prev, Table, TileOut, Transpose};
use crate::gemm::{UkrFn, check_tile, pack};
use crate::scalar::gemm::store_one;

/// Rows of the register block.
pub const MR: usize = 8;
/// Columns of the register block (three f32 vectors).
pub const NR: usize = 12;

// ---------------------------------------------------------------- store

/// Stores row `i` of a tile (`n` valid columns) through the tile's epilogue.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store_row<const NV: usize>(acc: &[float32x4_t; NV], i: usize, n: usize, out: &mut TileOut<'_>) {
    let vector_dst = matches!(out.dst, Dst::F32(..) | Dst::F16(..));
    let zero = vdupq_n_f32(0.0);
    let alpha = vdupq_n_f32(out.alpha);
    for (v, &a) in acc.iter().enumerate() {
        let j = 4 * v;
        if !(vector_dst && j + 4 <= n) {
            let mut lanes = [0.0f32; 4];
            // SAFETY: `lanes` holds four f32.
            unsafe { vst1q_f32(lanes.as_mut_ptr(), a) };
            for (l, &x) in lanes.iter().enumerate().take(n.saturating_sub(j)) {
                store_one(out, i, j + l, x);
            }
            continue;
        }
        // SAFETY: `check_tile` established that row i, columns j..j+4 (< n)
        // of the destination, the scratch and the bias are inside their slices.
        unsafe {
            let mut x = match out.prev {
                Prev::None => vmulq_f32(a, alpha),
                Prev::Beta(beta) => {
                    let Dst::F32(c, ld) = &out.dst else { unreachable!("checked by check_tile") };
                    vfmaq_f32(vmulq_n_f32(vld1q_f32(c.as_ptr().add(i * ld + j)), beta), a, alpha)
                }
                Prev::Dst => {
                    let Dst::F32(c, ld) = &out.dst else { unreachable!("checked by check_tile") };
                    vfmaq_f32(vld1q_f32(c.as_ptr().add(i * ld + j)), a, alpha)
                }
                Prev::From { src, ld } => vfmaq_f32(vld1q_f32(src.as_ptr().add(i * ld + j)), a, alpha),
            };
            if let Some(bias) = out.bias {
                x = vaddq_f32(x, vld1q_f32(bias.as_ptr().add(j)));
            }
            if out.relu {
                // x > 0 or NaN keeps x; everything else (incl. −0) becomes +0.
                let keep = vorrq_u32(vcgtq_f32(x, zero), vmvnq_u32(vceqq_f32(x, x)));
                x = vbslq_f32(keep, x, zero);
            }
            match &mut out.dst {
                Dst::F32(c, ld) => vst1q_f32(c.as_mut_ptr().add(i * *ld + j), x),
                Dst::F16(c, ld) => {
                    vst1_u16(c.as_mut_ptr().add(i * *ld + j).cast(), vreinterpret_u16_f16(vcvt_f16_f32(x)))
                }
                Dst::Bf16(..) => unreachable!("bf16 rows are stored element by element"),
            }
        }
    }
}

// ---------------------------------------------------------------- f32 kernel

type UkrRaw<P> = unsafe fn(usize, *const P, *const P, usize, &mut TileOut<'_>);

/// `c + b·a[l]` (`fmla` by element; `l` is a constant once unrolled).
#[inline(always)]
fn fma_lane(c: float32x4_t, b: float32x4_t, a: float32x4_t, l: usize) -> float32x4_t {
    // SAFETY: Advanced SIMD is part of every aarch64 target; registers only.
    unsafe {
        match l {
            0 => vfmaq_laneq_f32::<0>(c, b, a),
            1 => vfmaq_laneq_f32::<1>(c, b, a),
            2 => vfmaq_laneq_f32::<2>(c, b, a),
            _ => vfmaq_laneq_f32::<3>(c, b, a),
        }
    }
}

/// The f32 body for an M×(NV·4) tile of packed panels (A `[p][i]` with
/// stride M, B `[p][j]` with stride NR, zero-padded).
#[target_feature(enable = "neon")]
unsafe fn ukr_f32<const M: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    b: *const f32,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let zero = vdupq_n_f32(0.0);
    let mut acc = [[zero; NV]; M];
    // A's M values of a step load as one or two vectors, reading into the
    // next step; the last steps, where that would leave the panel, copy.
    let span = if M > 4 { 8 } else { 4 };
    let (mut ap, mut bp) = (a, b);
    for p in 0..k {
        // SAFETY: `check_tile` established k·M elements of A and k·NR of B;
        // the vector loads of A stay below k·M (tested above the copy).
        unsafe {
            let mut bv = [zero; NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = vld1q_f32(bp.add(4 * v));
            }
            let av = if p * M + span <= k * M {
                [vld1q_f32(ap), if M > 4 { vld1q_f32(ap.add(4)) } else { zero }]
            } else {
                let mut buf = [0.0f32; 8];
                core::ptr::copy_nonoverlapping(ap, buf.as_mut_ptr(), M);
                [vld1q_f32(buf.as_ptr()), vld1q_f32(buf.as_ptr().add(4))]
            };
            for (i, row) in acc.iter_mut().enumerate() {
                for (c, &x) in row.iter_mut().zip(&bv) {
                    *c = fma_lane(*c, x, av[i / 4], i % 4);
                }
            }
            ap = ap.add(M);
            bp = bp.add(NR);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: `check_tile` passed for this tile.
        unsafe { store_row::<NV>(row, i, n, out) };
    }
}

macro_rules! grid {
    ($f:ident, $P:ty; $($m:literal)*) => {
        [ $( [$f::<$m, 1> as UkrRaw<$P>, $f::<$m, 2> as UkrRaw<$P>, $f::<$m, 3> as UkrRaw<$P>] ),* ]
    };
}

static F32_GRID: [[UkrRaw<f32>; 3]; MR] = grid!(ukr_f32, f32; 1 2 3 4 5 6 7 8);

fn packed<'a, P: Copy>(t: &MicroTile<'a, P>) -> (&'a [P], &'a [P]) {
    match (t.a, t.b) {
        (APanel::Packed(a), BPanel::Packed(b)) => (a, b),
        _ => panic!("the neon GEMM kernels read packed panels only"),
    }
}

/// f32 micro-kernel, 8×12, and every smaller tile.
///
/// # Panics
/// If `check_tile` fails or an operand is not packed.
pub fn gemm_f32_neon_8x12(t: &MicroTile<'_, f32>, out: &mut TileOut<'_>) {
    check_tile(t, out, MR, NR);
    let (a, b) = packed(t);
    let f = F32_GRID[t.m - 1][t.n.div_ceil(4) - 1];
    // SAFETY: NEON is part of every aarch64 target; `check_tile` bounds every
    // access the kernel makes.
    unsafe { f(t.k, a.as_ptr(), b.as_ptr(), t.n, out) }
}

// ---------------------------------------------------------------- f16 kernel (FHM)

/// `c + widen(b[0..4])·a[l]` (`fmlal` by element).
#[target_feature(enable = "neon,fp16,fhm")]
#[inline]
fn fmlal_lo(c: float32x4_t, b: float16x8_t, a: float16x8_t, l: usize) -> float32x4_t {
    match l {
        0 => vfmlalq_laneq_low_f16::<0>(c, b, a),
        1 => vfmlalq_laneq_low_f16::<1>(c, b, a),
        2 => vfmlalq_laneq_low_f16::<2>(c, b, a),
        3 => vfmlalq_laneq_low_f16::<3>(c, b, a),
        4 => vfmlalq_laneq_low_f16::<4>(c, b, a),
        5 => vfmlalq_laneq_low_f16::<5>(c, b, a),
        6 => vfmlalq_laneq_low_f16::<6>(c, b, a),
        _ => vfmlalq_laneq_low_f16::<7>(c, b, a),
    }
}

/// `c + widen(b[4..8])·a[l]` (`fmlal2` by element).
#[target_feature(enable = "neon,fp16,fhm")]
#[inline]
fn fmlal_hi(c: float32x4_t, b: float16x8_t, a: float16x8_t, l: usize) -> float32x4_t {
    match l {
        0 => vfmlalq_laneq_high_f16::<0>(c, b, a),
        1 => vfmlalq_laneq_high_f16::<1>(c, b, a),
        2 => vfmlalq_laneq_high_f16::<2>(c, b, a),
        3 => vfmlalq_laneq_high_f16::<3>(c, b, a),
        4 => vfmlalq_laneq_high_f16::<4>(c, b, a),
        5 => vfmlalq_laneq_high_f16::<5>(c, b, a),
        6 => vfmlalq_laneq_high_f16::<6>(c, b, a),
        _ => vfmlalq_laneq_high_f16::<7>(c, b, a),
    }
}

/// The f16-panel body: one B row is 12 f16 (a full vector and a half), the
/// M ≤ 8 A values of a step one vector.
#[target_feature(enable = "neon,fp16,fhm")]
unsafe fn ukr_f16<const M: usize, const NV: usize>(
    k: usize,
    a: *const f16,
    b: *const f16,
    n: usize,
    out: &mut TileOut<'_>,
) {
    let zero = vdupq_n_f32(0.0);
    let mut acc = [[zero; NV]; M];
    let (mut ap, mut bp) = (a.cast::<u16>(), b.cast::<u16>());
    for p in 0..k {
        // SAFETY: `check_tile` established k·M elements of A and k·NR of B;
        // the vector load of A stays below k·M (tested above the copy).
        unsafe {
            let b0 = vreinterpretq_f16_u16(vld1q_u16(bp));
            let b1 = if NV == 3 { vreinterpretq_f16_u16(vcombine_u16(vld1_u16(bp.add(8)), vdup_n_u16(0))) } else { b0 };
            let av = if p * M + 8 <= k * M {
                vld1q_u16(ap)
            } else {
                let mut buf = [0u16; 8];
                core::ptr::copy_nonoverlapping(ap, buf.as_mut_ptr(), M);
                vld1q_u16(buf.as_ptr())
            };
            let av = vreinterpretq_f16_u16(av);
            for (i, row) in acc.iter_mut().enumerate() {
                row[0] = fmlal_lo(row[0], b0, av, i);
                if NV > 1 {
                    row[1] = fmlal_hi(row[1], b0, av, i);
                }
                if NV > 2 {
                    row[2] = fmlal_lo(row[2], b1, av, i);
                }
            }
            ap = ap.add(M);
            bp = bp.add(NR);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: `check_tile` passed for this tile.
        unsafe { store_row::<NV>(row, i, n, out) };
    }
}

static F16_GRID: [[UkrRaw<f16>; 3]; MR] = grid!(ukr_f16, f16; 1 2 3 4 5 6 7 8);

/// f16-panel micro-kernel with `fmlal`/`fmlal2` (FEAT_FHM), 8×12 and every
/// smaller tile, FP32 accumulation.
///
/// # Panics
/// If `check_tile` fails or an operand is not packed.
pub fn gemm_f16_f32acc_neon_fhm_8x12(t: &MicroTile<'_, f16>, out: &mut TileOut<'_>) {
    check_tile(t, out, MR, NR);
    let (a, b) = packed(t);
    let f = F16_GRID[t.m - 1][t.n.div_ceil(4) - 1];
    // SAFETY: installed only when the CPU has FEAT_FP16 and FEAT_FHM
    // (`table(true)`); `check_tile` bounds every access.
    unsafe { f(t.k, a.as_ptr(), b.as_ptr(), t.n, out) }
}

// ---------------------------------------------------------------- packing

/// One packing conversion: 4-lane loads of `In` as vectors `V` of `Out`.
trait Conv {
    type In: Copy;
    type Out: Copy;
    type V: Copy;
    const ZERO: Self::Out;
    /// # Safety
    /// Four elements readable at `p`.
    unsafe fn load4(p: *const Self::In) -> Self::V;
    /// # Safety
    /// Four elements writable at `p`.
    unsafe fn store4(p: *mut Self::Out, v: Self::V);
    /// # Safety
    /// `p` readable.
    unsafe fn one(p: *const Self::In) -> Self::Out;
    /// Rows of a 4×4 block to its columns.
    fn transpose4(r: [Self::V; 4]) -> [Self::V; 4];
}

#[inline(always)]
fn transpose4_f32(r: [float32x4_t; 4]) -> [float32x4_t; 4] {
    // SAFETY: Advanced SIMD is part of every aarch64 target; registers only.
    unsafe {
        let f = vreinterpretq_f64_f32;
        let (t0, t1) = (f(vtrn1q_f32(r[0], r[1])), f(vtrn2q_f32(r[0], r[1])));
        let (t2, t3) = (f(vtrn1q_f32(r[2], r[3])), f(vtrn2q_f32(r[2], r[3])));
        let g = vreinterpretq_f32_f64;
        [g(vtrn1q_f64(t0, t2)), g(vtrn1q_f64(t1, t3)), g(vtrn2q_f64(t0, t2)), g(vtrn2q_f64(t1, t3))]
    }
}

enum F32ToF32 {}
enum F16ToF32 {}
enum Bf16ToF32 {}
enum F16ToF16 {}

impl Conv for F32ToF32 {
    type In = f32;
    type Out = f32;
    type V = float32x4_t;
    const ZERO: f32 = 0.0;
    #[inline(always)]
    unsafe fn load4(p: *const f32) -> float32x4_t {
        // SAFETY: forwarded.
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store4(p: *mut f32, v: float32x4_t) {
        // SAFETY: forwarded.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn one(p: *const f32) -> f32 {
        // SAFETY: forwarded.
        unsafe { *p }
    }
    fn transpose4(r: [float32x4_t; 4]) -> [float32x4_t; 4] {
        transpose4_f32(r)
    }
}

impl Conv for F16ToF32 {
    type In = f16;
    type Out = f32;
    type V = float32x4_t;
    const ZERO: f32 = 0.0;
    #[inline(always)]
    unsafe fn load4(p: *const f16) -> float32x4_t {
        // SAFETY: forwarded; `fcvtl` widens exactly.
        unsafe { vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p.cast()))) }
    }
    #[inline(always)]
    unsafe fn store4(p: *mut f32, v: float32x4_t) {
        // SAFETY: forwarded.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn one(p: *const f16) -> f32 {
        // SAFETY: forwarded.
        crate::scalar::convert::f16_bits_to_f32(unsafe { *p }.to_bits())
    }
    fn transpose4(r: [float32x4_t; 4]) -> [float32x4_t; 4] {
        transpose4_f32(r)
    }
}

impl Conv for Bf16ToF32 {
    type In = bf16;
    type Out = f32;
    type V = float32x4_t;
    const ZERO: f32 = 0.0;
    #[inline(always)]
    unsafe fn load4(p: *const bf16) -> float32x4_t {
        // SAFETY: forwarded; a bf16 is the high half of its f32.
        unsafe { vreinterpretq_f32_u32(vshll_n_u16::<16>(vld1_u16(p.cast()))) }
    }
    #[inline(always)]
    unsafe fn store4(p: *mut f32, v: float32x4_t) {
        // SAFETY: forwarded.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn one(p: *const bf16) -> f32 {
        // SAFETY: forwarded.
        f32::from_bits(u32::from(unsafe { *p }.to_bits()) << 16)
    }
    fn transpose4(r: [float32x4_t; 4]) -> [float32x4_t; 4] {
        transpose4_f32(r)
    }
}

impl Conv for F16ToF16 {
    type In = f16;
    type Out = f16;
    type V = uint16x4_t;
    const ZERO: f16 = f16::ZERO;
    #[inline(always)]
    unsafe fn load4(p: *const f16) -> uint16x4_t {
        // SAFETY: forwarded.
        unsafe { vld1_u16(p.cast()) }
    }
    #[inline(always)]
    unsafe fn store4(p: *mut f16, v: uint16x4_t) {
        // SAFETY: forwarded.
        unsafe { vst1_u16(p.cast(), v) }
    }
    #[inline(always)]
    unsafe fn one(p: *const f16) -> f16 {
        // SAFETY: forwarded.
        unsafe { *p }
    }
    fn transpose4(r: [uint16x4_t; 4]) -> [uint16x4_t; 4] {
        // SAFETY: Advanced SIMD is part of every aarch64 target; registers only.
        unsafe {
            let f = vreinterpret_u32_u16;
            let (t0, t1) = (f(vtrn1_u16(r[0], r[1])), f(vtrn2_u16(r[0], r[1])));
            let (t2, t3) = (f(vtrn1_u16(r[2], r[3])), f(vtrn2_u16(r[2], r[3])));
            let g = vreinterpret_u16_u32;
            [g(vtrn1_u32(t0, t2)), g(vtrn1_u32(t1, t3)), g(vtrn2_u32(t0, t2)), g(vtrn2_u32(t1, t3))]
        }
    }
}

/// `dst[p·width + j] = src[p·ld + j]` for `j < count`, zero for
/// `count ≤ j < width`, `p < depth`: lines already laid out as the panel.
///
/// # Safety
/// `depth` lines of `count` elements at stride `ld` readable at `src`,
/// `depth·width` elements writable at `dst`.
#[target_feature(enable = "neon")]
unsafe fn copy_lines<C: Conv>(
    src: *const C::In,
    ld: usize,
    count: usize,
    depth: usize,
    width: usize,
    dst: *mut C::Out,
) {
    // SAFETY: forwarded from the caller; every index stays below count or width.
    unsafe {
        for p in 0..depth {
            let (s, d) = (src.add(p * ld), dst.add(p * width));
            let mut j = 0;
            while j + 4 <= count {
                C::store4(d.add(j), C::load4(s.add(j)));
                j += 4;
            }
            for j in j..count {
                *d.add(j) = C::one(s.add(j));
            }
            for j in count..width {
                *d.add(j) = C::ZERO;
            }
        }
    }
}

/// `dst[p·width + j] = src[j·ld + p]` for `j < count`, zero for
/// `count ≤ j < width`, `p < depth`: lines across the panel, turned by 4×4
/// block transposes.
///
/// # Safety
/// `count` lines of `depth` elements at stride `ld` readable at `src`,
/// `depth·width` elements writable at `dst`.
#[target_feature(enable = "neon")]
unsafe fn transpose_lines<C: Conv>(
    src: *const C::In,
    ld: usize,
    count: usize,
    depth: usize,
    width: usize,
    dst: *mut C::Out,
) {
    // SAFETY: forwarded from the caller; every index stays below depth and
    // count (reads) or width (writes).
    unsafe {
        let scalar = |p: usize, j0: usize| {
            let d = dst.add(p * width);
            for j in j0..count {
                *d.add(j) = C::one(src.add(j * ld + p));
            }
            for j in count..width {
                *d.add(j) = C::ZERO;
            }
        };
        let mut p = 0;
        while p + 4 <= depth {
            let mut j = 0;
            while j + 4 <= count {
                let s = src.add(j * ld + p);
                let rows = [C::load4(s), C::load4(s.add(ld)), C::load4(s.add(2 * ld)), C::load4(s.add(3 * ld))];
                for (q, col) in C::transpose4(rows).into_iter().enumerate() {
                    C::store4(dst.add((p + q) * width + j), col);
                }
                j += 4;
            }
            for q in 0..4 {
                scalar(p + q, j);
            }
            p += 4;
        }
        for p in p..depth {
            scalar(p, 0);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pack_a<C: Conv>(
    src: &[C::In],
    ld: usize,
    t: Transpose,
    i0: usize,
    rows: usize,
    p0: usize,
    depth: usize,
    dst: &mut [C::Out],
) {
    assert!((1..=MR).contains(&rows) && dst.len() >= rows * depth);
    if depth == 0 {
        return;
    }
    let (off, span) = pack::a_window(t, ld, i0, rows, p0, depth);
    assert!(off + span <= src.len(), "pack_a: window outside A");
    let (s, d) = (src[off..].as_ptr(), dst.as_mut_ptr());
    // SAFETY: window and destination checked above; NEON is part of every
    // aarch64 target.
    unsafe {
        match t {
            Transpose::No => transpose_lines::<C>(s, ld, rows, depth, rows, d),
            Transpose::Yes => copy_lines::<C>(s, ld, rows, depth, rows, d),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pack_b<C: Conv>(
    src: &[C::In],
    ld: usize,
    t: Transpose,
    j0: usize,
    cols: usize,
    p0: usize,
    depth: usize,
    nr: usize,
    dst: &mut [C::Out],
) {
    assert!(nr == NR && (1..=NR).contains(&cols) && dst.len() >= NR * depth);
    if depth == 0 {
        return;
    }
    let (off, span) = pack::b_window(t, ld, j0, cols, p0, depth);
    assert!(off + span <= src.len(), "pack_b: window outside B");
    let (s, d) = (src[off..].as_ptr(), dst.as_mut_ptr());
    // SAFETY: window and destination checked above; NEON is part of every
    // aarch64 target.
    unsafe {
        match t {
            Transpose::No => copy_lines::<C>(s, ld, cols, depth, NR, d),
            Transpose::Yes => transpose_lines::<C>(s, ld, cols, depth, NR, d),
        }
    }
}

macro_rules! packers {
    ($( $a:ident, $b:ident: $conv:ty, $in:ty => $out:ty; )*) => {
        $(
            /// Packs an A micro-panel (`gemm::pack`'s layout).
            #[allow(clippy::too_many_arguments)]
            pub fn $a(
                s: &[$in],
                ld: usize,
                t: Transpose,
                i0: usize,
                r: usize,
                p0: usize,
                d: usize,
                o: &mut [$out],
            ) {
                pack_a::<$conv>(s, ld, t, i0, r, p0, d, o)
            }

            /// Packs a B micro-panel, zero-padded to NR columns (`gemm::pack`'s layout).
            #[allow(clippy::too_many_arguments)]
            pub fn $b(
                s: &[$in],
                ld: usize,
                t: Transpose,
                j0: usize,
                c: usize,
                p0: usize,
                d: usize,
                nr: usize,
                o: &mut [$out],
            ) {
                pack_b::<$conv>(s, ld, t, j0, c, p0, d, nr, o)
            }
        )*
    };
}

packers! {
    pack_a_f32_neon, pack_b_f32_neon: F32ToF32, f32 => f32;
    pack_a_f16_f32_neon, pack_b_f16_f32_neon: F16ToF32, f16 => f32;
    pack_a_bf16_f32_neon, pack_b_bf16_f32_neon: Bf16ToF32, bf16 => f32;
    pack_a_f16_neon, pack_b_f16_neon: F16ToF16, f16 => f16;
}

/// The neon path's GEMM registry: f16/bf16 widened while packing into the
/// f32 kernel, except hgemm on FEAT_FHM CPUs (`fhm`), which keeps f16 panels.
pub(crate) fn table(fhm: bool) -> Table {
    let shape = KernelShape { mr: MR, nr: NR, kpack: 1, bytes_per_k: 4 };
    let ukr: Kernel<UkrFn<f32>> = Kernel { f: gemm_f32_neon_8x12, name: "gemm_f32_neon_8x12" };
    let hgemm = if fhm {
        Path::F16(Impl {
            shape: KernelShape { bytes_per_k: 2, ..shape },
            ukr: Kernel { f: gemm_f16_f32acc_neon_fhm_8x12, name: "gemm_f16_f32acc_neon_fhm_8x12" },
            pack_a: Kernel { f: pack_a_f16_neon, name: "pack_a_f16_neon" },
            pack_b: Kernel { f: pack_b_f16_neon, name: "pack_b_f16_neon" },
            unpacked: false,
            tall: None,
            narrow: None,
            dot: None,
            shallow: None,
            wide: None,
        })
    } else {
        Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack_a_f16_f32_neon, name: "pack_a_f16_f32_neon" },
            pack_b: Kernel { f: pack_b_f16_f32_neon, name: "pack_b_f16_f32_neon" },
            unpacked: false,
            tall: None,
            narrow: None,
            dot: None,
            shallow: None,
            wide: None,
        })
    };
    Table {
        sgemm: Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack_a_f32_neon, name: "pack_a_f32_neon" },
            pack_b: Kernel { f: pack_b_f32_neon, name: "pack_b_f32_neon" },
            unpacked: false,
            tall: None,
            narrow: None,
            dot: None,
            shallow: None,
            wide: None,
        }),
        hgemm,
        bgemm: Path::F32(Impl {
            shape,
            ukr,
            pack_a: Kernel { f: pack_a_bf16_f32_neon, name: "pack_a_bf16_f32_neon" },
            pack_b: Kernel { f: pack_b_bf16_f32_neon, name: "pack_b_bf16_f32_neon" },
            unpacked: false,
            tall: None,
            narrow: None,
            dot: None,
            shallow: None,
            wide: None,
        }),
    }
}
