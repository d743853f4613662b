//! `reduce::max_pool2x2` on every path the host can run against the scalar
//! reference, bit for bit (values and offsets), on planes of random shapes
//! (odd heights and widths, widths around the vector blocks), unaligned
//! starts, and elements drawn from raw bit patterns with ±0, subnormals,
//! ±Inf, quiet and signalling NaNs of either sign among them; the
//! reference itself against literal windows.

mod common;

use common::paths;
use half::{bf16, f16};
use mixprec_kernels::slice::{Dst, Src};
use mixprec_kernels::{Isa, table};
use proptest::prelude::*;

/// Random float bits from the generator's states: one in three a special
/// of `special`, else the pattern `draw(state)` gives beside the 32 random
/// bits that choose.
fn bits<T: Copy>(seed: u64, n: usize, special: &[T], draw: fn(u64) -> (u32, T)) -> Vec<T> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let (r, other) = draw(s);
            if r.is_multiple_of(3) { special[(r >> 8) as usize % special.len()] } else { other }
        })
        .collect()
}

/// The specials of the 16-bit format whose +Inf is `inf`: ±0, subnormals,
/// ±Inf, quiet and signalling NaNs of either sign, ±1 (f16's, a repeated
/// value for ties).
fn specials16(inf: u16) -> [u16; 14] {
    let quiet = inf | (inf >> 1 & !inf);
    [0, 0x8000, 1, 0x8001, 0x03FF, 0x83FF, inf, inf | 0x8000, quiet, quiet | 0x8000, inf | 1, 0xFFFF, 0x3C00, 0xBC00]
}

/// The f32 specials (and a few repeated values for ties).
const SPECIALS32: [u32; 13] = [
    0,
    0x8000_0000,
    1,
    0x8000_0001,
    0x007F_FFFF,
    0x7F80_0000,
    0xFF80_0000,
    0x7FC0_0000,
    0xFFC0_0000,
    0x7F80_0001,
    0xFFFF_FFFF,
    0x3F80_0000,
    0xBF80_0000,
];

/// Any 16-bit pattern.
fn draw16(s: u64) -> (u32, u16) {
    let r = (s >> 33) as u32;
    (r, (r >> 5) as u16)
}

/// An f32 pattern of either sign whose exponent field is 0, 1, 128 or 129
/// (subnormals, the smallest normals, magnitudes in [2, 8)).
fn draw32(s: u64) -> (u32, u32) {
    let r = (s >> 32) as u32;
    (r, r.rotate_left(7) & 0xC0FF_FFFF)
}

/// Runs every path on `x[off..]` and checks each against the reference;
/// the outputs sit between sentinels that must stay untouched.
#[allow(clippy::too_many_arguments)]
fn check<T: Copy>(
    planes: usize,
    h: usize,
    w: usize,
    x: &[T],
    off: usize,
    sentinel: T,
    src: impl Fn(&[T]) -> Src<'_>,
    dst: impl Fn(&mut [T]) -> Dst<'_>,
    bits: impl Fn(T) -> u64,
) -> Result<(), TestCaseError> {
    let bits = |v: &[T]| v.iter().map(|&e| bits(e)).collect::<Vec<u64>>();
    let x = &x[off..off + planes * h * w];
    let n = planes * (h / 2) * (w / 2);
    let (mut want, mut want_i) = (vec![sentinel; n], vec![7u8; n]);
    (table(Isa::Scalar).unwrap().reduce.max_pool2x2.f)(planes, h, w, src(x), dst(&mut want), &mut want_i);
    prop_assert!(want_i.iter().all(|&i| i < 4));
    for k in paths() {
        let (mut y, mut idx) = (vec![sentinel; n + 2], vec![9u8; n + 2]);
        (k.reduce.max_pool2x2.f)(planes, h, w, src(x), dst(&mut y[1..n + 1]), &mut idx[1..n + 1]);
        prop_assert_eq!(&idx[1..n + 1], &want_i[..], "{}: offsets of {}×{}×{}", k.label(), planes, h, w);
        prop_assert_eq!(bits(&y[1..n + 1]), bits(&want), "{}: values of {}×{}×{}", k.label(), planes, h, w);
        let ends = bits(&[y[0], y[n + 1], sentinel]);
        prop_assert!(
            ends[0] == ends[2] && ends[1] == ends[2] && idx[0] == 9 && idx[n + 1] == 9,
            "{}: wrote outside",
            k.label()
        );
    }
    Ok(())
}

fn shape() -> impl Strategy<Value = (usize, usize, usize)> {
    (
        0usize..4,
        prop_oneof![0usize..8, Just(14), Just(28), 0usize..40],
        prop_oneof![
            0usize..8,
            Just(14),
            Just(28),
            prop::sample::select(vec![15usize, 16, 17, 31, 32, 33, 34, 47, 48, 49]),
            0usize..80
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn f16_and_bf16_paths_match_the_reference((planes, h, w) in shape(), off in 0usize..9, seed in any::<u64>()) {
        let n = planes * h * w + off;
        let x: Vec<f16> = bits(seed, n, &specials16(0x7C00), draw16).into_iter().map(f16::from_bits).collect();
        check(planes, h, w, &x, off, f16::from_bits(0x5555), |s| Src::F16(s), |d| Dst::F16(d), |v| u64::from(v.to_bits()))?;
        let x: Vec<bf16> = bits(seed ^ 1, n, &specials16(0x7F80), draw16).into_iter().map(bf16::from_bits).collect();
        check(planes, h, w, &x, off, bf16::from_bits(0x5555), |s| Src::Bf16(s), |d| Dst::Bf16(d), |v| u64::from(v.to_bits()))?;
    }

    #[test]
    fn f32_and_f64_paths_match_the_reference((planes, h, w) in shape(), off in 0usize..9, seed in any::<u64>()) {
        let n = planes * h * w + off;
        let x: Vec<f32> = bits(seed, n, &SPECIALS32, draw32).into_iter().map(f32::from_bits).collect();
        check(planes, h, w, &x, off, 12288.0, |s| Src::F32(s), |d| Dst::F32(d), |v| u64::from(v.to_bits()))?;
        let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        check(planes, h, w, &x, off, 12288.0, |s| Src::F64(s), |d| Dst::F64(d), f64::to_bits)?;
    }
}

/// The reference on literal windows: the first NaN wins (its bits kept),
/// else the first maximum; `−0` and `+0` tie; odd rows and columns dropped.
#[test]
fn reference_picks_the_first_nan_else_the_first_maximum() {
    let nan = f32::from_bits(0xFFC0_1234);
    // One 3×5 plane: windows [1 NaN; 2 +Inf] and [−0 +0; −0 +0]; the last row and column are dropped.
    let x = [1.0, nan, -0.0, 0.0, 9.0, 2.0, f32::INFINITY, -0.0, 0.0, 9.0, 8.0, 8.0, 8.0, 8.0, 8.0];
    for k in paths() {
        let (mut y, mut idx) = ([0.0f32; 2], [0u8; 2]);
        (k.reduce.max_pool2x2.f)(1, 3, 5, Src::F32(&x), Dst::F32(&mut y), &mut idx);
        assert_eq!(idx, [1, 0], "{}", k.label());
        assert_eq!(y[0].to_bits(), nan.to_bits(), "{}", k.label());
        assert_eq!(y[1].to_bits(), 0x8000_0000, "{}: −0 first, +0 ties", k.label());
        let x16: Vec<f16> = [3.0, 1.0, -1.0, 3.0, 3.0, f32::NEG_INFINITY, 2.0, 3.0].map(f16::from_f32).to_vec();
        let (mut y, mut idx) = ([f16::ZERO; 2], [0u8; 2]);
        (k.reduce.max_pool2x2.f)(1, 2, 4, Src::F16(&x16), Dst::F16(&mut y), &mut idx);
        assert_eq!(idx, [0, 1], "{}", k.label());
        assert_eq!(y, [f16::from_f32(3.0), f16::from_f32(3.0)], "{}", k.label());
    }
}
