//! The data readers' one error type.

use std::path::PathBuf;

/// What went wrong reading or batching a data set. Every file error names
/// the file (for in-memory input, the name the caller gave).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// None of the accepted names for a data file exists in the directory.
    #[error("{dir}: no file named {names}", dir = .dir.display(), names = .names.join(" or "))]
    MissingFile {
        /// The directory searched.
        dir: PathBuf,
        /// The names tried, in order.
        names: Vec<String>,
    },
    /// The file starts with the gzip magic bytes but its stream is corrupt or ends early.
    #[error("{path}: corrupt or truncated gzip stream: {source}", path = .path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        source: std::io::Error,
    },
    /// The (decompressed) content does not start with an IDX magic number.
    #[error("{path}: not an IDX file (first bytes {found:02x?}, expected 00 00 08 <ndim>)", path = .path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes, or fewer if the file is shorter.
        found: Vec<u8>,
    },
    /// An IDX file whose element type is not u8 (code 0x08).
    #[error("{path}: IDX element type {code:#04x} is not supported (only unsigned bytes, 0x08)", path = .path.display())]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The type code from the magic number.
        code: u8,
    },
    /// The header announces a different number of data bytes than the file holds.
    #[error(
        "{path}: header gives dimensions {dims:?}, i.e. {expected} data bytes, but the file holds {}{actual}",
        if *.truncated { "only " } else { "" },
        path = .path.display()
    )]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The dimensions in the header (as many as could be read).
        dims: Vec<u64>,
        /// Data bytes the header announces (saturated at `u128::MAX`).
        expected: u128,
        /// Data bytes actually present (counted up to `expected + 1`).
        actual: u64,
        /// True if the file ends early (a truncated file), false if it has extra bytes.
        truncated: bool,
    },
    /// The file has the wrong number of dimensions for what it should hold.
    #[error("{path}: {what} need {expected} dimensions, the header gives {dims:?}", path = .path.display())]
    Rank {
        /// The file.
        path: PathBuf,
        /// What the file should hold ("images", "labels").
        what: &'static str,
        /// The accepted number of dimensions, in words.
        expected: &'static str,
        /// The dimensions in the header.
        dims: Vec<u64>,
    },
    /// An image file and a label file disagree on the number of samples.
    #[error(
        "{images} holds {n_images} images but {labels} holds {n_labels} labels",
        images = .images.display(),
        labels = .labels.display()
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Images in the image file.
        n_images: u64,
        /// Labels in the label file.
        n_labels: u64,
    },
    /// A text file is not valid UTF-8.
    #[error("{path}: not valid UTF-8 at byte {offset}", path = .path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset (in the decompressed text) of the first invalid sequence.
        offset: usize,
    },
    /// A text file holds no characters.
    #[error("{path}: the text is empty", path = .path.display())]
    EmptyText {
        /// The file.
        path: PathBuf,
    },
    /// A character that is not in the vocabulary.
    #[error("character {ch:?} (U+{code:04X}) is not in the vocabulary", code = *.ch as u32)]
    UnknownChar {
        /// The character.
        ch: char,
    },
    /// A token id outside the vocabulary.
    #[error("token id {id} is out of range for a vocabulary of {size}")]
    UnknownToken {
        /// The id.
        id: usize,
        /// The vocabulary size.
        size: usize,
    },
    /// A batching or splitting parameter that cannot work (batch size 0, a
    /// split fraction outside (0, 1), sequences longer than the text, …).
    #[error("{what}: {reason}")]
    InvalidConfig {
        /// The parameter.
        what: &'static str,
        /// Why it cannot work.
        reason: String,
    },
    /// Building a tensor failed.
    #[error(transparent)]
    Tensor(#[from] mixprec_tensor::TensorError),
}
