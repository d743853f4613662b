//! IDX files (the MNIST format), raw or gzip-compressed.
//!
//! An IDX file is a big-endian magic `00 00 <type> <ndim>`, `ndim` big-endian
//! u32 dimensions, then the elements in row-major order. Only unsigned bytes
//! (type `0x08`) are read. Compression is detected from the gzip magic bytes
//! (`1f 8b`), not from the file name. The header is checked against the data
//! actually present before anything large is allocated, so a truncated,
//! padded or lying file is a [`DataError`], never a panic or a huge allocation.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::DataError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const IDX_U8: u8 = 0x08;
/// Upper bound on what is reserved up front from a header's promise; more
/// than this grows as the data actually arrives.
const MAX_PREALLOC: u64 = 1 << 28;
/// Deflate's largest expansion (a 258-byte match per 2 bits, roughly).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: Vec<u8>,
}

impl IdxArray {
    /// The dimensions from the header, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The dimensions and the elements.
    pub fn into_parts(self) -> (Vec<usize>, Vec<u8>) {
        (self.dims, self.data)
    }
}

/// Reads an IDX file of unsigned bytes, raw or gzip-compressed.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    // Buffered: the magic sniff and the header are a few small reads.
    let len = file.metadata().map_err(|source| io_error(path, source))?.len();
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let gzip = {
        let head = std::io::BufRead::fill_buf(&mut reader).map_err(|source| io_error(path, source))?;
        head.starts_with(&GZIP_MAGIC)
    };
    if gzip {
        decode(MultiGzDecoder::new(reader), Source::Gzip(path), len)
    } else {
        decode(reader, Source::Raw(path), len)
    }
}

/// Parses IDX content held in memory (raw or gzip-compressed); `name` is
/// what errors call it.
pub fn parse_idx(bytes: &[u8], name: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let name = name.as_ref();
    let len = bytes.len() as u64;
    if bytes.starts_with(&GZIP_MAGIC) {
        decode(MultiGzDecoder::new(bytes), Source::Gzip(name), len)
    } else {
        decode(bytes, Source::Raw(name), len)
    }
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Raw(&'a Path),
    Gzip(&'a Path),
}

impl Source<'_> {
    fn path(self) -> PathBuf {
        match self {
            Source::Raw(p) | Source::Gzip(p) => p.to_owned(),
        }
    }

    /// The most content `input_len` bytes of this source can hold.
    fn max_content(self, input_len: u64) -> u64 {
        match self {
            Source::Raw(_) => input_len,
            Source::Gzip(_) => input_len.saturating_mul(MAX_DEFLATE_RATIO),
        }
    }

    /// A read error: a decompressor's complaint about its stream, or I/O.
    fn error(self, source: std::io::Error) -> DataError {
        match self {
            Source::Gzip(path) => DataError::Gzip { path: path.to_owned(), source },
            Source::Raw(path) => io_error(path, source),
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io { path: path.to_owned(), source }
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
fn read_full(src: &mut impl Read, buf: &mut [u8], source: Source) -> Result<usize, DataError> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(source.error(e)),
        }
    }
    Ok(filled)
}

fn decode(mut src: impl Read, source: Source, input_len: u64) -> Result<IdxArray, DataError> {
    let mut magic = [0u8; 4];
    let got = read_full(&mut src, &mut magic, source)?;
    if got < 4 || magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::BadMagic { path: source.path(), found: magic[..got].to_vec() });
    }
    if magic[2] != IDX_U8 {
        return Err(DataError::UnsupportedType { path: source.path(), code: magic[2] });
    }
    let ndim = usize::from(magic[3]);
    let mut header = vec![0u8; 4 * ndim];
    let got = read_full(&mut src, &mut header, source)?;
    let dims: Vec<u64> = header[..got / 4 * 4]
        .chunks_exact(4)
        .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    let expected = dims.iter().fold(1u128, |acc, &d| acc.saturating_mul(u128::from(d)));
    if got < header.len() {
        return Err(DataError::SizeMismatch { path: source.path(), dims, expected, actual: 0, truncated: true });
    }
    // Read one byte more than promised to detect trailing data. Reserve what
    // the header promises only as far as the input could hold it.
    let limit = u64::try_from(expected).unwrap_or(u64::MAX).saturating_add(1);
    let reserve = limit.min(source.max_content(input_len)).min(MAX_PREALLOC);
    let mut data = Vec::new();
    data.try_reserve_exact(reserve as usize)
        .map_err(|e| source.error(std::io::Error::new(std::io::ErrorKind::OutOfMemory, e)))?;
    src.take(limit).read_to_end(&mut data).map_err(|e| source.error(e))?;
    let actual = data.len() as u64;
    if u128::from(actual) != expected {
        return Err(DataError::SizeMismatch {
            path: source.path(),
            dims,
            expected,
            actual,
            truncated: u128::from(actual) < expected,
        });
    }
    // Dimensions are u32, which fits in usize on every supported target.
    let dims = dims.into_iter().map(|d| d as usize).collect();
    Ok(IdxArray { dims, data })
}
