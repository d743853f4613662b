//! Typed slice handles for kernels that serve every element type with one
//! table entry: [`Src`] (input) and [`Dst`] (output) carry the slice and its
//! type, so `ew::binary(op, Src::F16(a), Src::F32(b), Dst::F32(out))` is one
//! call whatever the combination.
//!
//! Compute type: a kernel computes in f64 when any operand or the output is
//! f64, otherwise in FP32 (f16/bf16 widened exactly), and rounds once to the
//! output type. [`CHUNK`] elements at a time are widened into stack buffers,
//! so the per-element loop never dispatches on the type.

use half::{bf16, f16};

use crate::scalar::convert::{bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits};

/// Elements widened per block by the generic kernels (stack buffers).
pub const CHUNK: usize = 256;

/// The element type of a [`Src`] or [`Dst`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    /// `f64`.
    F64,
    /// `f32`.
    F32,
    /// `half::f16`.
    F16,
    /// `half::bf16`.
    Bf16,
}

/// A read-only slice of one of the kernel element types.
#[derive(Clone, Copy, Debug)]
pub enum Src<'a> {
    /// f64 elements (computed in f64).
    F64(&'a [f64]),
    /// f32 elements.
    F32(&'a [f32]),
    /// f16 elements (widened exactly to f32).
    F16(&'a [f16]),
    /// bf16 elements (widened exactly to f32).
    Bf16(&'a [bf16]),
}

/// A writable slice of one of the kernel element types.
#[derive(Debug)]
pub enum Dst<'a> {
    /// f64 elements.
    F64(&'a mut [f64]),
    /// f32 elements.
    F32(&'a mut [f32]),
    /// f16 elements (rounded once, to nearest even).
    F16(&'a mut [f16]),
    /// bf16 elements (rounded once, to nearest even).
    Bf16(&'a mut [bf16]),
}

impl<'a> Src<'a> {
    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Src::F64(s) => s.len(),
            Src::F32(s) => s.len(),
            Src::F16(s) => s.len(),
            Src::Bf16(s) => s.len(),
        }
    }

    /// Whether the slice is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    #[inline]
    pub fn elem(&self) -> Elem {
        match self {
            Src::F64(_) => Elem::F64,
            Src::F32(_) => Elem::F32,
            Src::F16(_) => Elem::F16,
            Src::Bf16(_) => Elem::Bf16,
        }
    }

    /// The sub-slice `start..end`.
    ///
    /// # Panics
    /// If the range is out of bounds.
    #[inline]
    pub fn slice(&self, start: usize, end: usize) -> Src<'a> {
        match *self {
            Src::F64(s) => Src::F64(&s[start..end]),
            Src::F32(s) => Src::F32(&s[start..end]),
            Src::F16(s) => Src::F16(&s[start..end]),
            Src::Bf16(s) => Src::Bf16(&s[start..end]),
        }
    }

    /// Element `i` widened to f64 (exact).
    ///
    /// # Panics
    /// If `i` is out of bounds.
    #[inline]
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Src::F64(s) => s[i],
            Src::F32(s) => s[i] as f64,
            Src::F16(s) => f16_bits_to_f32(s[i].to_bits()) as f64,
            Src::Bf16(s) => bf16_bits_to_f32(s[i].to_bits()) as f64,
        }
    }

    /// Widens `self[start..start + out.len()]` to f32 into `out`.
    ///
    /// # Panics
    /// If the range is out of bounds or the slice is f64 (f64 never computes in f32).
    #[inline]
    pub fn load_f32(&self, start: usize, out: &mut [f32]) {
        let end = start + out.len();
        match self {
            Src::F32(s) => out.copy_from_slice(&s[start..end]),
            Src::F16(s) => {
                for (o, h) in out.iter_mut().zip(&s[start..end]) {
                    *o = f16_bits_to_f32(h.to_bits());
                }
            }
            Src::Bf16(s) => {
                for (o, h) in out.iter_mut().zip(&s[start..end]) {
                    *o = bf16_bits_to_f32(h.to_bits());
                }
            }
            Src::F64(_) => panic!("load_f32: f64 operands compute in f64"),
        }
    }

    /// Widens `self[start..start + out.len()]` to f64 into `out` (exact).
    ///
    /// # Panics
    /// If the range is out of bounds.
    #[inline]
    pub fn load_f64(&self, start: usize, out: &mut [f64]) {
        let end = start + out.len();
        match self {
            Src::F64(s) => out.copy_from_slice(&s[start..end]),
            Src::F32(s) => {
                for (o, &x) in out.iter_mut().zip(&s[start..end]) {
                    *o = x as f64;
                }
            }
            Src::F16(s) => {
                for (o, h) in out.iter_mut().zip(&s[start..end]) {
                    *o = f16_bits_to_f32(h.to_bits()) as f64;
                }
            }
            Src::Bf16(s) => {
                for (o, h) in out.iter_mut().zip(&s[start..end]) {
                    *o = bf16_bits_to_f32(h.to_bits()) as f64;
                }
            }
        }
    }
}

impl<'a> Dst<'a> {
    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Dst::F64(s) => s.len(),
            Dst::F32(s) => s.len(),
            Dst::F16(s) => s.len(),
            Dst::Bf16(s) => s.len(),
        }
    }

    /// Whether the slice is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    #[inline]
    pub fn elem(&self) -> Elem {
        match self {
            Dst::F64(_) => Elem::F64,
            Dst::F32(_) => Elem::F32,
            Dst::F16(_) => Elem::F16,
            Dst::Bf16(_) => Elem::Bf16,
        }
    }

    /// Reborrows the sub-slice `start..end`.
    ///
    /// # Panics
    /// If the range is out of bounds.
    #[inline]
    pub fn slice(&mut self, start: usize, end: usize) -> Dst<'_> {
        match self {
            Dst::F64(s) => Dst::F64(&mut s[start..end]),
            Dst::F32(s) => Dst::F32(&mut s[start..end]),
            Dst::F16(s) => Dst::F16(&mut s[start..end]),
            Dst::Bf16(s) => Dst::Bf16(&mut s[start..end]),
        }
    }

    /// A read-only handle to the same elements.
    #[inline]
    pub fn as_src(&self) -> Src<'_> {
        match self {
            Dst::F64(s) => Src::F64(s),
            Dst::F32(s) => Src::F32(s),
            Dst::F16(s) => Src::F16(s),
            Dst::Bf16(s) => Src::Bf16(s),
        }
    }

    /// A shorter-lived handle to the same slice.
    #[inline]
    pub fn reborrow(&mut self) -> Dst<'_> {
        let n = self.len();
        self.slice(0, n)
    }

    /// Rounds `vals` once to the output type into `self[start..start + vals.len()]`.
    ///
    /// # Panics
    /// If the range is out of bounds.
    #[inline]
    pub fn store_f32(&mut self, start: usize, vals: &[f32]) {
        let end = start + vals.len();
        match self {
            Dst::F64(d) => {
                for (o, &x) in d[start..end].iter_mut().zip(vals) {
                    *o = x as f64;
                }
            }
            Dst::F32(d) => d[start..end].copy_from_slice(vals),
            Dst::F16(d) => {
                for (o, &x) in d[start..end].iter_mut().zip(vals) {
                    *o = f16::from_bits(f32_to_f16_bits(x));
                }
            }
            Dst::Bf16(d) => {
                for (o, &x) in d[start..end].iter_mut().zip(vals) {
                    *o = bf16::from_bits(f32_to_bf16_bits(x));
                }
            }
        }
    }

    /// Rounds `vals` once (directly from f64) to the output type.
    ///
    /// # Panics
    /// If the range is out of bounds.
    #[inline]
    pub fn store_f64(&mut self, start: usize, vals: &[f64]) {
        let end = start + vals.len();
        match self {
            Dst::F64(d) => d[start..end].copy_from_slice(vals),
            Dst::F32(d) => {
                for (o, &x) in d[start..end].iter_mut().zip(vals) {
                    *o = x as f32;
                }
            }
            Dst::F16(d) => {
                for (o, &x) in d[start..end].iter_mut().zip(vals) {
                    *o = f16::from_bits(f64_to_f16_bits(x));
                }
            }
            Dst::Bf16(d) => {
                for (o, &x) in d[start..end].iter_mut().zip(vals) {
                    *o = bf16::from_bits(f64_to_bf16_bits(x));
                }
            }
        }
    }
}

/// Whether a kernel over these operands computes in f64.
#[inline]
pub fn computes_in_f64(srcs: &[Elem], dst: Elem) -> bool {
    dst == Elem::F64 || srcs.contains(&Elem::F64)
}

/// `x` rounded to f32 with round-to-odd: truncated toward zero, with the
/// last bit set when anything was cut off. Rounding this to any format with
/// at least two fewer significand bits (f16, bf16) gives the correctly
/// rounded result of `x`, which a plain f64 → f32 → f16 double rounding
/// does not.
#[inline]
pub fn f64_to_f32_round_to_odd(x: f64) -> f32 {
    let r = x as f32;
    if x.is_nan() || r as f64 == x {
        return r;
    }
    // Inexact: step back toward zero when the nearest rounding went away from
    // zero, then mark the lost bits in the last place.
    let mut bits = r.to_bits();
    if (r as f64).abs() > x.abs() {
        bits -= 1;
    }
    f32::from_bits(bits | 1)
}

/// Rounds an f64 to the nearest f16 (ties to even), directly: NaN stays NaN,
/// overflow gives ±Inf, subnormals are kept.
#[inline]
pub fn f64_to_f16_bits(x: f64) -> u16 {
    f32_to_f16_bits(f64_to_f32_round_to_odd(x))
}

/// Rounds an f64 to the nearest bf16 (ties to even), directly.
#[inline]
pub fn f64_to_bf16_bits(x: f64) -> u16 {
    f32_to_bf16_bits(f64_to_f32_round_to_odd(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_odd_fixes_double_rounding() {
        // 1 + 2^-11 is an f16 tie; a hair above it must round up, but an f64
        // → f32 rounding lands exactly on the tie and ties-to-even goes down.
        let x = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!((x as f32) as f64, 1.0 + 2f64.powi(-11));
        assert_eq!(half::f16::from_f32(x as f32), half::f16::ONE);
        assert_eq!(f64_to_f16_bits(x), half::f16::ONE.to_bits() + 1);
        let y = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
        assert_eq!(f64_to_bf16_bits(y), half::bf16::ONE.to_bits() + 1);
        assert_eq!(f64_to_f16_bits(-x), (-half::f16::ONE).to_bits() + 1);
        assert!(half::f16::from_bits(f64_to_f16_bits(f64::NAN)).is_nan());
        assert_eq!(f64_to_f16_bits(1e300), half::f16::INFINITY.to_bits());
        assert_eq!(f64_to_bf16_bits(-1e300), half::bf16::NEG_INFINITY.to_bits());
        assert_eq!(f64_to_f16_bits(-0.0), 0x8000);
        assert_eq!(f64_to_f16_bits(2f64.powi(-25) + 2f64.powi(-60)), 1);
        assert_eq!(f64_to_f16_bits(2f64.powi(-25)), 0);
        assert_eq!(f64_to_bf16_bits(1e-300), 0);
    }

    #[test]
    fn f64_rounding_matches_exact_rounding_on_random_values() {
        // Exact reference: pick the nearer of the two neighbouring f16 values
        // by comparing in f64 (both neighbours and the midpoint are exact).
        let mut s = 0x1234_5678_9abc_def0u64;
        for _ in 0..200_000 {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let e = ((s >> 53) % 48) as i32 - 30;
            let m = 1.0 + (s & ((1u64 << 52) - 1)) as f64 / 2f64.powi(52);
            let x = if s & (1 << 52) != 0 { -m } else { m } * 2f64.powi(e);
            let h = f64_to_f16_bits(x);
            let v = half::f16::from_bits(h).to_f64();
            let lo = half::f16::from_bits(h.wrapping_sub(1)).to_f64();
            let hi = half::f16::from_bits(h + 1).to_f64();
            if v.is_finite() && hi.is_finite() && h & 0x7FFF != 0 {
                assert!((x - v).abs() <= (x - lo).abs() && (x - v).abs() <= (x - hi).abs(), "{x:e} -> {v:e}");
            }
        }
    }
}
