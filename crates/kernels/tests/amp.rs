//! The master-weight and gradient-check kernels of `kernels::amp` beyond the
//! contract pair (which `contract.rs` covers): non-finite checks, the f16/bf16
//! working copy, the global sum of squares and the largest finite magnitude,
//! on every path the host can run, against the scalar reference and an oracle.

mod common;

use common::{SplitMix, paths, special_f32};
use half::{bf16, f16};
use mixprec_kernels::amp;
use mixprec_kernels::slice::Src;
use proptest::prelude::*;

/// Finite values that stress the checks: zeros, subnormals, the largest
/// finite values of every format, values just below the f16/bf16 overflow.
fn finite_specials() -> Vec<f32> {
    special_f32().into_iter().filter(|x| x.is_finite()).collect()
}

fn random_values(rng: &mut SplitMix, n: usize, specials: &[f32]) -> Vec<f32> {
    (0..n)
        .map(|i| if i % 3 == 0 { specials[rng.next_u32() as usize % specials.len()] } else { rng.next_f32() * 1e4 })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One injected non-finite value anywhere (or none) must be found, in
    /// every dtype, whatever the length and the start offset.
    #[test]
    fn non_finite_checks_find_one_bad_value(len in 0usize..700, off in 0usize..17, seed: u64,
                                            inject in 0u8..4, at in any::<prop::sample::Index>()) {
        let mut rng = SplitMix(seed);
        let mut x = random_values(&mut rng, len + off, &finite_specials());
        // Keep the clean values finite in f16 too.
        x.iter_mut().for_each(|v| *v = v.clamp(-65504.0, 65504.0));
        let bad = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][inject.min(2) as usize];
        let injected = inject < 3 && len > 0;
        if injected {
            x[off + at.index(len)] = bad;
        }
        let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let b: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        for k in paths() {
            prop_assert_eq!((k.amp.has_non_finite.f)(&x[off..]), injected, "{}: f32", k.label());
            prop_assert_eq!((k.amp.has_non_finite_f16.f)(&h[off..]), injected, "{}: f16", k.label());
            prop_assert_eq!((k.amp.has_non_finite_bf16.f)(&b[off..]), injected, "{}: bf16", k.label());
        }
    }

    /// The working copy is bit-identical to `half`'s cast (NaN → NaN), and
    /// the flag says whether any written value is non-finite.
    #[test]
    fn master_copies_match_half_and_flag_overflow(len in 0usize..700, off in 0usize..17, seed: u64, finite_only: bool) {
        let mut rng = SplitMix(seed);
        let specials = if finite_only { finite_specials() } else { special_f32() };
        let mut m = random_values(&mut rng, len + off, &specials);
        if finite_only {
            m.iter_mut().for_each(|v| *v = v.clamp(-65504.0, 65504.0));
        }
        let m = &m[off..];
        let want_h: Vec<f16> = m.iter().map(|&v| f16::from_f32(v)).collect();
        let want_b: Vec<bf16> = m.iter().map(|&v| bf16::from_f32(v)).collect();
        let flag_h = want_h.iter().any(|v| !v.is_finite());
        let flag_b = want_b.iter().any(|v| !v.is_finite());
        for k in paths() {
            let mut h = vec![f16::ZERO; len + off];
            let mut b = vec![bf16::ZERO; len + off];
            prop_assert_eq!((k.amp.master_to_f16.f)(m, &mut h[off..]), flag_h, "{}: f16 flag", k.label());
            prop_assert_eq!((k.amp.master_to_bf16.f)(m, &mut b[off..]), flag_b, "{}: bf16 flag", k.label());
            for i in 0..len {
                let (gh, wh) = (h[off + i], want_h[i]);
                prop_assert!(gh.to_bits() == wh.to_bits() || (gh.is_nan() && wh.is_nan()),
                    "{}: f16({:e}) = {:#06x}, want {:#06x}", k.label(), m[i], gh.to_bits(), wh.to_bits());
                let (gb, wb) = (b[off + i], want_b[i]);
                prop_assert!(gb.to_bits() == wb.to_bits() || (gb.is_nan() && wb.is_nan()),
                    "{}: bf16({:e}) = {:#06x}, want {:#06x}", k.label(), m[i], gb.to_bits(), wb.to_bits());
            }
            prop_assert!(h[..off].iter().all(|v| v.to_bits() == 0), "{}: wrote before the slice", k.label());
        }
    }

    /// `|err| ≤ 2·n·u·Σx²` against the f64 oracle (docs/numerics.md), over a
    /// set of slices of any lengths and offsets.
    #[test]
    fn sum_squares_is_within_its_bound(lens in prop::collection::vec(0usize..900, 0..6), off in 0usize..17,
                                       seed: u64, scale_exp in -60i32..60) {
        let mut rng = SplitMix(seed);
        let scale = 2.0f32.powi(scale_exp);
        let bufs: Vec<Vec<f32>> =
            lens.iter().map(|&n| (0..n + off).map(|_| rng.next_f32() * scale).collect()).collect();
        let slices: Vec<&[f32]> = bufs.iter().map(|b| &b[off..]).collect();
        let n: usize = lens.iter().sum();
        let exact: f64 = slices.iter().flat_map(|s| s.iter()).map(|&x| (x as f64) * (x as f64)).sum();
        let bound = 2.0 * n as f64 * 2.0f64.powi(-24) * exact;
        // A sum beyond f32's range is +Inf (partial sums of squares only grow,
        // so no path overflows below it); near the edge either is right.
        let max = f32::MAX as f64;
        for k in paths() {
            let got = (k.amp.sum_squares.f)(&slices) as f64;
            if got == f64::INFINITY {
                prop_assert!(exact + bound > max, "{}: +Inf for {exact} (n = {n})", k.label());
            } else {
                prop_assert!(exact - bound <= max, "{}: {got} for {exact}, beyond f32 (n = {n})", k.label());
                prop_assert!((got - exact).abs() <= bound, "{}: {got} vs {exact} ± {bound} (n = {n})", k.label());
            }
        }
    }
}

/// 16-bit float patterns: uniform bits (every class, NaN payloads of both
/// signs included) mixed with the edges: ±0, the smallest and largest
/// subnormals, the largest finite, ±Inf, quiet and signalling NaNs.
fn bits16(rng: &mut SplitMix, n: usize, exp: u16) -> Vec<u16> {
    let mant = 0x7FFF ^ exp;
    let edges = [0x0000, 0x8000, 0x0001, 0x8001, mant, mant | 0x8000, exp - 1, (exp - 1) | 0x8000];
    let edges: Vec<u16> = edges.into_iter().chain([exp, exp | 0x8000, exp | 1, exp | 0x8001, 0x7FFF, 0xFFFF]).collect();
    (0..n)
        .map(|i| {
            let r = rng.next_u32();
            if i % 4 == 0 { edges[r as usize % edges.len()] } else { (r >> 16) as u16 }
        })
        .collect()
}

/// The statistic's definition: the largest |x| over the finite elements, +0 if none.
fn oracle(x: impl Iterator<Item = f32>) -> f32 {
    x.filter(|v| v.is_finite()).map(f32::abs).fold(0.0, f32::max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `max_abs_finite` on f32, f16 and bf16: every path returns the bits of
    /// the definition (NaN and ±Inf skipped, ±0 as +0, subnormals as
    /// themselves), at any length and start offset.
    #[test]
    fn max_abs_finite_is_the_largest_finite_magnitude(len in 0usize..700, off in 0usize..17, seed: u64) {
        let mut rng = SplitMix(seed);
        let x = random_values(&mut rng, len + off, &special_f32());
        let x: Vec<f32> = x.iter().enumerate().map(|(i, &v)| if i % 7 == 3 { f32::from_bits(rng.next_u32()) } else { v }).collect();
        let h: Vec<f16> = bits16(&mut rng, len + off, 0x7C00).into_iter().map(f16::from_bits).collect();
        let b: Vec<bf16> = bits16(&mut rng, len + off, 0x7F80).into_iter().map(bf16::from_bits).collect();
        let (x, h, b) = (&x[off..], &h[off..], &b[off..]);
        let want = [oracle(x.iter().copied()), oracle(h.iter().map(|v| v.to_f32())), oracle(b.iter().map(|v| v.to_f32()))];
        for k in paths() {
            let got = [(k.amp.max_abs_finite.f)(Src::F32(x)), (k.amp.max_abs_finite.f)(Src::F16(h)), (k.amp.max_abs_finite.f)(Src::Bf16(b))];
            for (t, (g, w)) in ["f32", "f16", "bf16"].iter().zip(got.iter().zip(&want)) {
                prop_assert_eq!(g.to_bits(), w.to_bits(), "{}: {} got {:e}, want {:e}", k.label(), t, g, w);
            }
        }
    }
}

#[test]
fn max_abs_finite_skips_nan_and_inf_everywhere() {
    // One non-finite value larger than everything, at every position of
    // slices spanning whole vectors and tails: never the answer, and
    // never hiding the finite maximum beside it.
    for len in [1usize, 2, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100] {
        for at in 0..len {
            for bad in [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::from_bits(0x7F80_0001)] {
                let mut x: Vec<f32> = (0..len).map(|i| (i as f32 - 40.0) * 0.25).collect();
                x[at] = bad;
                let want = oracle(x.iter().copied());
                let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
                let b: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
                for k in paths() {
                    let l = k.label();
                    assert_eq!(
                        (k.amp.max_abs_finite.f)(Src::F32(&x)).to_bits(),
                        want.to_bits(),
                        "{l} f32 {len} {at} {bad}"
                    );
                    assert_eq!(
                        (k.amp.max_abs_finite.f)(Src::F16(&h)).to_bits(),
                        want.to_bits(),
                        "{l} f16 {len} {at} {bad}"
                    );
                    assert_eq!(
                        (k.amp.max_abs_finite.f)(Src::Bf16(&b)).to_bits(),
                        want.to_bits(),
                        "{l} bf16 {len} {at} {bad}"
                    );
                }
            }
        }
    }
    for k in paths() {
        let l = k.label();
        let f = |x: Src<'_>| (k.amp.max_abs_finite.f)(x).to_bits();
        // Nothing finite, or nothing at all: +0 (never −0, NaN or Inf).
        assert_eq!(f(Src::F32(&[])), 0, "{l}");
        assert_eq!(f(Src::F16(&[f16::NAN, f16::INFINITY, f16::NEG_INFINITY])), 0, "{l}");
        assert_eq!(f(Src::Bf16(&[bf16::NEG_INFINITY; 40])), 0, "{l}");
        assert_eq!(f(Src::F32(&[-0.0; 19])), 0, "{l}");
        // The largest finite values, next to +Inf.
        assert_eq!(f(Src::F16(&[f16::INFINITY, f16::MIN, f16::ONE])), 65504.0f32.to_bits(), "{l}");
        assert_eq!(f(Src::Bf16(&[bf16::MIN, bf16::NAN])), bf16::MAX.to_f32().to_bits(), "{l}");
        assert_eq!(f(Src::F32(&[f32::MIN, f32::INFINITY])), f32::MAX.to_bits(), "{l}");
        // Subnormals only: the largest, exactly (no flush to zero).
        let sub_h = [f16::from_bits(0x8001), f16::from_bits(0x0003), f16::from_bits(0x0002)];
        assert_eq!(f(Src::F16(&sub_h)), f16::from_bits(3).to_f32().to_bits(), "{l}");
        let sub_b = vec![bf16::from_bits(0x807F); 21];
        assert_eq!(f(Src::Bf16(&sub_b)), bf16::from_bits(0x007F).to_f32().to_bits(), "{l}");
        let sub_f = [f32::from_bits(1), -f32::from_bits(0x007F_FFFF), f32::from_bits(5)];
        assert_eq!(f(Src::F32(&sub_f)), 0x007F_FFFF, "{l}");
    }
    assert_eq!(amp::max_abs_finite(Src::F16(&[f16::from_f32(-3.5), f16::NAN])), 3.5);
}

#[test]
#[should_panic(expected = "f64 values are not supported")]
fn max_abs_finite_refuses_f64() {
    amp::max_abs_finite(Src::F64(&[1.0]));
}

#[test]
fn sum_squares_beyond_f32_is_infinite() {
    // 2^64 squared is 2^128, one past f32::MAX's binade: +Inf on every path,
    // at any position of a long slice (vector lanes and the tail).
    for len in [1usize, 7, 16, 33, 100] {
        for at in [0, len / 2, len - 1] {
            let mut v = vec![1.0f32; len];
            v[at] = 2.0f32.powi(64);
            for k in paths() {
                assert_eq!((k.amp.sum_squares.f)(&[&v]), f32::INFINITY, "{} len {len} at {at}", k.label());
            }
        }
    }
}

#[test]
fn lengths_zero_and_one() {
    for k in paths() {
        assert!(!(k.amp.has_non_finite.f)(&[]));
        assert!(!(k.amp.has_non_finite_f16.f)(&[]));
        assert!(!(k.amp.has_non_finite_bf16.f)(&[]));
        assert!((k.amp.has_non_finite.f)(&[f32::NAN]));
        assert!((k.amp.has_non_finite_f16.f)(&[f16::NEG_INFINITY]));
        assert!((k.amp.has_non_finite_bf16.f)(&[bf16::NAN]));
        assert!(!(k.amp.has_non_finite_bf16.f)(&[bf16::MAX]));
        assert!(!(k.amp.master_to_f16.f)(&[], &mut []));
        let mut h = [f16::ZERO];
        assert!(!(k.amp.master_to_f16.f)(&[65519.996], &mut h));
        assert_eq!(h[0], f16::MAX);
        assert!((k.amp.master_to_f16.f)(&[65520.0], &mut h));
        assert!(h[0].is_infinite());
        let mut b = [bf16::ZERO];
        assert!(!(k.amp.master_to_bf16.f)(&[f32::from_bits(0x7F7F_7FFF)], &mut b));
        assert_eq!(b[0], bf16::MAX);
        assert!((k.amp.master_to_bf16.f)(&[f32::from_bits(0x7F7F_8000)], &mut b));
        assert!(b[0].is_infinite());
        assert_eq!((k.amp.sum_squares.f)(&[]), 0.0);
        assert_eq!((k.amp.sum_squares.f)(&[&[], &[-3.0], &[]]), 9.0);
    }
}

#[test]
fn sum_squares_propagates_nan_and_inf() {
    let mut rng = SplitMix(7);
    let clean: Vec<f32> = (0..1000).map(|_| rng.next_f32()).collect();
    for k in paths() {
        for (i, bad) in [(0usize, f32::NAN), (517, f32::INFINITY), (999, f32::NEG_INFINITY)] {
            let mut x = clean.clone();
            x[i] = bad;
            let got = (k.amp.sum_squares.f)(&[&clean[..10], &x]);
            if bad.is_nan() {
                assert!(got.is_nan(), "{}: {got}", k.label());
            } else {
                assert_eq!(got, f32::INFINITY, "{}", k.label());
            }
        }
        // Squares beyond f32's range overflow to +Inf rather than wrap or saturate.
        assert_eq!((k.amp.sum_squares.f)(&[&[2e19; 40]]), f32::INFINITY, "{}", k.label());
        // Subnormal squares are not flushed: 1000 × (2^-70)² = 1000·2^-140.
        let got = (k.amp.sum_squares.f)(&[&[2.0f32.powi(-70); 1000]]);
        assert_eq!(got, 1000.0 * 2.0f32.powi(-140), "{}", k.label());
    }
}

#[test]
fn public_entry_points_use_the_active_path() {
    let x = [1.0f32, -2.0, 3.0];
    assert!(!amp::has_non_finite(&x));
    assert!(amp::has_non_finite(&[1.0, f32::INFINITY]));
    assert!(amp::has_non_finite_f16(&[f16::ONE, f16::NAN]));
    assert!(!amp::has_non_finite_bf16(&[bf16::ONE; 40]));
    let mut h = [f16::ZERO; 3];
    assert!(!amp::master_to_f16(&x, &mut h));
    assert_eq!(h.map(f16::to_f32), x);
    let mut b = [bf16::ZERO; 3];
    assert!(!amp::master_to_bf16(&x, &mut b));
    assert_eq!(b.map(bf16::to_f32), x);
    assert_eq!(amp::sum_squares(&[&x, &x]), 28.0);
}

#[test]
#[should_panic(expected = "lengths differ")]
fn master_copy_rejects_mismatched_lengths() {
    amp::master_to_f16(&[1.0, 2.0], &mut [f16::ZERO]);
}
