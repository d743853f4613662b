//! Text corpora for character-level language models.
//!
//! A [`TextCorpus`] is a UTF-8 text (`.txt`, or gzip-compressed: detected
//! from the magic bytes), its character [`Vocab`] (the sorted distinct
//! characters, ids `0..len`) and the text encoded as ids. [`Sequences`]
//! cuts a stretch of ids into non-overlapping windows of `seq_len` inputs
//! whose targets are the next characters, and batches them.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use mixprec_tensor::random::Generator;

use super::DataError;
use super::batch::{BatchConfig, IndexBatches};

/// A character vocabulary: the distinct characters of a text, sorted by code point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    chars: Vec<char>,
    /// Ids of ASCII characters (`u32::MAX` where absent): the common case without a search.
    ascii: [u32; 128],
}

impl Vocab {
    /// The vocabulary of `text`.
    pub fn from_text(text: &str) -> Vocab {
        let mut seen_ascii = [false; 128];
        let mut others = std::collections::BTreeSet::new();
        for &b in text.as_bytes() {
            if b < 128 {
                seen_ascii[usize::from(b)] = true;
            }
        }
        if !text.is_ascii() {
            others.extend(text.chars().filter(|c| !c.is_ascii()));
        }
        let chars: Vec<char> =
            (0u8..128).filter(|&b| seen_ascii[usize::from(b)]).map(char::from).chain(others).collect();
        let mut ascii = [u32::MAX; 128];
        for (id, &c) in chars.iter().enumerate() {
            if c.is_ascii() {
                ascii[c as usize] = id as u32;
            }
        }
        Vocab { chars, ascii }
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters, in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of `ch`, if it is in the vocabulary.
    pub fn id(&self, ch: char) -> Option<u32> {
        if ch.is_ascii() {
            Some(self.ascii[ch as usize]).filter(|&id| id != u32::MAX)
        } else {
            self.chars.binary_search(&ch).ok().map(|i| i as u32)
        }
    }

    /// The ids of the characters of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        let mut ids = Vec::with_capacity(text.len());
        for ch in text.chars() {
            ids.push(self.id(ch).ok_or(DataError::UnknownChar { ch })?);
        }
        Ok(ids)
    }

    /// The text spelled by `ids`.
    pub fn decode(&self, ids: impl IntoIterator<Item = usize>) -> Result<String, DataError> {
        ids.into_iter()
            .map(|id| self.chars.get(id).copied().ok_or(DataError::UnknownToken { id, size: self.len() }))
            .collect()
    }
}

/// A text, its vocabulary and its encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextCorpus {
    text: String,
    vocab: Vocab,
    tokens: Vec<u32>,
}

impl TextCorpus {
    /// Reads a UTF-8 text file, raw or gzip-compressed.
    pub fn load(path: impl AsRef<Path>) -> Result<TextCorpus, DataError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
        Self::parse(&bytes, path)
    }

    /// Parses text held in memory (raw or gzip-compressed UTF-8); `name` is
    /// what errors call it.
    pub fn parse(bytes: &[u8], name: impl AsRef<Path>) -> Result<TextCorpus, DataError> {
        let name = name.as_ref();
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::with_capacity(gzip_size_hint(bytes));
            MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|source| DataError::Gzip { path: name.to_owned(), source })?;
            String::from_utf8(out).map_err(|e| e.utf8_error())
        } else {
            std::str::from_utf8(bytes).map(str::to_owned)
        }
        .map_err(|e| DataError::NotUtf8 { path: name.to_owned(), offset: e.valid_up_to() })?;
        if text.is_empty() {
            return Err(DataError::EmptyText { path: name.to_owned() });
        }
        let vocab = Vocab::from_text(&text);
        let tokens = vocab.encode(&text)?;
        Ok(TextCorpus { text, vocab, tokens })
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The text as vocabulary ids, one per character.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no characters (never, for a loaded corpus).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The first `⌊train_fraction · len⌋` ids for training and the rest for
    /// validation (0.9 gives nanoGPT's split). The fraction must lie in `(0, 1)`
    /// and leave both parts non-empty.
    pub fn split(&self, train_fraction: f64) -> Result<(&[u32], &[u32]), DataError> {
        let n = self.len();
        let n_train = (n as f64 * train_fraction).floor();
        if !(train_fraction > 0.0 && train_fraction < 1.0 && n_train >= 1.0 && n_train < n as f64) {
            return Err(DataError::InvalidConfig {
                what: "train_fraction",
                reason: format!("{train_fraction} does not split {n} characters into two non-empty parts"),
            });
        }
        Ok(self.tokens.split_at(n_train as usize))
    }
}

/// The decompressed size gzip records (modulo 2^32) in its last four bytes,
/// bounded by what deflate can expand `bytes` to and by 256 MiB: only a
/// capacity hint, so a lying trailer cannot make it reserve much.
fn gzip_size_hint(bytes: &[u8]) -> usize {
    match bytes.len().checked_sub(4).map(|at| &bytes[at..]) {
        Some(&[a, b, c, d]) => (u32::from_le_bytes([a, b, c, d]) as usize).min(bytes.len() * 1032).min(1 << 28),
        _ => 0,
    }
}

/// Non-overlapping training windows over a stretch of ids: window `i` has
/// inputs `tokens[i·T .. i·T + T]` and targets one character later.
#[derive(Clone, Copy, Debug)]
pub struct Sequences<'a> {
    tokens: &'a [u32],
    seq_len: usize,
}

/// A batch of windows, row-major `[batch, seq_len]` (batch first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqBatch {
    /// Input ids, `batch × seq_len`.
    pub inputs: Vec<usize>,
    /// Target ids (each input's next character), `batch × seq_len`.
    pub targets: Vec<usize>,
    /// Windows in this batch.
    pub batch: usize,
    /// Characters per window.
    pub seq_len: usize,
}

impl<'a> Sequences<'a> {
    /// The windows of `seq_len` over `tokens`; there must be at least one
    /// (`tokens.len() ≥ seq_len + 1`).
    pub fn new(tokens: &'a [u32], seq_len: usize) -> Result<Sequences<'a>, DataError> {
        if seq_len == 0 || tokens.len() <= seq_len {
            return Err(DataError::InvalidConfig {
                what: "seq_len",
                reason: format!("windows of {seq_len} inputs plus a target do not fit in {} characters", tokens.len()),
            });
        }
        Ok(Sequences { tokens, seq_len })
    }

    /// Number of windows: `(len − 1) / seq_len`.
    pub fn len(&self) -> usize {
        (self.tokens.len() - 1) / self.seq_len
    }

    /// Whether there are no windows (never: [`new`](Self::new) checks).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Characters per window.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// The windows at `indices` (each `< len()`), as one batch.
    pub fn batch(&self, indices: &[usize]) -> Result<SeqBatch, DataError> {
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::InvalidConfig {
                what: "indices",
                reason: format!("window {i} is out of range for {} windows", self.len()),
            });
        }
        Ok(self.gather(indices))
    }

    fn gather(&self, indices: &[usize]) -> SeqBatch {
        let t = self.seq_len;
        let mut inputs = Vec::with_capacity(indices.len() * t);
        let mut targets = Vec::with_capacity(indices.len() * t);
        for &i in indices {
            let window = &self.tokens[i * t..i * t + t + 1];
            inputs.extend(window[..t].iter().map(|&id| id as usize));
            targets.extend(window[1..].iter().map(|&id| id as usize));
        }
        SeqBatch { inputs, targets, batch: indices.len(), seq_len: t }
    }

    /// One epoch of window batches (shuffled with `rng` if the config says so).
    pub fn batches(&self, config: &BatchConfig, rng: &mut Generator) -> Result<SeqBatches<'a>, DataError> {
        Ok(SeqBatches { seqs: *self, order: IndexBatches::new(self.len(), config, rng)? })
    }
}

/// An epoch's batches of [`Sequences`].
#[derive(Debug)]
pub struct SeqBatches<'a> {
    seqs: Sequences<'a>,
    order: IndexBatches,
}

impl Iterator for SeqBatches<'_> {
    type Item = SeqBatch;

    fn next(&mut self) -> Option<SeqBatch> {
        let indices = self.order.next()?;
        Some(self.seqs.gather(&indices))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

impl ExactSizeIterator for SeqBatches<'_> {}
