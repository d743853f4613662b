//! Epochs of index batches and train/validation splits.
//!
//! An epoch is a permutation of `0..n` drawn from the project's
//! [`Generator`] (Fisher–Yates) when shuffling, or `0..n` in order, cut into
//! batches; the last, partial batch is kept or dropped ([`LastBatch`]). The
//! data sets turn index batches into tensors.

use mixprec_tensor::random::Generator;

use super::DataError;

/// What happens to the last batch of an epoch when the batch size does not
/// divide the number of samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LastBatch {
    /// Yield it, smaller than the others.
    #[default]
    Keep,
    /// Leave it out (every batch then has the full size).
    Drop,
}

/// How an epoch is cut into batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchConfig {
    /// Samples per batch (at least 1).
    pub batch_size: usize,
    /// Draw a fresh permutation from the generator for every epoch.
    pub shuffle: bool,
    /// The last partial batch's fate.
    pub last: LastBatch,
}

impl BatchConfig {
    /// Shuffled batches of `batch_size`, keeping the last partial batch.
    pub fn new(batch_size: usize) -> BatchConfig {
        BatchConfig { batch_size, shuffle: true, last: LastBatch::Keep }
    }

    /// Batches in order, keeping the last partial batch (for evaluation).
    pub fn sequential(batch_size: usize) -> BatchConfig {
        BatchConfig { batch_size, shuffle: false, last: LastBatch::Keep }
    }

    /// The same config with shuffling on or off.
    pub fn shuffle(self, shuffle: bool) -> BatchConfig {
        BatchConfig { shuffle, ..self }
    }

    /// The same config with another last-batch policy.
    pub fn last(self, last: LastBatch) -> BatchConfig {
        BatchConfig { last, ..self }
    }

    /// Batches per epoch over `n` samples.
    pub fn num_batches(&self, n: usize) -> usize {
        match (self.batch_size, self.last) {
            (0, _) => 0,
            (b, LastBatch::Keep) => n.div_ceil(b),
            (b, LastBatch::Drop) => n / b,
        }
    }
}

/// One epoch's batches of sample indices (an iterator of `Vec<usize>`).
#[derive(Clone, Debug)]
pub struct IndexBatches {
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
    end: usize,
}

impl IndexBatches {
    /// The epoch over `n` samples; draws the permutation from `rng` now if
    /// `config.shuffle` (advancing it), else uses `0..n`.
    pub fn new(n: usize, config: &BatchConfig, rng: &mut Generator) -> Result<IndexBatches, DataError> {
        if config.batch_size == 0 {
            return Err(DataError::InvalidConfig { what: "batch_size", reason: "must be at least 1".into() });
        }
        let order = if config.shuffle { rng.permutation(n) } else { (0..n).collect() };
        let end = config.num_batches(n) * config.batch_size;
        Ok(IndexBatches { order, batch_size: config.batch_size, next: 0, end: end.min(n) })
    }

    /// The epoch's order of all `n` samples (including any dropped at the end).
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl Iterator for IndexBatches {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        if self.next >= self.end {
            return None;
        }
        let stop = (self.next + self.batch_size).min(self.end);
        let batch = self.order[self.next..stop].to_vec();
        self.next = stop;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.end - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for IndexBatches {}

/// A random train/validation split of `0..n`: `n_valid` indices drawn by a
/// permutation from `rng` go to validation, the rest to training; each part
/// is returned in increasing order.
pub fn split_indices(n: usize, n_valid: usize, rng: &mut Generator) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if n_valid > n {
        return Err(DataError::InvalidConfig {
            what: "n_valid",
            reason: format!("{n_valid} validation samples requested from {n}"),
        });
    }
    let perm = rng.permutation(n);
    let mut valid = perm[..n_valid].to_vec();
    let mut train = perm[n_valid..].to_vec();
    valid.sort_unstable();
    train.sort_unstable();
    Ok((train, valid))
}
