//! Shared helpers of the kernel test suites: every path the host can run,
//! special values, and the f64 oracle.
#![allow(dead_code)]

use mixprec_kernels::{Isa, Kernels, table};

/// The tables of every path this CPU can run; prints the ones it cannot, so a
/// green run says which paths were skipped.
pub fn paths() -> Vec<&'static Kernels> {
    for isa in Isa::compiled().iter().filter(|i| !i.is_available()) {
        eprintln!("skipped path {isa}: this CPU cannot run it");
    }
    Isa::available().into_iter().map(|isa| table(isa).expect("available path has a table")).collect()
}

/// f32 values that stress casts and arithmetic: zeros, subnormals of f32 and
/// f16/bf16, the f16 range limits and rounding ties, infinities, NaNs.
pub fn special_f32() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x8000_0001),
        f32::from_bits(0x007F_FFFF),
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7F80_0001),
        f32::from_bits(0xFFBF_FFFF),
        65504.0,
        -65504.0,
        65519.996,
        65520.0,
        65536.0,
        2.0f32.powi(-14),
        2.0f32.powi(-24),
        -2.0f32.powi(-24),
        2.0f32.powi(-25),
        2.0f32.powi(-25) * 1.5,
        2.0f32.powi(-26),
        2.0f32.powi(-14) - 2.0f32.powi(-25),
        1.0 + 2.0f32.powi(-11),
        1.0 + 3.0 * 2.0f32.powi(-11),
        1.0 + 2.0f32.powi(-8),
        1.0 + 3.0 * 2.0f32.powi(-8),
        std::f32::consts::PI,
        1e-40,
        -1e-45,
        3.3895314e38,
        3.4028235e38,
    ];
    // Every f16 value widened, and the midpoints between neighbours (ties).
    for h in (0u16..0x7C00).step_by(97) {
        let a = half::f16::from_bits(h).to_f32();
        let b = half::f16::from_bits(h + 1).to_f32();
        v.extend([a, -a, (a + b) / 2.0, -(a + b) / 2.0]);
    }
    v
}

/// SplitMix64: a tiny deterministic generator for bulk random bit patterns.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in [-1, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * 2.0f32.powi(-23) - 1.0
    }
}

/// Same value, or both NaN.
pub fn same_or_both_nan(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}
