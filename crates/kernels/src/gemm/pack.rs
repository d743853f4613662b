//! Portable packing routines: the reference layout every ISA's packers
//! reproduce, and the fallback where a path has no faster one.
//!
//! A micro-panel of A holds op(A)[i0..i0+rows][p0..p0+depth] as `[p][i]`;
//! one of B holds op(B)[p0..p0+depth][j0..j0+cols] as `[p][j]` with rows
//! zero-padded to NR. Transposes are absorbed here. Pair layouts (for
//! `vdpbf16ps`) put depth steps 2q and 2q+1 of one row (or column) in one
//! `u32`, low half first, zero-padded at an odd end.

use half::{bf16, f16};

use super::{GemmInput, Transpose};

#[inline(always)]
fn a_at<T: Copy>(src: &[T], ld: usize, t: Transpose, i: usize, p: usize) -> T {
    match t {
        Transpose::No => src[i * ld + p],
        Transpose::Yes => src[p * ld + i],
    }
}

#[inline(always)]
fn b_at<T: Copy>(src: &[T], ld: usize, t: Transpose, p: usize, j: usize) -> T {
    match t {
        Transpose::No => src[p * ld + j],
        Transpose::Yes => src[j * ld + p],
    }
}

/// Offset and extent, in elements of the stored matrix, of the window that
/// packing A reads: op(A) rows `i0..i0+rows`, depth `p0..p0+depth`
/// (`rows, depth ≥ 1`). SIMD packers check `off + span ≤ len` once, then
/// read inside it without further checks.
pub fn a_window(t: Transpose, ld: usize, i0: usize, rows: usize, p0: usize, depth: usize) -> (usize, usize) {
    match t {
        Transpose::No => (i0 * ld + p0, (rows - 1) * ld + depth),
        Transpose::Yes => (p0 * ld + i0, (depth - 1) * ld + rows),
    }
}

/// [`a_window`] for B: op(B) depth `p0..p0+depth`, columns `j0..j0+cols`.
pub fn b_window(t: Transpose, ld: usize, j0: usize, cols: usize, p0: usize, depth: usize) -> (usize, usize) {
    match t {
        Transpose::No => (p0 * ld + j0, (depth - 1) * ld + cols),
        Transpose::Yes => (j0 * ld + p0, (cols - 1) * ld + depth),
    }
}

/// Packs an A micro-panel, widening to f32.
#[allow(clippy::too_many_arguments)]
pub fn pack_a_f32_generic<T: GemmInput>(
    src: &[T],
    ld: usize,
    t: Transpose,
    i0: usize,
    rows: usize,
    p0: usize,
    depth: usize,
    dst: &mut [f32],
) {
    let dst = &mut dst[..rows * depth];
    for i in 0..rows {
        for p in 0..depth {
            dst[p * rows + i] = a_at(src, ld, t, i0 + i, p0 + p).to_f32();
        }
    }
}

/// Packs a B micro-panel, widening to f32, zero-padded to `nr` columns.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_f32_generic<T: GemmInput>(
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
    let dst = &mut dst[..nr * depth];
    for p in 0..depth {
        let row = &mut dst[p * nr..(p + 1) * nr];
        for (j, d) in row.iter_mut().enumerate() {
            *d = if j < cols { b_at(src, ld, t, p0 + p, j0 + j).to_f32() } else { 0.0 };
        }
    }
}

/// Packs an A micro-panel of f16 as f16 (converted later, in registers).
#[allow(clippy::too_many_arguments)]
pub fn pack_a_f16_generic(
    src: &[f16],
    ld: usize,
    t: Transpose,
    i0: usize,
    rows: usize,
    p0: usize,
    depth: usize,
    dst: &mut [f16],
) {
    let dst = &mut dst[..rows * depth];
    for i in 0..rows {
        for p in 0..depth {
            dst[p * rows + i] = a_at(src, ld, t, i0 + i, p0 + p);
        }
    }
}

/// Packs a B micro-panel of f16 as f16, zero-padded to `nr` columns.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_f16_generic(
    src: &[f16],
    ld: usize,
    t: Transpose,
    j0: usize,
    cols: usize,
    p0: usize,
    depth: usize,
    nr: usize,
    dst: &mut [f16],
) {
    let dst = &mut dst[..nr * depth];
    for p in 0..depth {
        for j in 0..nr {
            dst[p * nr + j] = if j < cols { b_at(src, ld, t, p0 + p, j0 + j) } else { f16::ZERO };
        }
    }
}

#[inline(always)]
fn pair(lo: bf16, hi: bf16) -> u32 {
    lo.to_bits() as u32 | (hi.to_bits() as u32) << 16
}

/// Packs an A micro-panel of bf16 as depth pairs: `dst[q·rows + i]` holds
/// steps 2q and 2q+1 of row i.
#[allow(clippy::too_many_arguments)]
pub fn pack_a_bf16_pairs_generic(
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
    let dst = &mut dst[..rows * pairs];
    for i in 0..rows {
        for q in 0..pairs {
            let lo = a_at(src, ld, t, i0 + i, p0 + 2 * q);
            let hi = if 2 * q + 1 < depth { a_at(src, ld, t, i0 + i, p0 + 2 * q + 1) } else { bf16::ZERO };
            dst[q * rows + i] = pair(lo, hi);
        }
    }
}

/// Packs a B micro-panel of bf16 as depth pairs: `dst[q·nr + j]` holds steps
/// 2q and 2q+1 of column j; zero-padded to `nr` columns.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_bf16_pairs_generic(
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
    let dst = &mut dst[..nr * pairs];
    for q in 0..pairs {
        for j in 0..nr {
            dst[q * nr + j] = if j < cols {
                let lo = b_at(src, ld, t, p0 + 2 * q, j0 + j);
                let hi = if 2 * q + 1 < depth { b_at(src, ld, t, p0 + 2 * q + 1, j0 + j) } else { bf16::ZERO };
                pair(lo, hi)
            } else {
                0
            };
        }
    }
}
