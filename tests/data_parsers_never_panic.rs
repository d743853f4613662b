//! The IDX and text parsers take any bytes and answer `Ok` or `Err`, never
//! a panic: arbitrary bytes, plausible headers with wrong sizes, gzip
//! wrappers around both, and random mutations of a real MNIST file.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use mixprec::data::{DataError, ImageSet, TextCorpus, parse_idx};
use proptest::prelude::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// An IDX header of u8 type with the given dimensions, then `data_len` bytes.
fn idx(dims: &[u32], data_len: usize, fill: u8) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.resize(out.len() + data_len, fill);
    out
}

/// The first 1,000 labels of the MNIST test set, as a valid IDX file.
fn real_labels() -> Vec<u8> {
    use std::io::Read;
    let path = mixprec::data::shipped_dir().join("mnist/t10k-labels-idx1-ubyte.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut raw).unwrap();
    raw[4..8].copy_from_slice(&1000u32.to_be_bytes());
    raw.truncate(8 + 1000);
    raw
}

fn check_idx(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse_idx(bytes, "input") {
        Ok(a) => {
            let n = a.dims().iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            if a.dims().contains(&0) {
                prop_assert!(a.data().is_empty());
            } else {
                prop_assert_eq!(n, Some(a.data().len()));
            }
        }
        Err(e) => {
            // Every error names the input.
            prop_assert!(e.to_string().contains("input"), "{}", e);
        }
    }
    Ok(())
}

fn check_text(bytes: &[u8]) -> Result<(), TestCaseError> {
    match TextCorpus::parse(bytes, "input") {
        Ok(c) => {
            prop_assert_eq!(c.len(), c.text().chars().count());
            let decoded = c.vocab().decode(c.tokens().iter().map(|&i| i as usize)).unwrap();
            prop_assert_eq!(decoded.as_str(), c.text());
        }
        Err(e) => prop_assert!(
            matches!(e, DataError::NotUtf8 { .. } | DataError::EmptyText { .. } | DataError::Gzip { .. }),
            "{:?}",
            e
        ),
    }
    Ok(())
}

#[test]
fn dimensions_that_hold_nothing_are_empty_whatever_their_product() {
    let images = parse_idx(&idx(&[2, u32::MAX, u32::MAX, 0], 0, 0), "images").unwrap();
    let labels = parse_idx(&idx(&[2], 2, 3), "labels").unwrap();
    let path = std::path::Path::new;
    let set = ImageSet::from_idx(images, path("images"), labels, path("labels")).unwrap();
    assert_eq!(set.sample_len(), 0);
    let (f32s, unit) = (mixprec::tensor::DType::F32, mixprec::data::Normalize::UNIT);
    // A zero-sized axis makes every count 0, however large the others.
    assert_eq!(set.images(f32s, unit).unwrap().shape(), &[2, u32::MAX as usize, u32::MAX as usize, 0]);
    assert_eq!(set.batch(&[1], f32s, unit).unwrap().inputs.numel(), 0);
    assert_eq!(set.batch(&[1, 0], f32s, unit).unwrap().targets, vec![3, 3]);
    let mut rng = mixprec::tensor::random::Generator::new(0);
    let config = mixprec::data::BatchConfig::new(1);
    assert_eq!(set.batches(&config, &mut rng, f32s, unit).unwrap().count(), 2);
    assert_eq!(set.subset(&[1, 0]).unwrap().labels(), [3, 3]);

    // No images, dimensions whose product overflows.
    let images = parse_idx(&idx(&[0, u32::MAX, u32::MAX, u32::MAX], 0, 0), "images").unwrap();
    let labels = parse_idx(&idx(&[0], 0, 0), "labels").unwrap();
    let set = ImageSet::from_idx(images, path("images"), labels, path("labels")).unwrap();
    assert!(set.is_empty());
    assert_eq!(set.images(f32s, unit).unwrap().numel(), 0);
    assert_eq!(set.batches(&config, &mut rng, f32s, unit).unwrap().count(), 0);
    assert!(set.subset(&[]).unwrap().is_empty());
    assert!(set.label_counts().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_global_rejects: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn idx_parser_takes_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_idx(&bytes)?;
        check_idx(&gzip(&bytes))?;
    }

    #[test]
    fn idx_parser_takes_plausible_headers(
        dims in proptest::collection::vec(prop_oneof![0u32..6, Just(u32::MAX), any::<u32>()], 0..6),
        extra in -3i64..3,
        fill: u8,
    ) {
        let want = dims.iter().fold(1u128, |acc, &d| acc.saturating_mul(u128::from(d)));
        let len = (want.min(4096) as i64 + extra).max(0) as usize;
        let bytes = idx(&dims, len, fill);
        let result = parse_idx(&bytes, "input");
        prop_assert_eq!(result.is_ok(), u128::from(len as u64) == want, "{:?}", result);
        check_idx(&gzip(&bytes))?;
    }

    #[test]
    fn idx_parser_takes_mutated_real_files(
        edits in proptest::collection::vec((0usize..1008, any::<u8>()), 1..8),
        cut in 0usize..1100,
        gz: bool,
    ) {
        let mut bytes = real_labels();
        for (at, b) in edits {
            bytes[at] = b;
        }
        bytes.truncate(cut);
        if gz {
            bytes = gzip(&bytes);
        }
        check_idx(&bytes)?;
        // Compressed bytes with an edit in the middle of the stream.
        let mut gz_bytes = gzip(&real_labels());
        let at = cut % gz_bytes.len();
        gz_bytes[at] ^= 0x5a;
        check_idx(&gz_bytes)?;
    }

    #[test]
    fn image_sets_from_arbitrary_arrays_are_ok_or_err(
        a in proptest::collection::vec(prop_oneof![6 => 0u32..4, 1 => Just(u32::MAX)], 0..4),
        b in proptest::collection::vec(0u32..4, 0..3),
    ) {
        let pixels = if a.contains(&0) { 0 } else { a.iter().fold(1u64, |acc, &d| acc.saturating_mul(u64::from(d))) };
        prop_assume!(pixels < 1 << 16);
        let images = parse_idx(&idx(&a, pixels as usize, 1), "images").unwrap();
        let labels = parse_idx(&idx(&b, b.iter().product::<u32>() as usize, 2), "labels").unwrap();
        let path = std::path::Path::new;
        if let Ok(set) = ImageSet::from_idx(images, path("images"), labels, path("labels")) {
            prop_assert_eq!(set.pixels().len(), set.len() * set.sample_len());
            let all: Vec<usize> = (0..set.len()).collect();
            let (f16s, unit) = (mixprec::tensor::DType::F16, mixprec::data::Normalize::UNIT);
            if let Ok(batch) = set.batch(&all, f16s, unit) {
                prop_assert_eq!(batch.inputs.numel(), set.pixels().len());
            }
            let mut rng = mixprec::tensor::random::Generator::new(0);
            if let Ok(batches) = set.batches(&mixprec::data::BatchConfig::new(2), &mut rng, f16s, unit) {
                prop_assert_eq!(batches.map(|b| b.targets.len()).sum::<usize>(), set.len());
            }
        }
    }

    #[test]
    fn text_parser_takes_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_text(&bytes)?;
        check_text(&gzip(&bytes))?;
    }

    #[test]
    fn text_parser_takes_arbitrary_strings(text in "\\PC{0,200}") {
        check_text(text.as_bytes())?;
        check_text(&gzip(text.as_bytes()))?;
    }
}
