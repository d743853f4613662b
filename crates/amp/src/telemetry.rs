//! Underflow telemetry (the data behind the paper's figures 2b and 3): for
//! activation gradients and weight gradients of one step computed in FP32,
//! the fraction of nonzero values that an f16 cast at the current loss
//! scale flushes to zero or leaves subnormal ([`F16Underflow`], counted on
//! the cast values), and log2 histograms of their magnitudes.
//!
//! [`measure_underflow`] costs an extra FP32 forward and backward pass (the
//! step's own gradients are left as they were); `sample_stride > 1` counts
//! every n-th value only, a cheap mode for logging every N steps.

use std::cell::RefCell;
use std::rc::Rc;

use mixprec_autograd::Var;
use mixprec_autograd::scan::{GradSite, observe_grads};
use mixprec_autograd::tensor::{DType, Tensor};

use crate::error::Result;
use crate::precision::{Precision, autocast};
use crate::underflow::F16Underflow;

/// Counts of `floor(log2 |x|)` over a set of values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log2Histogram {
    /// `counts[i]` holds the values with `floor(log2 |x|) == MIN_EXP + i`;
    /// the first and last buckets also hold everything beyond them.
    pub counts: Vec<u64>,
    /// Values exactly ±0.
    pub zeros: u64,
    /// Inf and NaN.
    pub non_finite: u64,
}

impl Default for Log2Histogram {
    fn default() -> Self {
        Log2Histogram { counts: vec![0; (Self::MAX_EXP - Self::MIN_EXP + 1) as usize], zeros: 0, non_finite: 0 }
    }
}

impl Log2Histogram {
    /// The exponent of the first bucket (2^-80: far below f16's 2^-24).
    pub const MIN_EXP: i32 = -80;
    /// The exponent of the last bucket (2^20: above f16's largest, 65504).
    pub const MAX_EXP: i32 = 20;

    /// Adds one value.
    pub fn add(&mut self, x: f32) {
        if x == 0.0 {
            self.zeros += 1;
        } else if !x.is_finite() {
            self.non_finite += 1;
        } else {
            let e = floor_log2(x).clamp(Self::MIN_EXP, Self::MAX_EXP);
            self.counts[(e - Self::MIN_EXP) as usize] += 1;
        }
    }

    /// `(exponent, count)` of the non-empty buckets.
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (Self::MIN_EXP + i as i32, *c))
    }

    /// All values counted (zeros and non-finite included).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.zeros + self.non_finite
    }

    /// Nonzero finite values with `|x| < 2^exp` (whole buckets).
    pub fn below(&self, exp: i32) -> u64 {
        self.buckets().filter(|(e, _)| *e < exp).map(|(_, c)| c).sum()
    }
}

/// `floor(log2 |x|)` of a finite nonzero f32, read from its bits (exact).
fn floor_log2(x: f32) -> i32 {
    let bits = x.to_bits() & 0x7fff_ffff;
    let field = (bits >> 23) as i32;
    if field == 0 { (31 - bits.leading_zeros() as i32) - 149 } else { field - 127 }
}

/// What [`measure_underflow`] saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnderflowReport {
    /// The loss scale the f16 casts were counted at.
    pub scale: f32,
    /// Every n-th value was counted (1: all).
    pub sample_stride: usize,
    /// Activation gradients (every tape node's output gradient but the
    /// loss's own seed), times `scale`, cast to f16.
    pub activations: F16Underflow,
    /// Weight gradients, times `scale`, cast to f16.
    pub weights: F16Underflow,
    /// log2 histogram of the unscaled activation gradients.
    pub activation_log2: Log2Histogram,
    /// log2 histogram of the unscaled weight gradients.
    pub weight_log2: Log2Histogram,
}

#[derive(Default)]
struct Accum {
    acts: F16Underflow,
    act_hist: Log2Histogram,
    weights: F16Underflow,
    weight_hist: Log2Histogram,
}

fn count_into(counts: &mut F16Underflow, hist: &mut Log2Histogram, t: &Tensor, scale: f32, stride: usize) {
    let widened;
    let v: &[f32] = match t.as_slice::<f32>() {
        Some(s) => s,
        None => {
            widened = t.to_vec_f32().unwrap_or_default();
            &widened
        }
    };
    let mut sampled = Vec::with_capacity(v.len() / stride + 1);
    for &x in v.iter().step_by(stride) {
        hist.add(x);
        sampled.push(x);
    }
    counts.add(F16Underflow::count(&sampled, scale));
}

/// Runs `loss` (the step's forward pass, returning the unscaled loss) in
/// FP32 — every op, whatever the parameters' dtype — and backward from it,
/// counting every activation gradient and every parameter's gradient (of
/// `params`) times `scale` after an f16 cast; every `sample_stride`-th
/// value only when it is above 1. The parameters' gradients are restored
/// to what they were before the call. A parameter stored in f16/bf16 is
/// counted through the FP32 gradient of its cast.
pub fn measure_underflow(
    params: &[Var],
    scale: f32,
    sample_stride: usize,
    loss: impl FnOnce() -> Result<Var>,
) -> Result<UnderflowReport> {
    let stride = sample_stride.max(1);
    let saved: Vec<Option<Tensor>> = params.iter().map(Var::grad).collect();
    for p in params {
        if let Some(p) = p.param() {
            p.set_grad(None)?;
        }
    }
    let acc = Rc::new(RefCell::new(Accum::default()));
    let seen = Rc::clone(&acc);
    // Backward reaches the loss first; its gradient, the seed dL/dL = 1, is
    // not an activation gradient.
    let mut root = true;
    let observer = move |site: GradSite, g: &Tensor| {
        if std::mem::take(&mut root) {
            return;
        }
        let mut a = seen.borrow_mut();
        let a = &mut *a;
        if site.op == "cast" && site.param_input {
            count_into(&mut a.weights, &mut a.weight_hist, g, scale, stride);
        } else {
            count_into(&mut a.acts, &mut a.act_hist, g, scale, stride);
        }
    };
    let run = observe_grads(observer, || -> Result<()> {
        let l = autocast(Precision::F32, loss)?;
        Ok(l.backward()?)
    });
    // FP32 parameters received their gradients directly (no cast on the way).
    let mut fp32_grads = Vec::new();
    for p in params {
        if p.dtype() == DType::F32
            && let Some(g) = p.grad()
        {
            fp32_grads.push(g);
        }
    }
    for (p, g) in params.iter().zip(saved) {
        if let Some(p) = p.param() {
            p.set_grad(g)?;
        }
    }
    run?;
    let mut a = acc.borrow_mut();
    let a = &mut *a;
    for g in &fp32_grads {
        count_into(&mut a.weights, &mut a.weight_hist, g, scale, stride);
    }
    Ok(UnderflowReport {
        scale,
        sample_stride: stride,
        activations: a.acts,
        weights: a.weights,
        activation_log2: std::mem::take(&mut a.act_hist),
        weight_log2: std::mem::take(&mut a.weight_hist),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_buckets_are_exact_at_powers_of_two() {
        for e in [-149, -140, -127, -126, -24, -14, 0, 15, 100] {
            // powi would round 2^-149 through 1/2^149 = 1/Inf: build subnormals from bits.
            let x = if e >= -126 { 2f32.powi(e) } else { f32::from_bits(1 << (e + 149)) };
            assert_eq!(floor_log2(x), e, "2^{e}");
            if e > -149 {
                assert_eq!(floor_log2(-x * 1.5), e, "-1.5·2^{e}");
            }
            if e > -149 {
                assert_eq!(floor_log2(f32::from_bits(x.to_bits() - 1)), e - 1, "just below 2^{e}");
            }
        }
        let mut h = Log2Histogram::default();
        for x in [0.0, -0.0, f32::NAN, f32::INFINITY, 1.0, 1.9, 2f32.powi(-100), 1e30] {
            h.add(x);
        }
        assert_eq!((h.zeros, h.non_finite, h.total()), (2, 2, 8));
        assert_eq!(h.buckets().collect::<Vec<_>>(), vec![(-80, 1), (0, 2), (20, 1)]);
        assert_eq!(h.below(0), 1);
    }
}
