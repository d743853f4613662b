//! Reference optimizer steps: one element at a time, the exact FP32
//! operation sequence every SIMD path also follows (see `crate::optim`), so
//! all paths agree bit for bit. The `*_scaled` references widen each
//! gradient element and multiply it by the inverse scale (one rounding).

use half::{bf16, f16};

use super::convert::{bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits};
use crate::optim::{AdamStep, Sgd};
use crate::slice::{Dst, Src};

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
pub fn sgd_scalar(p: &Sgd, w: &mut [f32], g: &[f32], buf: Option<&mut [f32]>, first: bool, copy: Option<Dst<'_>>) {
    assert_eq!(w.len(), g.len(), "optim::sgd: weights and gradients lengths differ");
    sgd_ref(p, w, |i| g[i], buf, first, copy)
}

/// Reference of [`crate::optim::sgd_scaled`].
pub fn sgd_scaled_scalar(
    p: &Sgd,
    w: &mut [f32],
    g: Src<'_>,
    inv_scale: f32,
    buf: Option<&mut [f32]>,
    first: bool,
    copy: Option<Dst<'_>>,
) {
    assert_eq!(w.len(), g.len(), "optim::sgd_scaled: weights and gradients lengths differ");
    sgd_ref(p, w, |i| grad_at(g, i) * inv_scale, buf, first, copy)
}

/// Element `i` of a gradient, widened exactly to f32.
///
/// # Panics
/// If the gradient is f64 (optimizer gradients are f32, f16 or bf16).
#[inline]
fn grad_at(g: Src<'_>, i: usize) -> f32 {
    match g {
        Src::F32(s) => s[i],
        Src::F16(s) => f16_bits_to_f32(s[i].to_bits()),
        Src::Bf16(s) => bf16_bits_to_f32(s[i].to_bits()),
        Src::F64(_) => panic!("optim: f64 gradients are not supported (f32, f16 or bf16)"),
    }
}

fn sgd_ref(
    p: &Sgd,
    w: &mut [f32],
    g: impl Fn(usize) -> f32,
    mut buf: Option<&mut [f32]>,
    first: bool,
    mut copy: Option<Dst<'_>>,
) {
    let keep = (1.0 - p.dampening as f64) as f32;
    for (i, wi) in w.iter_mut().enumerate() {
        let gi = g(i);
        let mut d = if p.weight_decay != 0.0 { p.weight_decay.mul_add(*wi, gi) } else { gi };
        if p.momentum != 0.0 {
            let b = &mut buf.as_deref_mut().expect("optim::sgd: momentum needs a buffer")[i];
            *b = if first { d } else { keep.mul_add(d, p.momentum * *b) };
            d = if p.nesterov { p.momentum.mul_add(*b, d) } else { *b };
        }
        *wi = (-p.lr).mul_add(d, *wi);
        put(&mut copy, i, *wi);
    }
}

/// Reference of [`crate::optim::adam`].
pub fn adam_scalar(st: &AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], copy: Option<Dst<'_>>) {
    let n = w.len();
    assert!(g.len() == n && m.len() == n && v.len() == n, "optim::adam: weights, gradients and moments lengths differ");
    adam_ref(st, w, |i| g[i], m, v, copy)
}

/// Reference of [`crate::optim::adam_scaled`].
pub fn adam_scaled_scalar(
    st: &AdamStep,
    w: &mut [f32],
    g: Src<'_>,
    inv_scale: f32,
    m: &mut [f32],
    v: &mut [f32],
    copy: Option<Dst<'_>>,
) {
    let n = w.len();
    assert!(
        g.len() == n && m.len() == n && v.len() == n,
        "optim::adam_scaled: weights, gradients and moments lengths differ"
    );
    adam_ref(st, w, |i| grad_at(g, i) * inv_scale, m, v, copy)
}

fn adam_ref(
    st: &AdamStep,
    w: &mut [f32],
    g: impl Fn(usize) -> f32,
    m: &mut [f32],
    v: &mut [f32],
    mut copy: Option<Dst<'_>>,
) {
    let n = w.len();
    // PyTorch's lerp: `m + c·(g − m)` for a weight below 0.5, else `g − (1 − c)·(g − m)`.
    let (small, big) = (st.one_minus_beta1.abs() < 0.5, st.one_minus_beta1 - 1.0);
    for i in 0..n {
        let mut wi = w[i];
        if st.decay != 1.0 {
            wi *= st.decay;
        }
        let gi = if st.l2 != 0.0 { st.l2.mul_add(wi, g(i)) } else { g(i) };
        m[i] = if small { st.one_minus_beta1.mul_add(gi - m[i], m[i]) } else { big.mul_add(gi - m[i], gi) };
        v[i] = (st.one_minus_beta2 * gi).mul_add(gi, st.beta2 * v[i]);
        let den = v[i].sqrt() / st.bc2_sqrt + st.eps;
        wi += (-st.step_size * m[i]) / den;
        w[i] = wi;
        put(&mut copy, i, wi);
    }
}
