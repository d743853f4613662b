//! Optimizer update kernels on FP32 master weights, with PyTorch's
//! semantics: SGD (momentum, dampening, Nesterov, L2 weight decay) and
//! Adam/AdamW. Each optionally writes the f16/bf16 working copy of the
//! updated weights in the same pass (the paper's step 10). The `*_scaled`
//! forms read a loss-scaled f32/f16/bf16 gradient and unscale it as they
//! load it, so master weights need no FP32 gradient buffer.
//!
//! Every path evaluates the same sequence of FP32 operations (FMA where
//! written below) with the same scalar constants, so all paths give
//! bit-identical weights, moments and copies. NaN and ±Inf propagate as
//! IEEE arithmetic says (the loss scaler skips steps whose gradients hold
//! them before any update runs).

use crate::dispatch::{active, kernel_table};
use crate::slice::{Dst, Src};

/// SGD hyper-parameters (PyTorch's `torch.optim.SGD`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0: plain SGD, no buffer).
    pub momentum: f32,
    /// Dampening of the momentum update.
    pub dampening: f32,
    /// L2 penalty added to the gradient: `d = g + weight_decay·w`.
    pub weight_decay: f32,
    /// Nesterov momentum: step along `d + momentum·buf`.
    pub nesterov: bool,
}

/// Adam/AdamW hyper-parameters (PyTorch's `torch.optim.Adam`/`AdamW`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// Weight decay: L2 (added to the gradient) for Adam, decoupled
    /// (`w ← w·(1 − lr·weight_decay)`) for AdamW.
    pub weight_decay: f32,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
}

/// The scalars of one Adam step, computed once in f64 and rounded to f32
/// (as PyTorch passes its Python-float scalars to its kernels) so every path
/// uses the same ones: `step_size = lr/(1 − β1^t)`, `bc2_sqrt = √(1 − β2^t)`,
/// `decay = 1 − lr·weight_decay` (AdamW) and the complements `1 − β1`, `1 − β2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// `lr/(1 − β1^t)`.
    pub step_size: f32,
    /// `√(1 − β2^t)`: the second moment's root is divided by it.
    pub bc2_sqrt: f32,
    /// `1 − lr·weight_decay` for AdamW, 1 otherwise.
    pub decay: f32,
    /// `weight_decay` for Adam's L2 term, 0 otherwise.
    pub l2: f32,
    /// `1 − β1`.
    pub one_minus_beta1: f32,
    /// `1 − β2`.
    pub one_minus_beta2: f32,
    /// `β2`.
    pub beta2: f32,
    /// `ε`.
    pub eps: f32,
}

impl Adam {
    /// The scalars of step `t` (1 for the first step), from the f32
    /// hyper-parameters; [`AdamStep::new`] takes them in f64.
    ///
    /// # Panics
    /// If `t` is 0.
    pub fn step(&self, t: u64) -> AdamStep {
        let w = |x: f32| x as f64;
        AdamStep::new(w(self.lr), w(self.beta1), w(self.beta2), w(self.eps), w(self.weight_decay), self.decoupled, t)
    }
}

impl AdamStep {
    /// The scalars of step `t` (1 for the first step) from f64
    /// hyper-parameters, each derived in f64 and rounded once to f32, as
    /// PyTorch's `torch.optim.Adam`/`AdamW` derive them from Python floats.
    ///
    /// # Panics
    /// If `t` is 0.
    pub fn new(lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, decoupled: bool, t: u64) -> AdamStep {
        assert!(t >= 1, "optim::Adam::step: steps count from 1");
        let t = t.min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - beta1.powi(t);
        let bc2 = 1.0 - beta2.powi(t);
        AdamStep {
            step_size: (lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            decay: if decoupled { (1.0 - lr * weight_decay) as f32 } else { 1.0 },
            l2: if decoupled { 0.0 } else { weight_decay as f32 },
            one_minus_beta1: (1.0 - beta1) as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            beta2: beta2 as f32,
            eps: eps as f32,
        }
    }
}

kernel_table! {
    /// The optimizer kernels of one ISA path.
    pub struct Table {
        /// One SGD step.
        sgd: fn(&Sgd, &mut [f32], &[f32], Option<&mut [f32]>, bool, Option<Dst<'_>>),
        /// One Adam/AdamW step.
        adam: fn(&AdamStep, &mut [f32], &[f32], &mut [f32], &mut [f32], Option<Dst<'_>>),
        /// One SGD step from a scaled gradient of any type.
        sgd_scaled: fn(&Sgd, &mut [f32], Src<'_>, f32, Option<&mut [f32]>, bool, Option<Dst<'_>>),
        /// One Adam/AdamW step from a scaled gradient of any type.
        adam_scaled: fn(&AdamStep, &mut [f32], Src<'_>, f32, &mut [f32], &mut [f32], Option<Dst<'_>>),
    }
}

pub(crate) fn check_copy(what: &str, n: usize, copy: &Option<Dst<'_>>) {
    if let Some(c) = copy {
        assert_eq!(c.len(), n, "optim::{what}: the working copy holds {} elements, the weights {n}", c.len());
    }
}

/// One SGD step on `w` from gradient `g`, in the operations and order of
/// PyTorch's `torch.optim.SGD` on AVX2/AVX-512 (`add(alpha)` is an FMA,
/// `mul_` rounds): `d = fma(wd, w, g)`; with momentum, `buf = d` on the
/// first step, else `buf = fma(keep, d, momentum·buf)` with `keep = 1 −
/// dampening` computed in f64 and rounded once, then `d = fma(momentum,
/// buf, d)` (Nesterov) or `d = buf`; finally `w = fma(−lr, d, w)`. With
/// `copy`, also writes the updated weights rounded to its type.
///
/// # Panics
/// If the lengths differ, or `buf` is `None` while `momentum != 0`.
pub fn sgd(p: &Sgd, w: &mut [f32], g: &[f32], buf: Option<&mut [f32]>, first_step: bool, copy: Option<Dst<'_>>) {
    assert_eq!(w.len(), g.len(), "optim::sgd: weights and gradients lengths differ");
    if p.momentum != 0.0 {
        let b = buf.as_ref().expect("optim::sgd: momentum needs a buffer");
        assert_eq!(b.len(), w.len(), "optim::sgd: momentum buffer and weights lengths differ");
    }
    check_copy("sgd", w.len(), &copy);
    (active().optim.sgd.f)(p, w, g, buf, first_step, copy)
}

/// One Adam/AdamW step (scalars from [`AdamStep::new`]), in the operations
/// and order of PyTorch's `torch.optim.Adam`/`AdamW` (single-tensor path)
/// on AVX2/AVX-512: `w = decay·w` (AdamW), `g' = fma(l2, w, g)` (Adam),
/// `m = fma(1 − β1, g' − m, m)` (`lerp`; when `1 − β1 ≥ 0.5`, `fma(−β1,
/// g' − m, g')`), `v = fma((1 − β2)·g', g', β2·v)` (`mul_`, `addcmul_`),
/// `den = √v / bc2_sqrt + ε`, `w = w + (−step_size·m)/den` (`addcdiv_`),
/// each operation rounded to f32. With `copy`, also writes the updated
/// weights rounded to its type. The square root is correctly rounded;
/// PyTorch's CPU `sqrt` (MKL) is not always, so its results can differ
/// from these where its root is one ulp off.
///
/// # Panics
/// If the lengths differ.
pub fn adam(st: &AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], copy: Option<Dst<'_>>) {
    let n = w.len();
    assert!(g.len() == n && m.len() == n && v.len() == n, "optim::adam: weights, gradients and moments lengths differ");
    check_copy("adam", n, &copy);
    (active().optim.adam.f)(st, w, g, m, v, copy)
}

/// [`sgd`] from the gradient `f32(g[i]) · inv_scale` (widened exactly, one
/// rounding: the value `amp::unscale_and_check_f16` or `unscale_and_check`
/// would have written), read from `g` in the same pass: the loss scaler's
/// unscale folded into the update. Bit-identical to unscaling into an f32
/// buffer and calling [`sgd`] on it.
///
/// # Panics
/// If the lengths differ, `g` is f64, or `buf` is `None` while `momentum != 0`.
pub fn sgd_scaled(
    p: &Sgd,
    w: &mut [f32],
    g: Src<'_>,
    inv_scale: f32,
    buf: Option<&mut [f32]>,
    first_step: bool,
    copy: Option<Dst<'_>>,
) {
    assert_eq!(w.len(), g.len(), "optim::sgd_scaled: weights and gradients lengths differ");
    assert!(!matches!(g, Src::F64(_)), "optim::sgd_scaled: f64 gradients are not supported");
    if p.momentum != 0.0 {
        let b = buf.as_ref().expect("optim::sgd_scaled: momentum needs a buffer");
        assert_eq!(b.len(), w.len(), "optim::sgd_scaled: momentum buffer and weights lengths differ");
    }
    check_copy("sgd_scaled", w.len(), &copy);
    (active().optim.sgd_scaled.f)(p, w, g, inv_scale, buf, first_step, copy)
}

/// [`adam`] from the gradient `f32(g[i]) · inv_scale`, as [`sgd_scaled`]:
/// bit-identical to unscaling into an f32 buffer and calling [`adam`].
///
/// # Panics
/// If the lengths differ or `g` is f64.
pub fn adam_scaled(
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
    assert!(!matches!(g, Src::F64(_)), "optim::adam_scaled: f64 gradients are not supported");
    check_copy("adam_scaled", n, &copy);
    (active().optim.adam_scaled.f)(st, w, g, inv_scale, m, v, copy)
}
