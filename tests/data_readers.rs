//! `mixprec::data` on the shipped MNIST and Shakespeare: their real
//! statistics, every dtype, batching and splits, and a typed error naming the
//! file for every kind of bad file — built at test time as truncated or
//! corrupted copies of the shipped files in a temporary directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flate2::Compression;
use flate2::write::GzEncoder;
use mixprec::data::{
    BatchConfig, DataError, ImageSet, LastBatch, MNIST_FILES, Mnist, Normalize, Sequences, TextCorpus, load_mnist,
    parse_idx, read_idx, shipped_dir, shipped_shakespeare, split_indices,
};
use mixprec::tensor::DType;
use mixprec::tensor::random::Generator;

fn mnist() -> &'static Mnist {
    static MNIST: OnceLock<Mnist> = OnceLock::new();
    MNIST.get_or_init(|| Mnist::shipped().expect("the shipped MNIST loads"))
}

fn shakespeare() -> &'static TextCorpus {
    static TEXT: OnceLock<TextCorpus> = OnceLock::new();
    TEXT.get_or_init(|| TextCorpus::load(shipped_shakespeare()).expect("the shipped Shakespeare loads"))
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut out).unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn shipped_mnist(name: &str) -> PathBuf {
    shipped_dir().join("mnist").join(format!("{name}.gz"))
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mixprec-data-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The error's message names the file.
fn assert_names(err: &DataError, path: &Path) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "message {msg:?} does not name {}", path.display());
}

// ---------------------------------------------------------------- MNIST

#[test]
fn mnist_has_its_real_statistics() {
    let m = mnist();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    assert_eq!(m.train.sample_dims(), [28, 28]);
    assert_eq!(m.test.sample_dims(), [28, 28]);
    assert_eq!(m.train.label_counts(), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(m.test.label_counts(), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    assert_eq!(m.train.labels()[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(m.test.labels()[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    assert_eq!(m.train.num_classes(), 10);

    let x = m.train.images(DType::F32, Normalize::UNIT).unwrap();
    assert_eq!(x.shape(), [60_000, 28, 28]);
    let v = x.as_slice::<f32>().unwrap();
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let std = (v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n).sqrt();
    // The usual constants are these, rounded to four places.
    assert!((mean - 0.1307).abs() < 5e-5 && (std - 0.3081).abs() < 5e-5, "mean {mean} std {std}");
    assert!(v.iter().all(|&x| (0.0..=1.0).contains(&x)));

    let z = m.train.images(DType::F32, Normalize::MNIST).unwrap();
    let v = z.as_slice::<f32>().unwrap();
    let zmean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let zstd = (v.iter().map(|&x| (f64::from(x) - zmean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(zmean.abs() < 2e-4 && (zstd - 1.0).abs() < 2e-4, "normalised mean {zmean} std {zstd}");
}

#[test]
fn every_dtype_holds_the_same_values_rounded() {
    let test = &mnist().test;
    let f32s = test.images(DType::F32, Normalize::MNIST).unwrap();
    let f64s = test.images(DType::F64, Normalize::MNIST).unwrap();
    let v64 = f64s.as_slice::<f64>().unwrap();
    let v32 = f32s.as_slice::<f32>().unwrap();
    for ((&p, &x64), &x32) in test.pixels().iter().zip(v64).zip(v32) {
        let exact = (f64::from(p) / 255.0 - 0.1307) / 0.3081;
        assert_eq!(x64, exact);
        assert_eq!(x32, exact as f32);
    }
    for half in [DType::F16, DType::BF16] {
        let direct = test.images(half, Normalize::MNIST).unwrap();
        let cast = f32s.to_dtype(half).unwrap();
        assert_eq!(direct.dtype(), half);
        assert_eq!(direct.shape(), [10_000, 28, 28]);
        assert_eq!(direct.to_vec_f32().unwrap(), cast.to_vec_f32().unwrap(), "{half}");
    }
}

#[test]
fn raw_and_gzip_files_are_told_apart_by_content_not_name() {
    let dir = TempDir::new("raw");
    for name in MNIST_FILES {
        let raw = gunzip(&shipped_mnist(name));
        // Raw content under the plain name for two files, and under a `.gz`
        // name (which is tried second) for none: the name never decides.
        if name.starts_with("t10k") {
            dir.write(name, &raw);
        } else {
            dir.write(name, &gzip(&raw));
        }
    }
    let m = load_mnist(&dir.0).unwrap();
    assert_eq!(&m, mnist());
    let raw_named_gz = dir.write("raw.gz", &gunzip(&shipped_mnist(MNIST_FILES[3])));
    assert_eq!(read_idx(raw_named_gz).unwrap().dims(), [10_000]);
}

#[test]
fn missing_files_name_the_directory_and_the_names_tried() {
    let dir = TempDir::new("missing");
    std::fs::copy(shipped_mnist(MNIST_FILES[0]), dir.0.join(format!("{}.gz", MNIST_FILES[0]))).unwrap();
    let err = load_mnist(&dir.0).unwrap_err();
    match &err {
        DataError::MissingFile { dir: d, names } => {
            assert_eq!(d, &dir.0);
            assert_eq!(names, &[MNIST_FILES[1].to_owned(), format!("{}.gz", MNIST_FILES[1])]);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("train-labels-idx1-ubyte.gz"), "{err}");
    let err = read_idx(dir.0.join("nope")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert_names(&err, &dir.0.join("nope"));
}

#[test]
fn truncated_files_are_size_errors_or_gzip_errors() {
    let dir = TempDir::new("truncated");
    let gz = std::fs::read(shipped_mnist(MNIST_FILES[2])).unwrap();
    let raw = gunzip(&shipped_mnist(MNIST_FILES[2]));

    // Raw, cut inside the data: the header promises more than is there.
    let path = dir.write("cut-data", &raw[..raw.len() - 1000]);
    let err = read_idx(&path).unwrap_err();
    match &err {
        DataError::SizeMismatch { dims, expected, actual, truncated, .. } => {
            assert_eq!(dims, &[10_000, 28, 28]);
            assert_eq!((*expected, *actual, *truncated), (7_840_000, 7_839_000, true));
        }
        other => panic!("{other:?}"),
    }
    assert_names(&err, &path);
    assert!(err.to_string().contains("only 7839000"), "{err}");

    // Raw, cut inside the header.
    let path = dir.write("cut-header", &raw[..10]);
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(&err, DataError::SizeMismatch { dims, truncated: true, .. } if dims == &[10_000]), "{err:?}");
    assert_names(&err, &path);

    // Raw, cut inside the magic number.
    let path = dir.write("cut-magic", &raw[..3]);
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(&err, DataError::BadMagic { found, .. } if found == &[0, 0, 8]), "{err:?}");

    // Gzip, cut in the middle of the compressed stream (and just before its trailer).
    for cut in [gz.len() / 2, gz.len() - 4] {
        let path = dir.write("cut.gz", &gz[..cut]);
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "cut at {cut}: {err:?}");
        assert_names(&err, &path);
    }

    // Empty file.
    let path = dir.write("empty", &[]);
    assert!(matches!(read_idx(&path).unwrap_err(), DataError::BadMagic { found, .. } if found.is_empty()));
}

#[test]
fn padded_files_and_lying_headers_are_size_errors() {
    let dir = TempDir::new("padded");
    let raw = gunzip(&shipped_mnist(MNIST_FILES[3]));
    let mut padded = raw.clone();
    padded.extend_from_slice(&[0; 7]);
    let path = dir.write("padded.gz", &gzip(&padded));
    let err = read_idx(&path).unwrap_err();
    assert!(
        matches!(err, DataError::SizeMismatch { expected: 10_000, actual: 10_001, truncated: false, .. }),
        "{err:?}"
    );
    assert_names(&err, &path);

    // The header claims 60,001 labels; the file holds 10,000.
    let mut lying = raw.clone();
    lying[4..8].copy_from_slice(&60_001u32.to_be_bytes());
    let path = dir.write("lying", &lying);
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, DataError::SizeMismatch { expected: 60_001, actual: 10_000, truncated: true, .. }));

    // A header whose dimensions multiply past any memory: an error, not an allocation.
    let mut huge = vec![0, 0, 8, 4];
    for _ in 0..4 {
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    let err = parse_idx(&huge, "huge").unwrap_err();
    assert!(matches!(err, DataError::SizeMismatch { actual: 0, truncated: true, .. }), "{err:?}");
}

#[test]
fn wrong_magic_and_types_are_named() {
    let dir = TempDir::new("magic");
    let raw = gunzip(&shipped_mnist(MNIST_FILES[3]));

    let mut bad = raw.clone();
    bad[0] = 0x12;
    let path = dir.write("bad-magic", &bad);
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(&err, DataError::BadMagic { found, .. } if found == &[0x12, 0, 8, 1]), "{err:?}");
    assert_names(&err, &path);
    assert!(err.to_string().contains("not an IDX file"), "{err}");

    let mut ints = raw.clone();
    ints[2] = 0x0c;
    let path = dir.write("int32.gz", &gzip(&ints));
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, DataError::UnsupportedType { code: 0x0c, .. }), "{err:?}");
    assert_names(&err, &path);

    // The Shakespeare text is gzip but not IDX inside.
    let err = read_idx(shipped_shakespeare()).unwrap_err();
    assert!(matches!(&err, DataError::BadMagic { found, .. } if found == b"ALL'"), "{err:?}");

    // A gzip stream with a corrupted checksum, and one with garbage after it.
    let mut gz = std::fs::read(shipped_mnist(MNIST_FILES[3])).unwrap();
    let crc_at = gz.len() - 8;
    gz[crc_at] ^= 0xff;
    let path = dir.write("crc.gz", &gz);
    assert!(matches!(read_idx(&path).unwrap_err(), DataError::Gzip { .. }));
    let mut gz = std::fs::read(shipped_mnist(MNIST_FILES[3])).unwrap();
    gz.extend_from_slice(b"garbage");
    let path = dir.write("trailing.gz", &gz);
    assert!(matches!(read_idx(&path).unwrap_err(), DataError::Gzip { .. }));
}

#[test]
fn image_and_label_files_must_agree() {
    let [train_images, train_labels, test_images, test_labels] =
        mixprec::data::mnist_paths(shipped_dir().join("mnist")).unwrap();
    let err = ImageSet::load(&test_images, &train_labels).unwrap_err();
    match &err {
        DataError::CountMismatch { images, labels, n_images, n_labels } => {
            assert_eq!((images, labels), (&test_images, &train_labels));
            assert_eq!((*n_images, *n_labels), (10_000, 60_000));
        }
        other => panic!("{other:?}"),
    }
    assert_names(&err, &test_images);
    assert_names(&err, &train_labels);

    // Swapped files: labels where images belong, and images where labels belong.
    let err = ImageSet::load(&test_labels, &test_labels).unwrap_err();
    assert!(matches!(&err, DataError::Rank { what: "images", dims, .. } if dims == &[10_000]), "{err:?}");
    assert_names(&err, &test_labels);
    let err = ImageSet::load(&test_images, &test_images).unwrap_err();
    assert!(matches!(&err, DataError::Rank { what: "labels", dims, .. } if dims == &[10_000, 28, 28]), "{err:?}");
    let _ = train_images;
}

// ------------------------------------------------------------- batching

#[test]
fn an_epoch_visits_every_image_once_with_the_right_pixels() {
    let test = &mnist().test;
    let mut rng = Generator::new(3);
    let config = BatchConfig::new(128);
    let expected: Vec<Vec<usize>> =
        mixprec::data::IndexBatches::new(test.len(), &config, &mut rng.clone()).unwrap().collect();
    let batches = test.batches(&config, &mut rng, DType::F32, Normalize::UNIT).unwrap();
    assert_eq!(batches.len(), 79);
    let mut seen = vec![0u8; test.len()];
    let mut sizes = Vec::new();
    for (batch, indices) in batches.zip(&expected) {
        let n = indices.len();
        sizes.push(n);
        assert_eq!(batch.inputs.shape(), [n, 28, 28]);
        let values = batch.inputs.as_slice::<f32>().unwrap();
        for ((row, &target), &i) in values.chunks_exact(784).zip(&batch.targets).zip(indices) {
            let image = &test.pixels()[i * 784..(i + 1) * 784];
            assert!(row.iter().zip(image).all(|(&x, &p)| x == (f64::from(p) / 255.0) as f32));
            assert_eq!(target, usize::from(test.labels()[i]));
            seen[i] += 1;
        }
    }
    assert!(seen.iter().all(|&s| s == 1));
    assert!(sizes[..78].iter().all(|&n| n == 128) && sizes[78] == 10_000 % 128);

    // Index level: a permutation, the same for the same seed, different across epochs.
    let order = |rng: &mut Generator| {
        mixprec::data::IndexBatches::new(10_000, &BatchConfig::new(128), rng).unwrap().flatten().collect::<Vec<_>>()
    };
    let mut a = Generator::new(3);
    let first = order(&mut a);
    let second = order(&mut a);
    assert_ne!(first, second);
    assert_eq!(first, order(&mut Generator::new(3)));
    for epoch in [&first, &second] {
        let mut sorted = epoch.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().copied().eq(0..10_000));
    }
    assert!(first.iter().zip(0..).any(|(&i, j)| i != j));
}

#[test]
fn last_batch_policy_and_sequential_order() {
    let mut rng = Generator::new(0);
    let keep: Vec<Vec<usize>> =
        mixprec::data::IndexBatches::new(10, &BatchConfig::sequential(4), &mut rng).unwrap().collect();
    assert_eq!(keep, [vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
    let before = rng.state();
    let drop =
        mixprec::data::IndexBatches::new(10, &BatchConfig::sequential(4).last(LastBatch::Drop), &mut rng).unwrap();
    assert_eq!(rng.state(), before, "sequential epochs draw nothing");
    assert_eq!(drop.len(), 2);
    assert_eq!(drop.collect::<Vec<_>>(), [vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
    let shuffled = mixprec::data::IndexBatches::new(10, &BatchConfig::new(4).last(LastBatch::Drop), &mut rng).unwrap();
    assert_eq!(shuffled.order().len(), 10);
    assert!(shuffled.map(|b| b.len()).eq([4, 4]));
    assert_eq!(BatchConfig::new(3).num_batches(0), 0);
    assert_eq!(mixprec::data::IndexBatches::new(0, &BatchConfig::new(3), &mut rng).unwrap().count(), 0);
    let err = mixprec::data::IndexBatches::new(10, &BatchConfig::new(0), &mut rng).unwrap_err();
    assert!(matches!(err, DataError::InvalidConfig { what: "batch_size", .. }), "{err:?}");
    // A batch larger than the set: one partial batch, or none when dropping.
    assert_eq!(mixprec::data::IndexBatches::new(5, &BatchConfig::new(8), &mut rng).unwrap().count(), 1);
    let none = BatchConfig::new(8).last(LastBatch::Drop);
    assert_eq!(mixprec::data::IndexBatches::new(5, &none, &mut rng).unwrap().count(), 0);
}

#[test]
fn explicit_batches_subsets_and_validation_splits() {
    let test = &mnist().test;
    let batch = test.batch(&[0, 0, 9_999], DType::BF16, Normalize::UNIT).unwrap();
    assert_eq!(batch.inputs.shape(), [3, 28, 28]);
    assert_eq!(batch.targets, [7, 7, 6]);
    let err = test.batch(&[10_000], DType::F32, Normalize::UNIT).unwrap_err();
    assert!(matches!(err, DataError::InvalidConfig { what: "indices", .. }), "{err:?}");
    let bad = Normalize { divisor: 255.0, mean: 0.0, std: 0.0 };
    assert!(matches!(test.images(DType::F32, bad).unwrap_err(), DataError::InvalidConfig { what: "normalize", .. }));

    let (train, valid) = test.split_validation(1_000, &mut Generator::new(9)).unwrap();
    assert_eq!((train.len(), valid.len()), (9_000, 1_000));
    let (ti, vi) = split_indices(10_000, 1_000, &mut Generator::new(9)).unwrap();
    assert_eq!(valid, test.subset(&vi).unwrap());
    assert_eq!(train, test.subset(&ti).unwrap());
    let mut all: Vec<usize> = ti.iter().chain(&vi).copied().collect();
    all.sort_unstable();
    assert!(all.into_iter().eq(0..10_000));
    assert!(vi.windows(2).all(|w| w[0] < w[1]));
    assert_ne!(vi, (0..1_000).collect::<Vec<_>>());
    assert!(matches!(split_indices(5, 6, &mut Generator::new(0)), Err(DataError::InvalidConfig { .. })));
    assert_eq!(valid.label_counts().iter().sum::<usize>(), 1_000);
}

// ----------------------------------------------------------------- text

#[test]
fn shakespeare_has_its_real_statistics() {
    let text = shakespeare();
    assert_eq!(text.len(), 5_057_321);
    assert_eq!(text.text().len(), 5_057_321, "pure ASCII: one byte per character");
    assert_eq!(text.vocab().len(), 84);
    assert!(text.vocab().chars().windows(2).all(|w| w[0] < w[1]));
    assert_eq!(text.vocab().chars()[0], '\n');
    let (train, valid) = text.split(0.9).unwrap();
    assert_eq!((train.len(), valid.len()), (4_551_588, 505_733));
    let mut in_train = [false; 84];
    for &id in train {
        in_train[id as usize] = true;
    }
    assert!(valid.iter().all(|&id| in_train[id as usize]), "every validation character occurs in training");

    let head: String = text.text().chars().take(1000).collect();
    let ids = text.vocab().encode(&head).unwrap();
    assert_eq!(ids, text.tokens()[..1000]);
    assert_eq!(text.vocab().decode(ids.iter().map(|&i| i as usize)).unwrap(), head);
    assert!(head.starts_with("ALL'S WELL THAT ENDS WELL"), "{head:.20}");
    assert!(matches!(text.vocab().encode("é"), Err(DataError::UnknownChar { ch: 'é' })));
    assert!(matches!(text.vocab().decode([84]), Err(DataError::UnknownToken { id: 84, size: 84 })));

    for bad in [0.0, 1.0, -0.5, f64::NAN, 1e-9] {
        assert!(matches!(text.split(bad), Err(DataError::InvalidConfig { what: "train_fraction", .. })), "{bad}");
    }
}

#[test]
fn raw_text_loads_like_gzip_and_unicode_works() {
    let dir = TempDir::new("text");
    let raw = gunzip(&shipped_shakespeare());
    let path = dir.write("shakespeare.txt", &raw);
    assert_eq!(&TextCorpus::load(&path).unwrap(), shakespeare());

    let corpus = TextCorpus::parse("héllo wörld ħ\n".as_bytes(), "unicode").unwrap();
    assert_eq!(corpus.len(), 14);
    assert_eq!(corpus.vocab().chars(), ['\n', ' ', 'd', 'h', 'l', 'o', 'r', 'w', 'é', 'ö', 'ħ']);
    assert_eq!(corpus.vocab().decode(corpus.tokens().iter().map(|&i| i as usize)).unwrap(), corpus.text());
}

#[test]
fn bad_text_files_are_named_errors() {
    let dir = TempDir::new("badtext");
    let mut raw = gunzip(&shipped_shakespeare());
    raw.truncate(100_000);
    raw[54_321] = 0xff;
    for (name, bytes) in [("bad.txt", raw.clone()), ("bad.txt.gz", gzip(&raw))] {
        let path = dir.write(name, &bytes);
        let err = TextCorpus::load(&path).unwrap_err();
        assert!(matches!(err, DataError::NotUtf8 { offset: 54_321, .. }), "{name}: {err:?}");
        assert_names(&err, &path);
        assert!(err.to_string().contains("byte 54321"), "{err}");
    }
    // A multi-byte character cut in half at the end of the file.
    let path = dir.write("cut.txt", &"ab€".as_bytes()[..4]);
    assert!(matches!(TextCorpus::load(&path).unwrap_err(), DataError::NotUtf8 { offset: 2, .. }));

    let gz = std::fs::read(shipped_shakespeare()).unwrap();
    let path = dir.write("cut.txt.gz", &gz[..gz.len() / 3]);
    let err = TextCorpus::load(&path).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
    assert_names(&err, &path);

    let path = dir.write("empty.txt", b"");
    assert!(matches!(TextCorpus::load(&path).unwrap_err(), DataError::EmptyText { .. }));
    let path = dir.write("empty.txt.gz", &gzip(b""));
    assert!(matches!(TextCorpus::load(&path).unwrap_err(), DataError::EmptyText { .. }));
    let missing = dir.0.join("missing.txt");
    let err = TextCorpus::load(&missing).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert_names(&err, &missing);
}

#[test]
fn char_lm_windows_predict_the_next_character() {
    let text = shakespeare();
    let (train, valid) = text.split(0.9).unwrap();
    let seqs = Sequences::new(train, 64).unwrap();
    assert_eq!(seqs.len(), (4_551_588 - 1) / 64);
    let mut rng = Generator::new(1);
    let batches = seqs.batches(&BatchConfig::new(32), &mut rng).unwrap();
    assert_eq!(batches.len(), seqs.len().div_ceil(32));
    let mut windows = 0;
    for (k, batch) in batches.enumerate() {
        assert_eq!(batch.seq_len, 64);
        assert_eq!(batch.inputs.len(), batch.batch * 64);
        assert_eq!(batch.targets.len(), batch.batch * 64);
        for (inp, tgt) in batch.inputs.chunks_exact(64).zip(batch.targets.chunks_exact(64)) {
            assert_eq!(inp[1..], tgt[..63]);
            // The window is where the text has it.
            if k < 3 {
                let pos = train
                    .windows(65)
                    .step_by(64)
                    .position(|w| w[..64].iter().map(|&i| i as usize).eq(inp.iter().copied()));
                let start = pos.unwrap() * 64;
                assert_eq!(train[start + 64] as usize, tgt[63]);
            }
        }
        windows += batch.batch;
    }
    assert_eq!(windows, seqs.len());

    let eval = Sequences::new(valid, 64).unwrap().batch(&[0, 1]).unwrap();
    let expected: Vec<usize> = valid[..128].iter().map(|&i| i as usize).collect();
    assert_eq!(eval.inputs, expected);
    assert_eq!(eval.targets, valid[1..129].iter().map(|&i| i as usize).collect::<Vec<_>>());
    assert!(matches!(Sequences::new(valid, 0), Err(DataError::InvalidConfig { what: "seq_len", .. })));
    assert!(matches!(Sequences::new(&valid[..64], 64), Err(DataError::InvalidConfig { what: "seq_len", .. })));
    assert_eq!(Sequences::new(&valid[..65], 64).unwrap().len(), 1);
    assert!(matches!(Sequences::new(valid, 64).unwrap().batch(&[usize::MAX]), Err(DataError::InvalidConfig { .. })));
}
