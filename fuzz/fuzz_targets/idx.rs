//! The data readers on arbitrary bytes: IDX (raw or gzip) and text corpora
//! answer `Ok` or a `DataError` naming the input, never a panic; an `Ok` IDX
//! array holds exactly the elements its dimensions promise, and images built
//! from it batch with typed errors for out-of-range indices.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mixprec::data::{ImageSet, Normalize, TextCorpus, parse_idx};
use mixprec::tensor::DType;

fn labels_for(n: usize, from: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 1];
    out.extend_from_slice(&(n as u32).to_be_bytes());
    out.extend((0..n).map(|i| from.get(i).copied().unwrap_or(7)));
    out
}

fuzz_target!(|data: &[u8]| {
    match parse_idx(data, "input") {
        Ok(a) => {
            let n = a.dims().iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            if a.dims().contains(&0) {
                assert!(a.data().is_empty());
            } else {
                assert_eq!(n, Some(a.data().len()), "dims {:?}", a.dims());
            }
            // Dimensions with a zero may promise any count; the labels made
            // for them are kept small.
            if a.dims().len() >= 2 && a.data().len() <= 1 << 16 && a.dims()[0] <= 1 << 16 {
                let count = a.dims()[0];
                let labels = parse_idx(&labels_for(count, a.data()), "labels").expect("well-formed labels");
                let set = ImageSet::from_idx(a, Path::new("input"), labels, Path::new("labels")).expect("counts agree");
                assert_eq!(set.len(), count);
                let t = set.images(DType::F16, Normalize::MNIST).expect("images");
                assert_eq!(t.numel(), set.pixels().len());
                assert!(set.batch(&[count], DType::F32, Normalize::UNIT).is_err(), "index {count} of {count} accepted");
                if count > 0 {
                    let b = set.batch(&[count - 1, 0], DType::BF16, Normalize::UNIT).expect("in-range batch");
                    assert_eq!(b.targets.len(), 2);
                }
            }
        }
        Err(e) => assert!(e.to_string().contains("input"), "{e}"),
    }
    match TextCorpus::parse(data, "input") {
        Ok(c) => {
            assert_eq!(c.len(), c.text().chars().count());
            let decoded = c.vocab().decode(c.tokens().iter().map(|&i| i as usize)).expect("own tokens decode");
            assert_eq!(decoded, c.text());
            assert!(c.vocab().decode([c.vocab().len()]).is_err());
        }
        Err(e) => assert!(e.to_string().contains("input"), "{e}"),
    }
});
