//! The contract surface of DESIGN.md, on every path the host can run:
//! casts bit-exact against `half`, GEMM against an f64 oracle with BLAS
//! semantics, and the loss-scaling kernels.

mod common;

use common::{SplitMix, paths, same_or_both_nan, special_f32};
use half::{bf16, f16};
use mixprec_kernels::gemm::{self, Transpose};
use mixprec_kernels::{Isa, active_isa, amp, convert};
use proptest::prelude::*;

#[test]
fn expected_isa_is_active() {
    // MIXPREC_EXPECT_ISA makes a machine that should run a path fail loudly
    // instead of silently testing a lower one.
    match std::env::var("MIXPREC_EXPECT_ISA") {
        Ok(token) if !token.is_empty() => {
            let expected =
                Isa::from_token(&token).unwrap_or_else(|| panic!("MIXPREC_EXPECT_ISA={token}: unknown token"));
            assert!(expected.is_available(), "MIXPREC_EXPECT_ISA={token} but this CPU cannot run it");
            assert_eq!(active_isa(), expected, "MIXPREC_EXPECT_ISA={token} but {} is active", active_isa());
        }
        _ => eprintln!("MIXPREC_EXPECT_ISA not set; active path {}", active_isa()),
    }
}

fn f16_cast_matches_half(x: f32, got: f16) {
    let want = f16::from_f32(x);
    if x.is_nan() {
        assert!(got.is_nan(), "f32_to_f16({x:e}) = {got:?}, want NaN");
    } else {
        assert_eq!(got.to_bits(), want.to_bits(), "f32_to_f16({x:e} = {:#010x})", x.to_bits());
    }
}

fn bf16_cast_matches_half(x: f32, got: bf16) {
    let want = bf16::from_f32(x);
    if x.is_nan() {
        assert!(got.is_nan(), "f32_to_bf16({x:e}) = {got:?}, want NaN");
    } else {
        assert_eq!(got.to_bits(), want.to_bits(), "f32_to_bf16({x:e} = {:#010x})", x.to_bits());
    }
}

#[test]
fn every_f16_and_bf16_widens_exactly() {
    let halves: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
    let brains: Vec<bf16> = (0..=u16::MAX).map(bf16::from_bits).collect();
    for k in paths() {
        let mut out = vec![0.0f32; 65536];
        (k.convert.f16_to_f32.f)(&halves, &mut out);
        for (h, o) in halves.iter().zip(&out) {
            assert!(same_or_both_nan(h.to_f32(), *o), "{}: f16_to_f32({:#06x}) = {o:e}", k.label(), h.to_bits());
        }
        (k.convert.bf16_to_f32.f)(&brains, &mut out);
        for (b, o) in brains.iter().zip(&out) {
            assert!(same_or_both_nan(b.to_f32(), *o), "{}: bf16_to_f32({:#06x}) = {o:e}", k.label(), b.to_bits());
        }
    }
}

#[test]
fn f32_narrowing_matches_half_on_edges_and_random_bits() {
    let mut xs = special_f32();
    let mut rng = SplitMix(0x5EED);
    xs.extend((0..1 << 20).map(|_| f32::from_bits(rng.next_u32())));
    // Values inside f16's range, where rounding matters most.
    xs.extend((0..1 << 18).map(|_| rng.next_f32() * 70000.0 * 2.0f32.powi(-((rng.next_u32() % 40) as i32))));
    for k in paths() {
        let mut h = vec![f16::ZERO; xs.len()];
        let mut b = vec![bf16::ZERO; xs.len()];
        (k.convert.f32_to_f16.f)(&xs, &mut h);
        (k.convert.f32_to_bf16.f)(&xs, &mut b);
        for ((&x, &h), &b) in xs.iter().zip(&h).zip(&b) {
            f16_cast_matches_half(x, h);
            bf16_cast_matches_half(x, b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every length and start offset, so SIMD bodies, tails and unaligned
    /// starts all meet the same values.
    #[test]
    fn casts_handle_tails_and_unaligned_starts(len in 0usize..300, off in 0usize..17, seed: u64) {
        let mut rng = SplitMix(seed);
        let specials = special_f32();
        let src: Vec<f32> = (0..len + off)
            .map(|i| if i % 5 == 0 { specials[rng.next_u32() as usize % specials.len()] } else { rng.next_f32() * 1e3 })
            .collect();
        let src = &src[off..];
        for k in paths() {
            let mut h = vec![f16::ZERO; len + off];
            let mut b = vec![bf16::ZERO; len + off];
            (k.convert.f32_to_f16.f)(src, &mut h[off..]);
            (k.convert.f32_to_bf16.f)(src, &mut b[off..]);
            for i in 0..len {
                f16_cast_matches_half(src[i], h[off + i]);
                bf16_cast_matches_half(src[i], b[off + i]);
            }
            let mut back = vec![0.0f32; len + off];
            (k.convert.f16_to_f32.f)(&h[off..], &mut back[off..]);
            for i in 0..len {
                prop_assert!(same_or_both_nan(back[off + i], h[off + i].to_f32()));
            }
            (k.convert.bf16_to_f32.f)(&b[off..], &mut back[off..]);
            for i in 0..len {
                prop_assert!(same_or_both_nan(back[off + i], b[off + i].to_f32()));
            }
        }
    }
}

#[test]
#[should_panic(expected = "lengths differ")]
fn casts_reject_mismatched_lengths() {
    convert::f32_to_f16(&[1.0, 2.0], &mut [f16::ZERO]);
}

#[test]
fn public_casts_use_the_active_path() {
    let src: Vec<f32> = special_f32();
    let mut h = vec![f16::ZERO; src.len()];
    convert::f32_to_f16(&src, &mut h);
    let mut back = vec![0.0; src.len()];
    convert::f16_to_f32(&h, &mut back);
    for ((&x, &h), &y) in src.iter().zip(&h).zip(&back) {
        f16_cast_matches_half(x, h);
        assert!(same_or_both_nan(y, h.to_f32()));
    }
    let mut b = vec![bf16::ZERO; src.len()];
    convert::f32_to_bf16(&src, &mut b);
    convert::bf16_to_f32(&b, &mut back);
    for ((&x, &b), &y) in src.iter().zip(&b).zip(&back) {
        bf16_cast_matches_half(x, b);
        assert!(same_or_both_nan(y, b.to_f32()));
    }
}

// ---------------------------------------------------------------- unscale

fn unscale_reference(g: &[f32], inv: f32) -> (Vec<f32>, bool) {
    let out: Vec<f32> = g.iter().map(|&x| x * inv).collect();
    let bad = g.iter().zip(&out).any(|(x, y)| !x.is_finite() || !y.is_finite());
    (out, bad)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn unscale_and_check_scales_and_flags(len in 0usize..600, off in 0usize..9, seed: u64, inject in 0u8..4, at in any::<prop::sample::Index>()) {
        let mut rng = SplitMix(seed);
        let mut g: Vec<f32> = (0..len + off).map(|_| rng.next_f32() * 3e4).collect();
        if len > 0 {
            let i = off + at.index(len);
            g[i] = match inject { 0 => f32::INFINITY, 1 => f32::NAN, 2 => f32::MAX, _ => g[i] };
        }
        let inv = if inject == 2 { 4.0 } else { 1.0 / 65536.0 };
        let (want, want_bad) = unscale_reference(&g[off..], inv);
        for k in paths() {
            let mut got = g.clone();
            let bad = (k.amp.unscale_and_check.f)(&mut got[off..], inv);
            prop_assert_eq!(bad, want_bad, "{}: flag", k.label());
            for (a, b) in got[off..].iter().zip(&want) {
                prop_assert!(same_or_both_nan(*a, *b), "{}: {a} vs {b}", k.label());
            }
            prop_assert_eq!(&got[..off], &g[..off]);
            let h: Vec<f16> = g.iter().map(|&x| f16::from_f32(x)).collect();
            let (want_h, want_h_bad) = unscale_reference(&h[off..].iter().map(|x| x.to_f32()).collect::<Vec<_>>(), inv);
            let mut out = vec![0.0f32; len];
            let bad = (k.amp.unscale_and_check_f16.f)(&h[off..], inv, &mut out);
            prop_assert_eq!(bad, want_h_bad, "{}: f16 flag", k.label());
            for (a, b) in out.iter().zip(&want_h) {
                prop_assert!(same_or_both_nan(*a, *b), "{}: {a} vs {b}", k.label());
            }
        }
    }
}

#[test]
fn unscale_public_entry_points() {
    let mut g = vec![2.0f32; 33];
    assert!(!amp::unscale_and_check(&mut g, 0.5));
    assert!(g.iter().all(|&x| x == 1.0));
    g[32] = f32::NAN;
    assert!(amp::unscale_and_check(&mut g, 0.5));
    let h = vec![f16::from_f32(-3.0); 17];
    let mut out = vec![0.0; 17];
    assert!(!amp::unscale_and_check_f16(&h, 2.0, &mut out));
    assert!(out.iter().all(|&x| x == -6.0));
    assert!(amp::unscale_and_check_f16(&h, f32::INFINITY, &mut out));
}

// ---------------------------------------------------------------- gemm

#[derive(Clone, Debug)]
struct GemmCase {
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    lda_pad: usize,
    ldb_pad: usize,
    ldc_pad: usize,
    seed: u64,
}

fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => prop_oneof![Just(0usize), Just(1), Just(2), Just(3), Just(5), Just(7), Just(13), Just(17), Just(31)],
        4 => 0usize..70,
        1 => prop_oneof![Just(97usize), Just(127), Just(211), Just(293), 70usize..300],
    ]
}

fn pad() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0usize..4, 1 => 4usize..200]
}

fn gemm_case() -> impl Strategy<Value = GemmCase> {
    let t = prop_oneof![Just(Transpose::No), Just(Transpose::Yes)];
    let scalar = prop_oneof![Just(0.0f32), Just(1.0), Just(-1.0), Just(0.5), -3.0f32..3.0];
    (t.clone(), t, dim(), dim(), dim(), scalar.clone(), scalar, pad(), pad(), pad(), any::<u64>()).prop_map(
        |(ta, tb, m, n, k, alpha, beta, lda_pad, ldb_pad, ldc_pad, seed)| GemmCase {
            ta,
            tb,
            m,
            n,
            k,
            alpha,
            beta,
            lda_pad,
            ldb_pad,
            ldc_pad,
            seed,
        },
    )
}

struct Operands {
    a: Vec<f32>,
    lda: usize,
    b: Vec<f32>,
    ldb: usize,
    c: Vec<f32>,
    ldc: usize,
}

/// Random operands; `round` maps each A/B value to the input type's grid.
fn operands(case: &GemmCase, round: impl Fn(f32) -> f32) -> Operands {
    let mut rng = SplitMix(case.seed);
    let (ar, ac) = if case.ta == Transpose::No { (case.m, case.k) } else { (case.k, case.m) };
    let (br, bc) = if case.tb == Transpose::No { (case.k, case.n) } else { (case.n, case.k) };
    let (lda, ldb, ldc) = (ac + case.lda_pad, bc + case.ldb_pad, case.n + case.ldc_pad);
    let mut fill = |len: usize| (0..len).map(|_| round(rng.next_f32() * 2.0)).collect::<Vec<f32>>();
    let a = fill(gemm::required_len(ar, ac, lda));
    let b = fill(gemm::required_len(br, bc, ldb));
    let mut c = fill(gemm::required_len(case.m, case.n, ldc));
    if case.beta == 0.0 {
        c.iter_mut().for_each(|x| *x = f32::NAN);
    }
    let mut ops = Operands { a, lda, b, ldb, c, ldc };
    if case.alpha == 0.0 {
        ops.a.iter_mut().for_each(|x| *x = f32::NAN);
        ops.b.iter_mut().for_each(|x| *x = f32::INFINITY);
    }
    ops
}

/// Checks `got` against the f64 oracle with the bound of docs/numerics.md:
/// `|err| ≤ 2·k·2^-24·|alpha|·(|A||B|)_ij + 2·2^-24·|beta·C_ij|`.
fn check_gemm(case: &GemmCase, ops: &Operands, got: &[f32], what: &str) {
    let u = 2.0f64.powi(-24);
    for i in 0..case.m {
        for j in 0..case.n {
            let (mut dot, mut abs) = (0.0f64, 0.0f64);
            if case.alpha != 0.0 {
                for p in 0..case.k {
                    let a =
                        if case.ta == Transpose::No { ops.a[i * ops.lda + p] } else { ops.a[p * ops.lda + i] } as f64;
                    let b =
                        if case.tb == Transpose::No { ops.b[p * ops.ldb + j] } else { ops.b[j * ops.ldb + p] } as f64;
                    dot += a * b;
                    abs += (a * b).abs();
                }
            }
            let c0 = if case.beta == 0.0 { 0.0 } else { ops.c[i * ops.ldc + j] as f64 };
            let want = case.alpha as f64 * dot + case.beta as f64 * c0;
            let bound =
                2.0 * case.k as f64 * u * (case.alpha as f64).abs() * abs + 2.0 * u * (case.beta as f64 * c0).abs();
            let g = got[i * ops.ldc + j] as f64;
            assert!((g - want).abs() <= bound, "{what} {case:?}: C[{i},{j}] = {g}, want {want} ± {bound}");
        }
        // Padding between rows of C is never written.
        for j in case.n..ops.ldc {
            if let Some(&x) = got.get(i * ops.ldc + j) {
                let orig = ops.c[i * ops.ldc + j];
                assert!(same_or_both_nan(x, orig), "{what}: padding C[{i},{j}] was written");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn gemm_matches_f64_oracle_on_every_path(case in gemm_case()) {
        let r16 = |x: f32| f16::from_f32(x).to_f32();
        let rb16 = |x: f32| bf16::from_f32(x).to_f32();
        for k in paths() {
            let ops = operands(&case, |x| x);
            let mut c = ops.c.clone();
            gemm::gemm_on(&k.gemm.sgemm, case.ta, case.tb, case.m, case.n, case.k, case.alpha, &ops.a, ops.lda, &ops.b, ops.ldb, case.beta, gemm::Output::F32(&mut c), ops.ldc, Default::default());
            check_gemm(&case, &ops, &c, &format!("{}: sgemm", k.isa));
            // The wide kernel forced onto every shape it can take (the table
            // takes it for large products only).
            if let gemm::Path::F32(imp) = &k.gemm.sgemm && let Some(w) = imp.wide {
                let wide = gemm::Wide { min_m: 1, min_n: 1, min_k: 1, ..w };
                let path = gemm::Path::F32(gemm::Impl { wide: Some(wide), ..*imp });
                let mut c = ops.c.clone();
                gemm::gemm_on(&path, case.ta, case.tb, case.m, case.n, case.k, case.alpha, &ops.a, ops.lda, &ops.b, ops.ldb, case.beta, gemm::Output::F32(&mut c), ops.ldc, Default::default());
                check_gemm(&case, &ops, &c, &format!("{}: sgemm wide", k.isa));
            }

            let ops = operands(&case, r16);
            let a: Vec<f16> = ops.a.iter().map(|&x| f16::from_f32(x)).collect();
            let b: Vec<f16> = ops.b.iter().map(|&x| f16::from_f32(x)).collect();
            let mut c = ops.c.clone();
            gemm::gemm_on(&k.gemm.hgemm, case.ta, case.tb, case.m, case.n, case.k, case.alpha, &a, ops.lda, &b, ops.ldb, case.beta, gemm::Output::F32(&mut c), ops.ldc, Default::default());
            check_gemm(&case, &ops, &c, &format!("{}: hgemm", k.isa));
            if let gemm::Path::F32(imp) = &k.gemm.hgemm && let Some(w) = imp.wide {
                let wide = gemm::Wide { min_m: 1, min_n: 1, min_k: 1, ..w };
                let path = gemm::Path::F32(gemm::Impl { wide: Some(wide), ..*imp });
                let mut c = ops.c.clone();
                gemm::gemm_on(&path, case.ta, case.tb, case.m, case.n, case.k, case.alpha, &a, ops.lda, &b, ops.ldb, case.beta, gemm::Output::F32(&mut c), ops.ldc, Default::default());
                check_gemm(&case, &ops, &c, &format!("{}: hgemm wide", k.isa));
            }
            for (name, path) in gemm::hgemm_alternatives() {
                let mut c = ops.c.clone();
                gemm::gemm_on(&path, case.ta, case.tb, case.m, case.n, case.k, case.alpha, &a, ops.lda, &b, ops.ldb, case.beta, gemm::Output::F32(&mut c), ops.ldc, Default::default());
                check_gemm(&case, &ops, &c, &format!("{name}: hgemm"));
            }

            let ops = operands(&case, rb16);
            let a: Vec<bf16> = ops.a.iter().map(|&x| bf16::from_f32(x)).collect();
            let b: Vec<bf16> = ops.b.iter().map(|&x| bf16::from_f32(x)).collect();
            let mut c = ops.c.clone();
            gemm::gemm_on(&k.gemm.bgemm, case.ta, case.tb, case.m, case.n, case.k, case.alpha, &a, ops.lda, &b, ops.ldb, case.beta, gemm::Output::F32(&mut c), ops.ldc, Default::default());
            check_gemm(&case, &ops, &c, &format!("{}: bgemm", k.isa));
        }
    }
}

#[test]
fn gemm_k_zero_scales_c_and_m_zero_is_a_no_op() {
    let mut c = vec![2.0f32; 6];
    gemm::sgemm(Transpose::No, Transpose::No, 2, 3, 0, 1.0, &[], 0, &[], 3, 0.5, &mut c, 3);
    assert_eq!(c, vec![1.0; 6]);
    let mut c = vec![f32::NAN; 6];
    gemm::sgemm(Transpose::No, Transpose::No, 2, 3, 0, 1.0, &[], 0, &[], 3, 0.0, &mut c, 3);
    assert_eq!(c, vec![0.0; 6]);
    let mut c = vec![7.0f32; 3];
    gemm::sgemm(Transpose::No, Transpose::No, 0, 3, 4, 1.0, &[], 4, &[1.0; 12], 3, 0.0, &mut c, 3);
    assert_eq!(c, vec![7.0; 3]);
}

#[test]
fn gemm_small_literal() {
    // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]; with A stored transposed too.
    let a = [1.0f32, 2.0, 3.0, 4.0];
    let at = [1.0f32, 3.0, 2.0, 4.0];
    let b = [5.0f32, 6.0, 7.0, 8.0];
    let mut c = [1.0f32; 4];
    gemm::sgemm(Transpose::No, Transpose::No, 2, 2, 2, 1.0, &a, 2, &b, 2, 1.0, &mut c, 2);
    assert_eq!(c, [20.0, 23.0, 44.0, 51.0]);
    let mut c = [0.0f32; 4];
    gemm::sgemm(Transpose::Yes, Transpose::No, 2, 2, 2, 2.0, &at, 2, &b, 2, 0.0, &mut c, 2);
    assert_eq!(c, [38.0, 44.0, 86.0, 100.0]);
    let ah: Vec<f16> = a.iter().map(|&x| f16::from_f32(x)).collect();
    let bh: Vec<f16> = b.iter().map(|&x| f16::from_f32(x)).collect();
    gemm::hgemm(Transpose::No, Transpose::Yes, 2, 2, 2, 1.0, &ah, 2, &bh, 2, 0.0, &mut c, 2);
    assert_eq!(c, [17.0, 23.0, 39.0, 53.0]);
}

#[test]
#[should_panic(expected = "lda = 1 is smaller")]
fn gemm_rejects_short_leading_dimension() {
    let mut c = [0.0f32; 4];
    gemm::sgemm(Transpose::No, Transpose::No, 2, 2, 2, 1.0, &[0.0; 4], 1, &[0.0; 4], 2, 0.0, &mut c, 2);
}

#[test]
#[should_panic(expected = "B holds 3 elements")]
fn gemm_rejects_short_slices() {
    let mut c = [0.0f32; 4];
    gemm::sgemm(Transpose::No, Transpose::No, 2, 2, 2, 1.0, &[0.0; 4], 2, &[0.0; 3], 2, 0.0, &mut c, 2);
}
