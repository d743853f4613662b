//! Bytes saved for backward ("activation bytes"): current and peak, over
//! every live graph in the process, with a reset of the peak. Feeds
//! `peak_activation_bytes`.
//!
//! A saved tensor counts its elements' bytes (`numel × size`) once however
//! many nodes save it (a linear layer's output saved by its ReLU and by the
//! next layer counts once): views are told apart by their storage, offset,
//! shape and strides. Counted from the op that saves it until the node is
//! freed (after backward without `retain_graph`, or when the graph drops).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use mixprec_tensor::Tensor;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LIVE: Mutex<Option<HashMap<Key, usize>>> = Mutex::new(None);

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    storage: usize,
    offset: usize,
    shape: Vec<usize>,
    strides: Vec<usize>,
}

impl Key {
    fn of(t: &Tensor) -> Key {
        Key {
            storage: t.storage_id(),
            offset: t.layout().offset(),
            shape: t.shape().to_vec(),
            strides: t.strides().to_vec(),
        }
    }
}

/// Bytes saved for backward by live graphs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SavedBytes {
    /// Held now.
    pub current: usize,
    /// The most held at once since the start or the last [`reset_peak`].
    pub peak: usize,
}

/// The current and peak bytes saved for backward.
pub fn saved_bytes() -> SavedBytes {
    SavedBytes { current: CURRENT.load(Ordering::Relaxed), peak: PEAK.load(Ordering::Relaxed) }
}

/// Starts a new peak window (the peak becomes the current count).
pub fn reset_peak() {
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
}

fn live() -> MutexGuard<'static, Option<HashMap<Key, usize>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn register(tensors: &[&Tensor]) {
    if tensors.is_empty() {
        return;
    }
    let mut live = live();
    let map = live.get_or_insert_with(HashMap::new);
    for t in tensors {
        let count = map.entry(Key::of(t)).or_insert(0);
        *count += 1;
        if *count == 1 {
            let now = CURRENT.fetch_add(t.nbytes(), Ordering::Relaxed) + t.nbytes();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }
}

pub(crate) fn unregister(tensors: &[&Tensor]) {
    if tensors.is_empty() {
        return;
    }
    let mut live = live();
    let Some(map) = live.as_mut() else { return };
    for t in tensors {
        let key = Key::of(t);
        if let Some(count) = map.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                map.remove(&key);
                CURRENT.fetch_sub(t.nbytes(), Ordering::Relaxed);
            }
        }
    }
}
