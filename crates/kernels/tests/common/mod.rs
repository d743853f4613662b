//! Shared helpers of the kernel test suites: every path the host can run,
//! special values, and the f64 oracle.
#![allow(dead_code)]

use mixprec_kernels::{FeatureMask, Isa, Kernels, features, table, table_masked};

/// The tables of every path this CPU can run, plus each path with the
/// sub-features it uses masked off (`avx512[-bf16]`, `neon[-fp16,-fhm]`), so
/// the kernels a CPU without those features would run are tested here too.
/// Prints the paths it cannot run, so a green run says which were skipped.
pub fn paths() -> Vec<&'static Kernels> {
    use std::sync::Once;
    static SKIPPED: Once = Once::new();
    SKIPPED.call_once(|| {
        for isa in Isa::compiled().iter().filter(|i| !i.is_available()) {
            eprintln!("skipped path {isa}: this CPU cannot run it (features after MIXPREC_FEATURES: {:?})", features());
        }
    });
    let f = features();
    let mut out = Vec::new();
    for isa in Isa::available() {
        out.push(table(isa).expect("available path has a table"));
        let mask = match isa {
            Isa::Avx512 | Isa::Avx512Fp16 if f.bf16 => FeatureMask { no_bf16: true, ..FeatureMask::NONE },
            Isa::Neon if f.fp16 || f.fhm => FeatureMask { no_fp16: true, no_fhm: true, ..FeatureMask::NONE },
            _ => continue,
        };
        if let Some(k) = table_masked(isa, mask) {
            out.push(k);
        }
    }
    out
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

/// An owned buffer of one kernel element type, for the typed-slice kernels.
#[derive(Clone, Debug)]
pub enum Buf {
    F64(Vec<f64>),
    F32(Vec<f32>),
    F16(Vec<half::f16>),
    Bf16(Vec<half::bf16>),
}

pub const ELEMS: [mixprec_kernels::slice::Elem; 4] = {
    use mixprec_kernels::slice::Elem;
    [Elem::F64, Elem::F32, Elem::F16, Elem::Bf16]
};

/// Rounds an f64 once to `elem` (nearest even) and widens it back.
pub fn round_to(elem: mixprec_kernels::slice::Elem, x: f64) -> f64 {
    use mixprec_kernels::slice::{Elem, f64_to_bf16_bits, f64_to_f16_bits};
    match elem {
        Elem::F64 => x,
        Elem::F32 => x as f32 as f64,
        Elem::F16 => half::f16::from_bits(f64_to_f16_bits(x)).to_f64(),
        Elem::Bf16 => half::bf16::from_bits(f64_to_bf16_bits(x)).to_f64(),
    }
}

/// Significand bits (with the implicit one) and the smallest subnormal exponent.
pub fn format_of(elem: mixprec_kernels::slice::Elem) -> (i32, i32) {
    use mixprec_kernels::slice::Elem;
    match elem {
        Elem::F64 => (53, -1074),
        Elem::F32 => (24, -149),
        Elem::F16 => (11, -24),
        Elem::Bf16 => (8, -133),
    }
}

/// The spacing of `elem` at `x` (the ulp of the binade, subnormal floor).
pub fn ulp_at(elem: mixprec_kernels::slice::Elem, x: f64) -> f64 {
    let (p, min_e) = format_of(elem);
    let e = if x == 0.0 || !x.is_finite() { min_e } else { (x.abs().log2().floor() as i32 - (p - 1)).max(min_e) };
    2f64.powi(e)
}

/// Whether `got` is within `ulps` ulps (of `elem`, at `want`) of the exact
/// value `want`. NaN must meet NaN; a finite `want` may come out infinite
/// only if moving it by the allowance overflows `elem`.
pub fn within_ulps(elem: mixprec_kernels::slice::Elem, got: f64, want: f64, ulps: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if got == want {
        return true;
    }
    let allowance = ulps * ulp_at(elem, want);
    if got.is_infinite() {
        return want.is_finite()
            && got.signum() == want.signum()
            && round_to(elem, want + want.signum() * allowance).is_infinite();
    }
    (got - want).abs() <= allowance
}

impl Buf {
    pub fn from_f64(elem: mixprec_kernels::slice::Elem, vals: &[f64]) -> Buf {
        use mixprec_kernels::slice::{Elem, f64_to_bf16_bits, f64_to_f16_bits};
        match elem {
            Elem::F64 => Buf::F64(vals.to_vec()),
            Elem::F32 => Buf::F32(vals.iter().map(|&v| v as f32).collect()),
            Elem::F16 => Buf::F16(vals.iter().map(|&v| half::f16::from_bits(f64_to_f16_bits(v))).collect()),
            Elem::Bf16 => Buf::Bf16(vals.iter().map(|&v| half::bf16::from_bits(f64_to_bf16_bits(v))).collect()),
        }
    }

    pub fn zeros(elem: mixprec_kernels::slice::Elem, n: usize) -> Buf {
        Buf::from_f64(elem, &vec![0.0; n])
    }

    pub fn src(&self) -> mixprec_kernels::slice::Src<'_> {
        use mixprec_kernels::slice::Src;
        match self {
            Buf::F64(v) => Src::F64(v),
            Buf::F32(v) => Src::F32(v),
            Buf::F16(v) => Src::F16(v),
            Buf::Bf16(v) => Src::Bf16(v),
        }
    }

    pub fn dst(&mut self) -> mixprec_kernels::slice::Dst<'_> {
        use mixprec_kernels::slice::Dst;
        match self {
            Buf::F64(v) => Dst::F64(v),
            Buf::F32(v) => Dst::F32(v),
            Buf::F16(v) => Dst::F16(v),
            Buf::Bf16(v) => Dst::Bf16(v),
        }
    }

    pub fn len(&self) -> usize {
        self.src().len()
    }

    pub fn get(&self, i: usize) -> f64 {
        self.src().get_f64(i)
    }

    pub fn to_f64(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// Bit-level equality (NaN payloads ignored).
    pub fn same(&self, other: &Buf) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|i| {
                let (a, b) = (self.get(i), other.get(i));
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            })
    }
}

/// A mix of values for elementwise tests: specials, small and large
/// magnitudes, f16 and bf16 subnormals, near-overflow values.
pub fn mixed_values(rng: &mut SplitMix, n: usize) -> Vec<f64> {
    let special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        65504.0,
        -65504.0,
        6e-8,
        -3e-5,
        1e-40,
        3.0e38,
        0.5,
        2.0,
        -7.25,
    ];
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            if r.is_multiple_of(7) {
                special[(r >> 8) as usize % special.len()]
            } else {
                let m = rng.next_f32() as f64;
                let e = ((r >> 16) % 24) as i32 - 12;
                m * 2f64.powi(e)
            }
        })
        .collect()
}

/// True when the tests run under qemu-user (the aarch64 test script exports
/// `AARCH64_QEMU_CPU`), where arithmetic is ~50× slower: big shapes shrink in
/// depth there, never in the dimensions a test is about.
pub fn under_emulation() -> bool {
    std::env::var_os("AARCH64_QEMU_CPU").is_some()
}
