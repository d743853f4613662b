//! Loss kernels computed in FP32 (f64 when the logits are f64): softmax
//! cross-entropy from logits and class indices, forward and backward.
//!
//! The forward pass returns each row's log-sum-exp next to its loss so the
//! backward pass needs one pass over the logits, not three. Bounds and
//! special values: `docs/numerics.md`.

use crate::dispatch::{active, kernel_table};
use crate::slice::{Dst, Src};

kernel_table! {
    /// The loss kernels of one ISA path.
    pub struct Table {
        /// Per-row cross-entropy and log-sum-exp.
        cross_entropy: fn(Src<'_>, usize, usize, &[usize], Dst<'_>, Dst<'_>),
        /// Gradient of the per-row losses with respect to the logits.
        cross_entropy_grad: fn(Src<'_>, usize, usize, &[usize], Src<'_>, Src<'_>, Dst<'_>),
    }
}

fn check(what: &str, logits: &Src<'_>, rows: usize, n: usize, targets: &[usize]) {
    assert_eq!(
        logits.len(),
        rows * n,
        "loss::{what}: logits hold {} elements, a {rows}×{n} block needs {}",
        logits.len(),
        rows * n
    );
    assert_eq!(targets.len(), rows, "loss::{what}: {} targets for {rows} rows", targets.len());
    if let Some((i, &t)) = targets.iter().enumerate().find(|&(_, &t)| t >= n) {
        panic!("loss::{what}: target {t} of row {i} is not a class index below {n}");
    }
}

/// Softmax cross-entropy of each row of `rows × n` logits against a class
/// index: `lse[i] = m + ln Σ_j e^(x[i,j] − m)` (`m` the row max) and
/// `loss[i] = lse[i] − x[i, targets[i]]`, each rounded once to its type.
///
/// A NaN or +Inf logit makes the row's loss and lse NaN; a −Inf target
/// logit gives a +Inf loss; other −Inf logits contribute nothing.
///
/// # Panics
/// If `logits` does not hold `rows × n` elements, `targets`, `loss` or
/// `lse` do not hold `rows`, or a target is not below `n`.
pub fn cross_entropy(logits: Src<'_>, rows: usize, n: usize, targets: &[usize], loss: Dst<'_>, lse: Dst<'_>) {
    check("cross_entropy", &logits, rows, n, targets);
    assert!(loss.len() == rows && lse.len() == rows, "loss::cross_entropy: loss and lse must hold {rows} elements");
    (active().loss.cross_entropy.f)(logits, rows, n, targets, loss, lse)
}

/// The gradient of `Σ_i g[i]·loss[i]` with respect to the logits:
/// `grad[i, j] = g[i]·(p[i,j] − [j = targets[i]])` with `p[i,j] =
/// e^(x[i,j] − lse[i])`; the target's entry is `−g[i]·Σ_{j≠t} p[i,j]`, which
/// keeps its relative accuracy when `p[i,t]` is close to 1. `g` holds one
/// value per row, or one value for every row (a mean's `1/rows`).
///
/// # Panics
/// If `logits` or `grad` does not hold `rows × n` elements, `targets` or
/// `lse` do not hold `rows`, `g` holds neither 1 nor `rows` values, or a
/// target is not below `n`.
pub fn cross_entropy_grad(
    logits: Src<'_>,
    rows: usize,
    n: usize,
    targets: &[usize],
    lse: Src<'_>,
    g: Src<'_>,
    grad: Dst<'_>,
) {
    check("cross_entropy_grad", &logits, rows, n, targets);
    assert_eq!(lse.len(), rows, "loss::cross_entropy_grad: lse holds {} elements, needs {rows}", lse.len());
    assert!(g.len() == 1 || g.len() == rows, "loss::cross_entropy_grad: g holds {} values, needs 1 or {rows}", g.len());
    assert_eq!(
        grad.len(),
        rows * n,
        "loss::cross_entropy_grad: grad holds {} elements, needs {}",
        grad.len(),
        rows * n
    );
    (active().loss.cross_entropy_grad.f)(logits, rows, n, targets, lse, g, grad)
}
