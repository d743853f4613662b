//! Data loading: MNIST from the shipped gzip files, conversion of the whole
//! training set to float tensors, an epoch of MLP batches, and the
//! Shakespeare corpus.
//!
//! `cargo bench --bench data`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mixprec::data::{
    BatchConfig, Mnist, Normalize, Sequences, TextCorpus, load_mnist, shipped_dir, shipped_shakespeare,
};
use mixprec::tensor::DType;
use mixprec::tensor::random::Generator;

fn mnist(c: &mut Criterion) {
    let mut g = c.benchmark_group("mnist");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let dir = shipped_dir().join("mnist");
    g.bench_function("load_train_and_test_gz", |b| b.iter(|| black_box(load_mnist(&dir).unwrap())));
    let m = Mnist::shipped().unwrap();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        g.bench_function(format!("train_images_{dtype}"), |b| {
            b.iter(|| black_box(m.train.images(dtype, Normalize::MNIST).unwrap()))
        });
    }
    g.bench_function("train_epoch_batches_128_f32", |b| {
        let mut rng = Generator::new(0);
        b.iter(|| {
            for batch in m.train.batches(&BatchConfig::new(128), &mut rng, DType::F32, Normalize::MNIST).unwrap() {
                black_box(batch);
            }
        })
    });
    g.finish();
}

fn shakespeare(c: &mut Criterion) {
    let mut g = c.benchmark_group("shakespeare");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let path = shipped_shakespeare();
    g.bench_function("load_gz", |b| b.iter(|| black_box(TextCorpus::load(&path).unwrap())));
    let text = TextCorpus::load(&path).unwrap();
    let (train, _) = text.split(0.9).unwrap();
    g.bench_function("train_epoch_batches_32x64", |b| {
        let mut rng = Generator::new(0);
        let seqs = Sequences::new(train, 64).unwrap();
        b.iter(|| {
            for batch in seqs.batches(&BatchConfig::new(32), &mut rng).unwrap() {
                black_box(batch);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, mnist, shakespeare);
criterion_main!(benches);
