//! The loop of the integer-key 2×2 max-pool kernels (`reduce::max_pool2x2`):
//! each path supplies a [`Block`] that pools up to [`BLOCK`] windows of one
//! element type on its own registers; [`planes_of`] walks the planes, rows
//! and blocks. Safe and generic, so it inlines into each path's
//! `#[target_feature]` entry.

use half::slice::HalfFloatSliceExt;

use crate::slice::{Dst, Src};

/// Windows per block.
pub(crate) const BLOCK: usize = 8;

/// Up to [`BLOCK`] windows of one element type: `block(r0, r1, y, idx)`
/// reads `2·n` elements of each of the two input rows and writes `n =
/// y.len() ≤ BLOCK` outputs and their offsets (`0..4`, row-major in the
/// window). A trait, not a closure, so everything inlines into the
/// `#[target_feature]` entry (a closure would be compiled without the
/// features).
pub(crate) trait Block<T: Copy>: Copy {
    fn block(self, r0: &[T], r1: &[T], y: &mut [T], idx: &mut [u8]);
}

/// f32 windows on the path `S`.
#[derive(Clone, Copy)]
pub(crate) struct F32<S>(pub(crate) S);

/// f16 (`inf` `0x7C00`) or bf16 (`0x7F80`) windows on the path `S`, on their bits.
#[derive(Clone, Copy)]
pub(crate) struct Bits16<S>(pub(crate) S, pub(crate) i16);

/// The 2×2 pool of `planes` planes on the path `S`; f64 goes to the reference.
#[inline(always)]
pub(crate) fn max_pool2x2<S: Copy>(s: S, planes: usize, h: usize, w: usize, x: Src<'_>, y: Dst<'_>, idx: &mut [u8])
where
    F32<S>: Block<f32>,
    Bits16<S>: Block<u16>,
{
    match (x, y) {
        (Src::F32(x), Dst::F32(y)) => planes_of(F32(s), planes, h, w, x, y, idx),
        (Src::F16(x), Dst::F16(y)) => {
            planes_of(Bits16(s, 0x7C00), planes, h, w, x.reinterpret_cast(), y.reinterpret_cast_mut(), idx)
        }
        (Src::Bf16(x), Dst::Bf16(y)) => {
            planes_of(Bits16(s, 0x7F80), planes, h, w, x.reinterpret_cast(), y.reinterpret_cast_mut(), idx)
        }
        (x, y) => crate::scalar::reduce::max_pool2x2_scalar(planes, h, w, x, y, idx),
    }
}

/// Runs `b` over each output row: its two input rows (`w` elements each,
/// the first `2·⌊w/2⌋` used) and its outputs, [`BLOCK`] windows at a time.
#[inline(always)]
fn planes_of<T: Copy, B: Block<T>>(b: B, planes: usize, h: usize, w: usize, x: &[T], y: &mut [T], idx: &mut [u8]) {
    let (oh, ow) = (h / 2, w / 2);
    if oh == 0 || ow == 0 {
        return;
    }
    for (p, (yp, ip)) in y.chunks_exact_mut(oh * ow).zip(idx.chunks_exact_mut(oh * ow)).take(planes).enumerate() {
        let xp = &x[p * h * w..][..h * w];
        for (oy, (yr, ir)) in yp.chunks_exact_mut(ow).zip(ip.chunks_exact_mut(ow)).enumerate() {
            let a = &xp[2 * oy * w..][..2 * w];
            for (j, (yb, ib)) in yr.chunks_mut(BLOCK).zip(ir.chunks_mut(BLOCK)).enumerate() {
                let n = 2 * yb.len();
                b.block(&a[2 * j * BLOCK..][..n], &a[w + 2 * j * BLOCK..][..n], yb, ib);
            }
        }
    }
}
