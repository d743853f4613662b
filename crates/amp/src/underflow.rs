//! The gradient-underflow counter (the paper's §3.2, Figure 3): of the
//! values that are nonzero in FP32, how many become exactly zero — or
//! subnormal — when cast to f16, optionally after multiplying by a loss
//! scale. Counted on the cast values themselves (the same round-to-nearest-
//! even cast the kernels use), not by comparing with thresholds.

use half::f16;
use mixprec_autograd::tensor::Tensor;

use crate::error::Result;

/// Counts over a set of FP32 values cast to f16.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F16Underflow {
    /// Values seen.
    pub total: u64,
    /// Values nonzero (and not NaN) in FP32.
    pub nonzero: u64,
    /// Of those, values exactly ±0 after the cast.
    pub flushed_to_zero: u64,
    /// Of those, values subnormal after the cast (|x| < 2^-14: reduced precision).
    pub subnormal: u64,
}

impl F16Underflow {
    /// Counts `values × scale` cast to f16 (the product formed in f32, as a
    /// scaled backward pass forms it).
    pub fn count(values: &[f32], scale: f32) -> F16Underflow {
        let mut c = F16Underflow { total: values.len() as u64, ..F16Underflow::default() };
        for &x in values {
            let x = x * scale;
            if x == 0.0 || x.is_nan() {
                continue;
            }
            c.nonzero += 1;
            let h = f16::from_f32(x);
            if h.to_bits() & 0x7fff == 0 {
                c.flushed_to_zero += 1;
            } else if h.to_bits() & 0x7c00 == 0 {
                c.subnormal += 1;
            }
        }
        c
    }

    /// [`F16Underflow::count`] on a tensor of any dtype (widened to f32).
    pub fn count_tensor(t: &Tensor, scale: f32) -> Result<F16Underflow> {
        Ok(F16Underflow::count(&t.to_vec_f32()?, scale))
    }

    /// Adds another count to this one.
    pub fn add(&mut self, other: F16Underflow) {
        self.total += other.total;
        self.nonzero += other.nonzero;
        self.flushed_to_zero += other.flushed_to_zero;
        self.subnormal += other.subnormal;
    }

    /// `flushed_to_zero / nonzero` (0 when nothing is nonzero).
    pub fn zero_fraction(&self) -> f64 {
        if self.nonzero == 0 { 0.0 } else { self.flushed_to_zero as f64 / self.nonzero as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_on_the_cast_values() {
        let tiny = 2f32.powi(-25); // exactly half the smallest subnormal: ties to even, to zero
        let v = [0.0, -0.0, f32::NAN, 1.0, 2f32.powi(-20), tiny, tiny * 1.5, -1e-10, 2f32.powi(-14), f32::INFINITY];
        let c = F16Underflow::count(&v, 1.0);
        assert_eq!(c.total, 10);
        assert_eq!(c.nonzero, 7);
        // 2^-25 → 0, −1e-10 → −0; 1.5·2^-25 rounds up to 2^-24 (subnormal).
        assert_eq!(c.flushed_to_zero, 2);
        assert_eq!(c.subnormal, 2, "2^-20 and 2^-24; 2^-14 is the smallest normal");
        let scaled = F16Underflow::count(&v, 1024.0);
        assert_eq!(scaled.flushed_to_zero, 0);
        assert!((c.zero_fraction() - 2.0 / 7.0).abs() < 1e-12);
    }
}
