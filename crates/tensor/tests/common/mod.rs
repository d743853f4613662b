//! Shared helpers: random tensors (any dtype, any view), the f64 oracle's
//! rounding and ulp, and a tiny deterministic generator for values.
#![allow(dead_code)]

use mixprec_tensor::{DType, Tensor};
use proptest::prelude::*;

pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * 2f64.powi(-52) - 1.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

pub fn dtype_strategy() -> impl Strategy<Value = DType> {
    prop_oneof![Just(DType::F64), Just(DType::F32), Just(DType::F16), Just(DType::BF16)]
}

/// Values in ±scale, a few exact zeros and small integers.
pub fn values(rng: &mut SplitMix, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| match rng.below(10) {
            0 => 0.0,
            1 => (rng.below(7) as f64) - 3.0,
            _ => rng.unit() * scale,
        })
        .collect()
}

/// A tensor of `shape` and `dtype` with random values, seen through a random
/// view: as is, transposed (materialised transposed, then viewed back), or
/// narrowed out of a larger tensor, so strided and offset layouts appear.
pub fn random_tensor(rng: &mut SplitMix, shape: &[usize], dtype: DType, scale: f64) -> Tensor {
    let n: usize = shape.iter().product();
    match if shape.is_empty() { 0 } else { rng.below(3) } {
        1 if shape.len() >= 2 => {
            // Store the last two axes swapped, then transpose back: a strided view.
            let r = shape.len();
            let mut st = shape.to_vec();
            st.swap(r - 2, r - 1);
            let t = Tensor::from_vec(values(rng, n, scale), &st).unwrap().to_dtype(dtype).unwrap();
            t.transpose(-1, -2).unwrap()
        }
        2 => {
            // Narrow out of a tensor with a wider first axis.
            let extra = 1 + rng.below(3);
            let mut big = shape.to_vec();
            big[0] += extra;
            let m: usize = big.iter().product();
            let t = Tensor::from_vec(values(rng, m, scale), &big).unwrap().to_dtype(dtype).unwrap();
            let start = rng.below(extra + 1);
            t.narrow(0, start, shape[0]).unwrap()
        }
        _ => Tensor::from_vec(values(rng, n, scale), shape).unwrap().to_dtype(dtype).unwrap(),
    }
}

/// Significand bits and smallest subnormal exponent of a dtype.
pub fn format_of(d: DType) -> (i32, i32) {
    match d {
        DType::F64 => (53, -1074),
        DType::F32 => (24, -149),
        DType::F16 => (11, -24),
        DType::BF16 => (8, -133),
    }
}

/// Spacing of `d` at `x`.
pub fn ulp(d: DType, x: f64) -> f64 {
    let (p, min_e) = format_of(d);
    let e = if x == 0.0 || !x.is_finite() { min_e } else { (x.abs().log2().floor() as i32 - (p - 1)).max(min_e) };
    2f64.powi(e)
}

/// Unit roundoff of the accumulation type of `d` (FP32 unless f64).
pub fn acc_unit(d: DType) -> f64 {
    if d == DType::F64 { 2f64.powi(-53) } else { 2f64.powi(-24) }
}

pub fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// `|got − want| ≤ bound`, NaN meeting NaN, overflow to ±Inf allowed when
/// the allowance crosses the dtype's range.
pub fn close(d: DType, got: f64, want: f64, bound: f64) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got == want {
        return true;
    }
    if got.is_infinite() {
        return want.is_finite()
            && d.round(want + want.signum() * bound).is_infinite()
            && got.signum() == want.signum();
    }
    (got - want).abs() <= bound
}
