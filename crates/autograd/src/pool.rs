//! A per-thread cache of recently freed tensor buffers for op outputs that
//! are written whole (a GEMM with `beta = 0`, a masked gradient): taking one
//! skips the allocator and the zero-fill of a fresh tensor, and reuses
//! memory that is likely still in cache.
//!
//! Buffers enter when the tape lets go of them (a node's output gradient
//! after its backward ran, saved tensors when a node is released) and only
//! when no other handle shares their storage, so a cached buffer is never
//! visible elsewhere. The cache holds at most [`MAX_BUFFERS`] buffers of at
//! least [`MIN_BYTES`] each; they count as live tensor storage in
//! `tensor::memory` until taken or [`clear`]ed.

use std::cell::RefCell;

use mixprec_tensor::{DType, Tensor};

use crate::error::Result;

/// The most buffers kept per thread.
pub const MAX_BUFFERS: usize = 64;

/// Smaller buffers are not kept (allocating them is cheap).
pub const MIN_BYTES: usize = 64 * 1024;

thread_local! {
    static CACHE: RefCell<Vec<Tensor>> = const { RefCell::new(Vec::new()) };
}

/// A tensor of `shape` and `dtype` whose contents are unspecified (a cached
/// buffer, or zeros): the caller overwrites every element.
pub(crate) fn take(shape: &[usize], dtype: DType) -> Result<Tensor> {
    // An overflowing shape is left to `Tensor::zeros` to refuse.
    let numel = mixprec_tensor::layout::checked_numel(shape).unwrap_or(0);
    if numel * dtype.size_in_bytes() >= MIN_BYTES {
        let hit = CACHE.with(|c| {
            let mut c = c.borrow_mut();
            let at = c.iter().rposition(|t| t.dtype() == dtype && t.numel() == numel)?;
            Some(c.swap_remove(at))
        });
        if let Some(t) = hit {
            return Ok(t.reshape(shape)?);
        }
    }
    Ok(Tensor::zeros(shape, dtype)?)
}

/// Offers a buffer the tape no longer needs; kept only if nothing else
/// holds its storage.
pub(crate) fn give(t: Tensor) {
    if t.nbytes() < MIN_BYTES || !t.is_exclusive() {
        return;
    }
    let evicted = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.push(t);
        (c.len() > MAX_BUFFERS).then(|| c.remove(0))
    });
    drop(evicted);
}

/// Drops every cached buffer of this thread.
pub fn clear() {
    let all = CACHE.with(|c| std::mem::take(&mut *c.borrow_mut()));
    drop(all);
}

/// Bytes held by this thread's cache.
pub fn cached_bytes() -> usize {
    CACHE.with(|c| c.borrow().iter().map(Tensor::nbytes).sum())
}
