//! Live and peak bytes of tensor storage, in total and per dtype, readable
//! from anywhere: [`stats()`], and [`reset_peak()`] to start a new window.
//!
//! Counted: the element bytes of every storage buffer (`len × size`), from
//! its allocation to the drop of the last tensor that shares it. Views count
//! nothing extra. The counters are process-wide atomics, so tensors freed on
//! another thread are accounted for; a test that needs exact numbers must not
//! run beside other tests that allocate tensors (see `tests/memory.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::dtype::DType;

static LIVE: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
static PEAK: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
static LIVE_TOTAL: AtomicUsize = AtomicUsize::new(0);
static PEAK_TOTAL: AtomicUsize = AtomicUsize::new(0);

/// Live and peak bytes of one dtype (or of all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    /// Bytes held now.
    pub live: usize,
    /// The most held at once since the start or the last [`reset_peak`].
    pub peak: usize,
}

/// A snapshot of the storage counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// All dtypes together (the peak of the sum, not the sum of the peaks).
    pub total: Bytes,
    /// Per dtype, indexed by [`DType::index`]; see [`MemoryStats::dtype`].
    pub by_dtype: [Bytes; 4],
}

impl MemoryStats {
    /// The counters of one dtype.
    pub fn dtype(&self, dtype: DType) -> Bytes {
        self.by_dtype[dtype.index()]
    }
}

/// The current counters.
pub fn stats() -> MemoryStats {
    let mut s = MemoryStats {
        total: Bytes { live: LIVE_TOTAL.load(Ordering::Relaxed), peak: PEAK_TOTAL.load(Ordering::Relaxed) },
        ..MemoryStats::default()
    };
    for d in DType::ALL {
        let i = d.index();
        s.by_dtype[i] = Bytes { live: LIVE[i].load(Ordering::Relaxed), peak: PEAK[i].load(Ordering::Relaxed) };
    }
    s
}

/// Starts a new peak window: every peak becomes the current live count.
pub fn reset_peak() {
    for i in 0..4 {
        PEAK[i].store(LIVE[i].load(Ordering::Relaxed), Ordering::Relaxed);
    }
    PEAK_TOTAL.store(LIVE_TOTAL.load(Ordering::Relaxed), Ordering::Relaxed);
}

pub(crate) fn acquire(dtype: DType, bytes: usize) {
    let i = dtype.index();
    let now = LIVE[i].fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK[i].fetch_max(now, Ordering::Relaxed);
    let total = LIVE_TOTAL.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK_TOTAL.fetch_max(total, Ordering::Relaxed);
}

pub(crate) fn release(dtype: DType, bytes: usize) {
    LIVE[dtype.index()].fetch_sub(bytes, Ordering::Relaxed);
    LIVE_TOTAL.fetch_sub(bytes, Ordering::Relaxed);
}
