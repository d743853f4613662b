//! Reference optimizer steps: one element at a time, the exact FP32
//! operation sequence every SIMD path also follows (see `crate::optim`), so
//! all paths agree bit for bit.

use half::{bf16, f16};

use super::convert::{f32_to_bf16_bits, f32_to_f16_bits};
use crate::optim::{AdamStep, Sgd};
use crate::slice::Dst;

/// Writes `w` rounded to the copy's type at `i`.
#[inline]
fn put(copy: &mut Option<Dst<'_>>, i: usize, w: f32) {
    match copy {
        None => {}
        Some(Dst::F16(c)) => c[i] = f16::from_bits(f32_to_f16_bits(w)),
        Some(Dst::Bf16(c)) => c[i] = bf16::from_bits(f32_to_bf16_bits(w)),
        Some(Dst::F32(c)) => c[i] = w,
        Some(Dst::F64(c)) => c[i] = w as f64,
    }
}

/// Reference of [`crate::optim::sgd`].
pub fn sgd_scalar(
    p: &Sgd,
    w: &mut [f32],
    g: &[f32],
    mut buf: Option<&mut [f32]>,
    first: bool,
    mut copy: Option<Dst<'_>>,
) {
    assert_eq!(w.len(), g.len(), "optim::sgd: weights and gradients lengths differ");
    let keep = (1.0 - p.dampening as f64) as f32;
    for i in 0..w.len() {
        let mut d = if p.weight_decay != 0.0 { p.weight_decay.mul_add(w[i], g[i]) } else { g[i] };
        if p.momentum != 0.0 {
            let b = &mut buf.as_deref_mut().expect("optim::sgd: momentum needs a buffer")[i];
            *b = if first { d } else { keep.mul_add(d, p.momentum * *b) };
            d = if p.nesterov { p.momentum.mul_add(*b, d) } else { *b };
        }
        w[i] = (-p.lr).mul_add(d, w[i]);
        put(&mut copy, i, w[i]);
    }
}

/// Reference of [`crate::optim::adam`].
pub fn adam_scalar(st: &AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], mut copy: Option<Dst<'_>>) {
    let n = w.len();
    assert!(g.len() == n && m.len() == n && v.len() == n, "optim::adam: weights, gradients and moments lengths differ");
    // PyTorch's lerp: `m + c·(g − m)` for a weight below 0.5, else `g − (1 − c)·(g − m)`.
    let (small, big) = (st.one_minus_beta1.abs() < 0.5, st.one_minus_beta1 - 1.0);
    for i in 0..n {
        let mut wi = w[i];
        if st.decay != 1.0 {
            wi *= st.decay;
        }
        let gi = if st.l2 != 0.0 { st.l2.mul_add(wi, g[i]) } else { g[i] };
        m[i] = if small { st.one_minus_beta1.mul_add(gi - m[i], m[i]) } else { big.mul_add(gi - m[i], gi) };
        v[i] = (st.one_minus_beta2 * gi).mul_add(gi, st.beta2 * v[i]);
        let den = v[i].sqrt() / st.bc2_sqrt + st.eps;
        wi += (-st.step_size * m[i]) / den;
        w[i] = wi;
        put(&mut copy, i, wi);
    }
}
