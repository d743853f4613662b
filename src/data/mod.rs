//! Dataset readers and the location of the data shipped in `data/`.
//!
//! - [`idx`]: IDX files (MNIST's format), raw or gzip-compressed, checked
//!   against their headers;
//! - [`ImageSet`], [`load_mnist`]: labelled images as float tensors of any
//!   dtype, with [`Normalize`];
//! - [`TextCorpus`], [`Vocab`], [`Sequences`]: character-level text;
//! - [`BatchConfig`], [`IndexBatches`]: epochs of (shuffled) batches drawn
//!   with the project's generator, and train/validation splits.
//!
//! Every problem with a file comes back as a [`DataError`] naming the file.
//!
//! ```no_run
//! use mixprec::data::{BatchConfig, Normalize, load_mnist, shipped_dir};
//! use mixprec::tensor::{DType, random::Generator};
//! let mnist = load_mnist(shipped_dir().join("mnist"))?;
//! let mut rng = Generator::new(1);
//! for batch in mnist.train.batches(&BatchConfig::new(128), &mut rng, DType::F32, Normalize::MNIST)? {
//!     assert_eq!(batch.inputs.shape()[1..], [28, 28]);
//! }
//! # Ok::<(), mixprec::data::DataError>(())
//! ```

use std::path::{Path, PathBuf};

mod batch;
mod error;
pub mod idx;
mod images;
mod text;

pub use batch::{BatchConfig, IndexBatches, LastBatch, split_indices};
pub use error::DataError;
pub use idx::{IdxArray, parse_idx, read_idx};
pub use images::{Batch, ImageBatches, ImageSet, MNIST_FILES, Mnist, Normalize, load_mnist, mnist_paths};
pub use text::{SeqBatch, SeqBatches, Sequences, TextCorpus, Vocab};

/// Environment variable that overrides where the shipped data is looked for
/// (tests and examples run on other machines set it).
pub const DATA_DIR_ENV: &str = "MIXPREC_DATA_DIR";

/// The directory holding the shipped data (`mnist/`, `text/`): `$MIXPREC_DATA_DIR`
/// if set, else `./data` if it exists, else the repository's `data/`.
pub fn shipped_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("data");
    if local.join("mnist").is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The shipped Shakespeare text (`text/shakespeare.txt.gz` under [`shipped_dir`]).
pub fn shipped_shakespeare() -> PathBuf {
    shipped_dir().join("text").join("shakespeare.txt.gz")
}

/// The first of `names` that exists as a file in `dir`.
fn find_file(dir: &Path, names: &[String]) -> Result<PathBuf, DataError> {
    names
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| DataError::MissingFile { dir: dir.to_owned(), names: names.to_vec() })
}
