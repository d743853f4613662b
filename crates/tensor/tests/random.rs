//! The generator's stream is pinned (hashes that must match on every
//! platform), its samplers pass statistical checks, masks do not depend on
//! chunking or threads, and state round-trips bit-exactly.
//!
//! Statistical tolerances are stated per test: a correct sampler would fail
//! each of them with probability below about 1e-3 for a random seed; the
//! seeds are fixed, so the outcome is deterministic.

use mixprec_tensor::random::{
    ALGORITHM, CounterStream, Generator, GeneratorState, kaiming_normal_std, kaiming_uniform_bound, xavier_normal_std,
    xavier_uniform_bound,
};
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: impl IntoIterator<Item = u8>) -> String {
    let mut h = Sha256::new();
    h.update(bytes.into_iter().collect::<Vec<u8>>());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of the little-endian bits of `randn` (f32) from seed 0, 10,000 samples.
const RANDN_F32_SEED0_10K: &str = "70578b64af242b82f96df32b61d79682420c8b279fc5250584204a6e34282c48";
/// sha256 of the little-endian bits of the f64 normals from seed 0, 10,000 samples.
const RANDN_F64_SEED0_10K: &str = "67d79f203c75018f7b2dd774cec88c7afe7b587d8daae7428ded7e90efdd86a5";

#[test]
fn algorithm_is_named() {
    assert_eq!(ALGORITHM, "mixprec-chacha8-v1");
}

#[test]
fn randn_seed0_hash_is_pinned() {
    let mut out = vec![0f32; 10_000];
    Generator::new(0).fill_normal_f32(&mut out, 0.0, 1.0);
    let got = sha256_hex(out.iter().flat_map(|x| x.to_bits().to_le_bytes()));
    assert_eq!(got, RANDN_F32_SEED0_10K, "first values {:?}", &out[..4]);

    let mut out = vec![0f64; 10_000];
    Generator::new(0).fill_normal_f64(&mut out, 0.0, 1.0);
    let got = sha256_hex(out.iter().flat_map(|x| x.to_bits().to_le_bytes()));
    assert_eq!(got, RANDN_F64_SEED0_10K, "first values {:?}", &out[..4]);
}

/// The words are ChaCha8 (djb's layout: 64-bit block counter, 64-bit stream
/// number) under the SplitMix64 key of seed 0, as `scripts/random_reference.py`
/// computes them independently.
#[test]
fn first_words_of_seed0_are_pinned() {
    let mut g = Generator::new(0);
    let words: Vec<u32> = (0..4).map(|_| g.next_u32()).collect();
    assert_eq!(words, [764339688, 3214201139, 2799327745, 980649845]);
    let mut g = Generator::new(0);
    let (z0, z1) = g.normal_pair();
    // 0.10337176821075392, 0.7543503591663323
    assert_eq!((z0.to_bits(), z1.to_bits()), (0x3fba_7692_7bcb_7d4a, 0x3fe8_23a3_5d4b_0c4c));
}

/// Φ(x), the standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.3275911 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erfc = poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 { 1.0 - erfc / 2.0 } else { erfc / 2.0 }
}

/// Kolmogorov–Smirnov statistic of `samples` against `cdf`.
fn ks_statistic(samples: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len() as f64;
    samples.iter().enumerate().fold(0.0, |d, (i, &x)| {
        let f = cdf(x);
        d.max(f - i as f64 / n).max((i + 1) as f64 / n - f)
    })
}

/// √n·D above 1.95 has probability about 0.001 for a correct sampler.
const KS_CRITICAL: f64 = 1.95;

struct Moments {
    mean: f64,
    var: f64,
    skew: f64,
    excess_kurtosis: f64,
}

fn moments(xs: &[f64]) -> Moments {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let m = |p: i32| xs.iter().map(|x| (x - mean).powi(p)).sum::<f64>() / n;
    let var = m(2);
    Moments { mean, var, skew: m(3) / var.powf(1.5), excess_kurtosis: m(4) / (var * var) - 3.0 }
}

const N: usize = 1_000_000;

#[test]
fn uniform_f32_is_uniform_on_unit_interval() {
    let mut out = vec![0f32; N];
    Generator::new(1).fill_uniform_f32(&mut out, 0.0, 1.0);
    assert!(out.iter().all(|&x| (0.0..1.0).contains(&x)));
    let mut xs: Vec<f64> = out.iter().map(|&x| x as f64).collect();
    let m = moments(&xs);
    let n = N as f64;
    // Uniform: mean 1/2 (σ/√n = 0.289/√n), variance 1/12 (sd of the estimate √(1/180/n)).
    assert!((m.mean - 0.5).abs() < 5.0 * 0.2887 / n.sqrt(), "mean {}", m.mean);
    assert!((m.var - 1.0 / 12.0).abs() < 5.0 * (1.0 / 180.0 / n).sqrt(), "var {}", m.var);
    let d = ks_statistic(&mut xs, |x| x.clamp(0.0, 1.0));
    assert!(d * n.sqrt() < KS_CRITICAL, "KS √n·D = {}", d * n.sqrt());
}

#[test]
fn uniform_range_and_f64() {
    let mut out = vec![0f64; N];
    Generator::new(2).fill_uniform_f64(&mut out, -3.0, 5.0);
    assert!(out.iter().all(|&x| (-3.0..5.0).contains(&x)));
    let n = N as f64;
    let m = moments(&out);
    assert!((m.mean - 1.0).abs() < 5.0 * 8.0 * 0.2887 / n.sqrt(), "mean {}", m.mean);
    let d = ks_statistic(&mut out, |x| ((x + 3.0) / 8.0).clamp(0.0, 1.0));
    assert!(d * n.sqrt() < KS_CRITICAL, "KS √n·D = {}", d * n.sqrt());

    let mut f = vec![0f32; 1000];
    Generator::new(2).fill_uniform_f32(&mut f, 2.5, 2.5);
    assert!(f.iter().all(|&x| x == 2.5));
}

#[test]
fn normal_samples_are_standard_normal() {
    let mut xs = vec![0f64; N];
    Generator::new(3).fill_normal_f64(&mut xs, 0.0, 1.0);
    let n = N as f64;
    let m = moments(&xs);
    // Standard errors: mean 1/√n, variance √(2/n), skewness √(6/n), excess kurtosis √(24/n).
    assert!(m.mean.abs() < 5.0 / n.sqrt(), "mean {}", m.mean);
    assert!((m.var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "var {}", m.var);
    assert!(m.skew.abs() < 5.0 * (6.0 / n).sqrt(), "skew {}", m.skew);
    assert!(m.excess_kurtosis.abs() < 5.0 * (24.0 / n).sqrt(), "kurtosis {}", m.excess_kurtosis);
    // Tails: P(|z| > 3) = 0.0026998; binomial sd √(p(1−p)/n).
    let p3 = xs.iter().filter(|x| x.abs() > 3.0).count() as f64 / n;
    assert!((p3 - 0.0026998).abs() < 5.0 * (0.0027 / n).sqrt(), "P(|z|>3) = {p3}");
    assert!(xs.iter().all(|x| x.abs() <= 8.58), "Box–Muller on 53-bit uniforms is bounded by 8.57");
    let d = ks_statistic(&mut xs, normal_cdf);
    // The CDF approximation adds at most 1.5e-7 to D.
    assert!(d * n.sqrt() < KS_CRITICAL, "KS √n·D = {}", d * n.sqrt());
}

#[test]
fn normal_f32_with_mean_and_std_rounds_the_f64_samples_once() {
    let mut f = vec![0f32; 10_001];
    let mut d = vec![0f64; 10_001];
    Generator::new(4).fill_normal_f32(&mut f, 3.0, 0.5);
    Generator::new(4).fill_normal_f64(&mut d, 3.0, 0.5);
    for (a, b) in f.iter().zip(&d) {
        assert_eq!(*a, *b as f32);
    }
    let m = moments(&d);
    assert!((m.mean - 3.0).abs() < 5.0 * 0.5 / 100.0 && (m.var.sqrt() - 0.5).abs() < 0.02, "{} {}", m.mean, m.var);
}

#[test]
fn odd_fills_consume_whole_pairs() {
    let mut a = Generator::new(5);
    let mut b = Generator::new(5);
    let mut x = [0f32; 3];
    a.fill_normal_f32(&mut x, 0.0, 1.0);
    let mut y = [0f32; 4];
    b.fill_normal_f32(&mut y, 0.0, 1.0);
    assert_eq!(x, y[..3]);
    assert_eq!(a.state(), b.state());
    assert_eq!(a.state().word_pos, 8);
}

#[test]
fn below_is_unbiased() {
    let mut g = Generator::new(6);
    let mut counts = [0u32; 7];
    let draws = 70_000;
    for _ in 0..draws {
        counts[g.below(7) as usize] += 1;
    }
    let expected = draws as f64 / 7.0;
    let chi2: f64 = counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
    // χ² with 6 degrees of freedom exceeds 22.46 with probability 0.001.
    assert!(chi2 < 22.46, "χ² = {chi2}, counts {counts:?}");
    assert_eq!(g.below(1), 0);
    let before = g.state();
    assert_eq!(g.below(0), 0);
    assert_eq!(g.state(), before, "below(0) draws nothing");
    let big = (1u64 << 63) + 1;
    assert!((0..1000).all(|_| g.below(big) < big));
}

#[test]
fn shuffle_gives_every_permutation_equally_often() {
    let mut g = Generator::new(7);
    let mut counts = std::collections::HashMap::new();
    let rounds = 48_000;
    for _ in 0..rounds {
        let mut p = [0u8, 1, 2, 3];
        g.shuffle(&mut p);
        *counts.entry(p).or_insert(0u32) += 1;
    }
    assert_eq!(counts.len(), 24);
    let expected = rounds as f64 / 24.0;
    let chi2: f64 = counts.values().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
    // χ² with 23 degrees of freedom exceeds 49.73 with probability 0.001.
    assert!(chi2 < 49.73, "χ² = {chi2}");

    let p = Generator::new(8).permutation(60_000);
    let mut sorted = p.clone();
    sorted.sort_unstable();
    assert!(sorted.iter().enumerate().all(|(i, &v)| i == v));
    assert_ne!(p, sorted);
    assert_eq!(p, Generator::new(8).permutation(60_000));
    assert!(Generator::new(8).permutation(0).is_empty());
}

#[test]
fn state_restores_bit_exactly_mid_block() {
    let mut g = Generator::with_stream(11, 3);
    for words in [0usize, 1, 37, 64, 1000] {
        for _ in 0..words {
            g.next_u32();
        }
        let state = g.state();
        let bytes = state.to_bytes();
        let restored_state = GeneratorState::from_bytes(&bytes).expect("round trip");
        assert_eq!(restored_state, state);
        let mut restored = Generator::from_state(&restored_state);
        let mut a = vec![0f32; 1001];
        let mut b = vec![0f32; 1001];
        g.clone().fill_normal_f32(&mut a, 0.0, 1.0);
        restored.fill_normal_f32(&mut b, 0.0, 1.0);
        assert_eq!(a, b, "after {words} words");
        assert_eq!(restored.seed(), 11);
        assert_eq!(restored.state().stream, 3);
    }
}

#[test]
fn state_bytes_reject_garbage() {
    let good = Generator::new(1).state().to_bytes();
    assert!(GeneratorState::from_bytes(&good[..39]).is_none());
    assert!(GeneratorState::from_bytes(&[good.as_slice(), &[0]].concat()).is_none());
    let mut bad_magic = good;
    bad_magic[0] ^= 1;
    assert!(GeneratorState::from_bytes(&bad_magic).is_none());
    let mut bad_version = good;
    bad_version[4] = 2;
    assert!(GeneratorState::from_bytes(&bad_version).is_none());
}

#[test]
fn seeds_and_streams_are_distinct() {
    let first = |mut g: Generator| (0..8).map(|_| g.next_u32()).collect::<Vec<_>>();
    let a = first(Generator::new(0));
    assert_ne!(a, first(Generator::new(1)));
    assert_ne!(a, first(Generator::with_stream(0, 1)));
    assert_eq!(a, first(Generator::with_stream(0, 0)));
    let mut g = Generator::new(0);
    let child = g.fork();
    assert_ne!(first(child), a);
    assert_eq!(g.state().word_pos, 2);
}

#[test]
fn counter_stream_does_not_depend_on_chunking_or_threads() {
    let stream = CounterStream::new(42, 9);
    let len = 10_000;
    let mut whole = vec![0f32; len];
    stream.fill_dropout_scale_f32(0, 0.3, &mut whole);
    for chunk in [1, 7, 16, 63, 64, 1000, 4096] {
        let mut pieces = vec![0f32; len];
        for (i, piece) in pieces.chunks_mut(chunk).enumerate() {
            stream.fill_dropout_scale_f32((i * chunk) as u64, 0.3, piece);
        }
        assert_eq!(pieces, whole, "chunk {chunk}");
    }
    for threads in 1..=8 {
        let mut out = vec![0f32; len];
        let per = len.div_ceil(threads);
        std::thread::scope(|s| {
            for (t, piece) in out.chunks_mut(per).enumerate() {
                s.spawn(move || stream.fill_dropout_scale_f32((t * per) as u64, 0.3, piece));
            }
        });
        assert_eq!(out, whole, "{threads} threads");
    }
    // The same elements from a different start read different words.
    let mut shifted = vec![0f32; len];
    stream.fill_dropout_scale_f32(1, 0.3, &mut shifted);
    assert_eq!(shifted[..len - 1], whole[1..]);
}

#[test]
fn counter_stream_masks_have_the_right_rate() {
    let stream = CounterStream::new(5, 0);
    let mut keep = vec![false; N];
    stream.fill_keep_mask(0, 0.9, &mut keep);
    let rate = keep.iter().filter(|&&k| k).count() as f64 / N as f64;
    assert!((rate - 0.9).abs() < 5.0 * (0.09 / N as f64).sqrt(), "keep rate {rate}");

    let mut scale = vec![0f32; N];
    stream.fill_dropout_scale_f32(0, 0.1, &mut scale);
    let kept = 1.0f32 / 0.9;
    assert!(scale.iter().zip(&keep).all(|(&s, &k)| if k { s == kept } else { s == 0.0 }));

    let mut all = vec![0f32; 100];
    stream.fill_dropout_scale_f32(0, 0.0, &mut all);
    assert!(all.iter().all(|&s| s == 1.0));
    stream.fill_dropout_scale_f32(0, 1.0, &mut all);
    assert!(all.iter().all(|&s| s == 0.0));
    let mut none = vec![true; 100];
    stream.fill_keep_mask(0, f32::NAN, &mut none);
    assert!(none.iter().all(|&k| !k));

    let mut u = vec![0f32; N];
    stream.fill_uniform_f32(0, &mut u);
    let mean = u.iter().map(|&x| x as f64).sum::<f64>() / N as f64;
    assert!((mean - 0.5).abs() < 5.0 * 0.2887 / (N as f64).sqrt());
    let mut words = vec![0u32; 4];
    stream.words(3, &mut words);
    assert_eq!(u[3], (words[0] >> 8) as f32 / 16_777_216.0);
}

#[test]
fn counter_streams_from_a_generator_are_reproducible_and_distinct() {
    let mut g = Generator::new(1);
    let a = g.counter_stream();
    let b = g.counter_stream();
    assert_ne!(a, b);
    let mut h = Generator::new(1);
    assert_eq!(h.counter_stream(), a);
    assert_eq!(CounterStream::new(a.seed(), a.stream()), a);
}

#[test]
fn init_bounds_give_the_intended_variance() {
    let relu = std::f64::consts::SQRT_2;
    assert_eq!(kaiming_uniform_bound(784, relu), (6.0f64 / 784.0).sqrt());
    assert!((kaiming_uniform_bound(784, (1.0f64 / 3.0).sqrt()) - 1.0 / 28.0).abs() < 1e-15);
    assert_eq!(kaiming_normal_std(4, 1.0), 0.5);
    assert!((xavier_uniform_bound(2, 4, 1.0) - 1.0).abs() < 1e-15);
    assert!((xavier_normal_std(1, 3, 2.0) - 2.0 * 0.5f64.sqrt()).abs() < 1e-15);
    assert_eq!(kaiming_uniform_bound(0, relu), 0.0);
    assert_eq!(xavier_normal_std(0, 0, 1.0), 0.0);
    // U(−b, b) with the Kaiming bound has variance gain²/fan_in.
    let b = kaiming_uniform_bound(100, relu);
    let mut w = vec![0f64; 1_000_000];
    Generator::new(12).fill_uniform_f64(&mut w, -b, b);
    let var = w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64;
    assert!((var - 0.02).abs() < 5.0 * 0.02 * (0.8f64 / 1e6).sqrt(), "var {var}");
}

#[test]
fn keep_masks_are_exactly_uniform_below_keep_prob() {
    let stream = CounterStream::new(77, 1);
    let mut words = vec![0u32; 100_000];
    stream.words(0, &mut words);
    // Put some words right at the boundaries of the thresholds below.
    let awkward =
        [0.1f32, 1.0 / 3.0, 0.5, 0.999_999_94, 1e-9, 5.960_464_5e-8, 1.0 - 5.960_464_5e-8, 0.0, 1.0, 2.0, -1.0];
    for p in awkward {
        let mut keep = vec![false; words.len()];
        stream.fill_keep_mask(0, p, &mut keep);
        for (&w, &k) in words.iter().zip(&keep) {
            assert_eq!(k, ((w >> 8) as f32 / 16_777_216.0) < p, "p {p} word {w:#x}");
        }
        let mut scale = vec![0f32; words.len()];
        stream.fill_dropout_scale_f32(0, 1.0 - p, &mut scale);
        let kept = keep_prob_scale(1.0 - (1.0 - p));
        let mut keep_again = vec![false; words.len()];
        stream.fill_keep_mask(0, 1.0 - (1.0 - p), &mut keep_again);
        assert!(scale.iter().zip(&keep_again).all(|(&s, &k)| s == if k { kept } else { 0.0 }), "p {p}");
    }
}

fn keep_prob_scale(keep_prob: f32) -> f32 {
    if keep_prob > 0.0 { 1.0 / keep_prob } else { 0.0 }
}
