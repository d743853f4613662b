//! Slice casts between f32, f16 and bf16, generic over the ISA token.
//!
//! Bit-exact by construction: every path's primitives round to nearest even
//! and keep subnormals (see [`super::Simd`]). Casts whose source holds at
//! least [`STREAM_MIN_SRC_BYTES`] write with non-temporal stores: at that size
//! source and destination no longer stay in cache together, and skipping the
//! read-for-ownership of every destination line is what lets a DRAM-sized
//! cast run at copy speed.

use super::{Elem, Simd};

/// Source bytes from which a cast uses non-temporal stores.
///
/// Measured on the Zen 4 machine of `docs/kernels.md` (AVX-512, one thread,
/// 1M…16M elements): f32→f16 breaks even at 2M elements (8 MiB of f32) and
/// f16→f32 at 4M (8 MiB of f16); below that ordinary stores win by up to 2×
/// (the data would still be in L3), above it streaming wins by 1.2–1.5×.
pub(crate) const STREAM_MIN_SRC_BYTES: usize = 8 << 20;

/// Alignment the streaming loop gives the destination (the widest store).
const STREAM_ALIGN: usize = 64;

/// `dst[i] = B(src[i])`, rounding to nearest even where `B` is narrower.
///
/// # Panics
/// If the lengths differ.
#[inline(always)]
pub(crate) fn cast<S: Simd, A: Elem, B: Elem>(s: S, src: &[A], dst: &mut [B]) {
    assert_eq!(src.len(), dst.len(), "cast: source and destination lengths differ");
    // Bring the destination to a 64-byte boundary first: a vector store that
    // straddles two cache lines costs two, and at cache-resident sizes that
    // alone is ~15% of the time.
    let misalign = dst.as_ptr() as usize % STREAM_ALIGN;
    let head = (((STREAM_ALIGN - misalign) % STREAM_ALIGN) / size_of::<B>()).min(dst.len());
    let (src_head, src_rest) = src.split_at(head);
    let (dst_head, dst_rest) = dst.split_at_mut(head);
    run::<S, A, B, false>(s, src_head, dst_head);
    if size_of_val(src) < STREAM_MIN_SRC_BYTES {
        run::<S, A, B, false>(s, src_rest, dst_rest);
    } else {
        run::<S, A, B, true>(s, src_rest, dst_rest);
        s.fence();
    }
}

/// `dst[i] = B(src[i])` with ordinary stores and no alignment step: for
/// the short blocks other kernels stage through f32 buffers.
#[inline(always)]
pub(crate) fn convert<S: Simd, A: Elem, B: Elem>(s: S, src: &[A], dst: &mut [B]) {
    run::<S, A, B, false>(s, src, dst)
}

#[inline(always)]
fn run<S: Simd, A: Elem, B: Elem, const STREAM: bool>(s: S, src: &[A], dst: &mut [B]) {
    let mut sc = src.chunks_exact(S::LANES);
    let mut dc = dst.chunks_exact_mut(S::LANES);
    for (a, b) in (&mut sc).zip(&mut dc) {
        let v = A::load(s, a);
        if STREAM { B::stream(s, b, v) } else { B::store(s, b, v) }
    }
    let (a, b) = (sc.remainder(), dc.into_remainder());
    if !a.is_empty() {
        B::store_partial(s, b, A::load_partial(s, a));
    }
}
