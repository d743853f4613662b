//! embedding and dropout: literal cases, typed errors, the dropout mask's
//! rate, scale and independence of the thread count, and gradchecks.

mod common;

use common::*;
use mixprec_autograd::Var;
use mixprec_tensor::random::CounterStream;
use mixprec_tensor::{DType, Tensor};
use proptest::prelude::*;

#[test]
fn embedding_literal() {
    let w = param(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2], DType::F32);
    let y = w.embedding(&[2, 0, 2, 1], &[2, 2]).unwrap();
    assert_eq!(y.shape(), &[2, 2, 2]);
    assert_eq!(val64(&y), vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0, 3.0, 4.0]);
    // dW scatters: row 2 is picked twice.
    y.mul_scalar(2.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&w), vec![2.0, 2.0, 2.0, 2.0, 4.0, 4.0]);
}

#[test]
fn embedding_rejects_bad_indices() {
    let w = Var::constant(Tensor::zeros(&[3, 2], DType::F32).unwrap());
    assert!(w.embedding(&[3], &[1]).is_err());
    assert!(w.embedding(&[0, 1], &[3]).is_err());
    assert!(w.reshape(&[6]).unwrap().embedding(&[0], &[1]).is_err());
}

#[test]
fn embedding_f16_gradient_sums_in_fp32() {
    // 4096 picks of one row: f16 sums stall at 2048, FP32 sums reach 4096.
    let w = Var::parameter(Tensor::zeros(&[2, 1], DType::F16).unwrap());
    let y = w.embedding(&[1; 4096], &[4096]).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&w), vec![0.0, 4096.0]);
}

fn mask_of(n: usize, p: f64, stream: &CounterStream) -> Vec<f64> {
    let x = Var::constant(Tensor::ones(&[n], DType::F32).unwrap());
    val64(&x.dropout(p, stream).unwrap())
}

#[test]
fn dropout_rate_scale_and_identities() {
    let s = CounterStream::new(7, 0);
    let n = 100_000;
    let m = mask_of(n, 0.3, &s);
    let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
    assert!((kept - 0.7).abs() < 0.01, "kept fraction {kept}");
    let scale = f64::from(1.0f32 / 0.7f32);
    assert!(m.iter().all(|&v| v == 0.0 || v == scale));
    // The mask is element i's word of the stream, however it is computed.
    let mut want = vec![0.0f32; n];
    s.fill_dropout_scale_f32(0, 0.3, &mut want);
    assert_eq!(m, want.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
    assert_eq!(mask_of(1000, 0.0, &s), vec![1.0; 1000]);
    assert_eq!(mask_of(1000, 1.0, &s), vec![0.0; 1000]);
    assert_ne!(mask_of(1000, 0.5, &s), mask_of(1000, 0.5, &CounterStream::new(8, 0)));
    let x = Var::constant(Tensor::ones(&[4], DType::F32).unwrap());
    assert!(x.dropout(1.5, &s).is_err());
    assert!(x.dropout(f64::NAN, &s).is_err());
}

#[test]
fn dropout_mask_is_independent_of_the_thread_count() {
    let s = CounterStream::new(11, 3);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let x = Var::parameter(Tensor::ones(&[70_001], DType::F32).unwrap());
            let y = x.dropout(0.25, &s).unwrap();
            y.sum_all().unwrap().backward().unwrap();
            (val64(&y), grad64(&x))
        })
    };
    let (y1, g1) = run(1);
    let (y2, g2) = run(2);
    assert_eq!(y1, y2);
    // dx = dy·m: the backward regenerates the same mask.
    assert_eq!(g1, y1);
    assert_eq!(g2, g1);
}

#[test]
fn dropout_f16_rounds_once() {
    let s = CounterStream::new(1, 0);
    let x = Var::constant(Tensor::full(&[256], 0.1, DType::F16).unwrap());
    let y = x.dropout(0.3, &s).unwrap();
    assert_eq!(y.dtype(), DType::F16);
    let x0 = DType::F16.round(0.1) as f32;
    for v in val64(&y) {
        assert!(v == 0.0 || v == DType::F16.round(f64::from(x0 * (1.0f32 / 0.7f32))));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_embedding(v in 1usize..6, d in 1usize..5, n in 1usize..8, seed in any::<u64>()) {
        let w = uniform(&[v, d], -1.0, 1.0, seed);
        let idx: Vec<usize> = (0..n).map(|i| (i * 7 + seed as usize % 5) % v).collect();
        check(|x| x[0].embedding(&idx, &[n]), &[w]);
    }

    #[test]
    fn gradcheck_dropout(n in 1usize..40, p in 0.0f64..0.9, seed in any::<u64>()) {
        let x = uniform(&[n], -1.0, 1.0, seed);
        let s = CounterStream::new(seed, 0);
        check(|v| v[0].dropout(p, &s), &[x]);
    }
}
