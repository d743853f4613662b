//! Element types: [`DType`] names them at run time, [`Element`] ties each to
//! its Rust type (`f64`, `f32`, `half::f16`, `half::bf16`).

use std::fmt;

use half::{bf16, f16};
use mixprec_kernels::slice::{Dst, Src, f64_to_bf16_bits, f64_to_f16_bits};

use crate::storage::Buffer;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE binary64: references and gradient checks.
    F64,
    /// IEEE binary32: master weights, accumulation, losses.
    F32,
    /// IEEE binary16 (`half::f16`): 11-bit significand, max 65504.
    F16,
    /// bfloat16 (`half::bf16`): f32's range, 8-bit significand.
    BF16,
}

impl DType {
    /// Every dtype.
    pub const ALL: [DType; 4] = [DType::F64, DType::F32, DType::F16, DType::BF16];

    /// Bytes per element.
    pub const fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// The short name (`f64`, `f32`, `f16`, `bf16`).
    pub const fn name(self) -> &'static str {
        match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }

    /// Position in [`DType::ALL`] (for per-dtype tables).
    pub const fn index(self) -> usize {
        match self {
            DType::F64 => 0,
            DType::F32 => 1,
            DType::F16 => 2,
            DType::BF16 => 3,
        }
    }

    /// The result type of a binary op on these two types, as PyTorch
    /// promotes: the wider type; f16 with bf16 gives f32 (neither holds the
    /// other).
    pub const fn promote(self, other: DType) -> DType {
        match (self, other) {
            (DType::F64, _) | (_, DType::F64) => DType::F64,
            (DType::F32, _) | (_, DType::F32) => DType::F32,
            (DType::F16, DType::F16) => DType::F16,
            (DType::BF16, DType::BF16) => DType::BF16,
            _ => DType::F32,
        }
    }

    /// Whether this is a 16-bit type (computed in FP32, stored rounded).
    pub const fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// Machine epsilon: the distance from 1 to the next larger value.
    pub const fn epsilon(self) -> f64 {
        match self {
            DType::F64 => f64::EPSILON,
            DType::F32 => f32::EPSILON as f64,
            DType::F16 => 0.0009765625,
            DType::BF16 => 0.0078125,
        }
    }

    /// Rounds an f64 once to this type and back (exact for `F64`).
    pub fn round(self, x: f64) -> f64 {
        match self {
            DType::F64 => x,
            DType::F32 => x as f32 as f64,
            DType::F16 => f16::from_bits(f64_to_f16_bits(x)).to_f64(),
            DType::BF16 => bf16::from_bits(f64_to_bf16_bits(x)).to_f64(),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// A Rust element type a tensor can hold (sealed: `f64`, `f32`, `f16`, `bf16`).
pub trait Element: sealed::Sealed + Copy + Send + Sync + PartialEq + fmt::Debug + 'static {
    /// The matching [`DType`].
    const DTYPE: DType;
    /// Zero.
    const ZERO: Self;
    /// Widens to f64 (exact).
    fn to_f64(self) -> f64;
    /// Rounds an f64 once to this type (nearest, ties to even).
    fn from_f64(x: f64) -> Self;
    #[doc(hidden)]
    fn buffer_slice(buf: &Buffer) -> Option<&[Self]>;
    #[doc(hidden)]
    fn buffer_slice_mut(buf: &mut Buffer) -> Option<&mut [Self]>;
    #[doc(hidden)]
    fn into_buffer(v: crate::storage::AlignedVec<Self>) -> Buffer;
    #[doc(hidden)]
    fn src(s: &[Self]) -> Src<'_>;
    #[doc(hidden)]
    fn dst(s: &mut [Self]) -> Dst<'_>;
    #[doc(hidden)]
    fn dst_slice<'a, 'b>(d: &'a mut Dst<'b>) -> Option<&'a mut [Self]>;
}

macro_rules! element {
    ($t:ty, $dt:ident, $variant:ident, $zero:expr, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dt;
            const ZERO: Self = $zero;
            #[inline]
            fn to_f64(self) -> f64 {
                $to(self)
            }
            #[inline]
            fn from_f64(x: f64) -> Self {
                $from(x)
            }
            #[inline]
            fn buffer_slice(buf: &Buffer) -> Option<&[Self]> {
                match buf {
                    Buffer::$dt(v) => Some(v.as_slice()),
                    _ => None,
                }
            }
            #[inline]
            fn buffer_slice_mut(buf: &mut Buffer) -> Option<&mut [Self]> {
                match buf {
                    Buffer::$dt(v) => Some(v.as_mut_slice()),
                    _ => None,
                }
            }
            #[inline]
            fn into_buffer(v: crate::storage::AlignedVec<Self>) -> Buffer {
                Buffer::$dt(v)
            }
            #[inline]
            fn src(s: &[Self]) -> Src<'_> {
                Src::$variant(s)
            }
            #[inline]
            fn dst(s: &mut [Self]) -> Dst<'_> {
                Dst::$variant(s)
            }
            #[inline]
            fn dst_slice<'a, 'b>(d: &'a mut Dst<'b>) -> Option<&'a mut [Self]> {
                match d {
                    Dst::$variant(s) => Some(&mut **s),
                    _ => None,
                }
            }
        }
    };
}

element!(f64, F64, F64, 0.0, |x: f64| x, |x: f64| x);
element!(f32, F32, F32, 0.0, |x: f32| x as f64, |x: f64| x as f32);
element!(f16, F16, F16, f16::ZERO, |x: f16| x.to_f64(), |x: f64| f16::from_bits(f64_to_f16_bits(x)));
element!(bf16, BF16, Bf16, bf16::ZERO, |x: bf16| x.to_f64(), |x: f64| bf16::from_bits(f64_to_bf16_bits(x)));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_is_symmetric_and_widening() {
        for a in DType::ALL {
            assert_eq!(a.promote(a), a);
            for b in DType::ALL {
                assert_eq!(a.promote(b), b.promote(a));
                assert!(a.promote(b).size_in_bytes() >= a.size_in_bytes().max(b.size_in_bytes()));
            }
        }
        assert_eq!(DType::F16.promote(DType::BF16), DType::F32);
        assert_eq!(DType::F16.promote(DType::F32), DType::F32);
        assert_eq!(DType::BF16.promote(DType::F64), DType::F64);
    }

    #[test]
    fn rounding_is_direct() {
        let x = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(DType::F16.round(x), 1.0 + 2f64.powi(-10));
        assert_eq!(<f16 as Element>::from_f64(65520.0), f16::INFINITY);
        assert_eq!(DType::BF16.round(1.0 + 2f64.powi(-9)), 1.0);
    }
}
