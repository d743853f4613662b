//! Batch-norm passes over a `rows × n` block whose rows each have their own
//! constants (one row = one channel of one image): the normalisation with
//! its affine map and optional ReLU, and the backward's two passes (the
//! per-row sums of the masked gradient, then the input gradient; the ReLU's
//! mask is recomputed from the input, so its output need not be kept). Each
//! reads f16/bf16 straight from memory and computes in FP32 registers (f64
//! when an operand is f64), one rounding per output element.
//!
//! The elementwise passes use no fused multiply-add, so every path gives
//! the scalar reference's bits; the sums accumulate in FP32 with a fixed
//! per-path order (bound in `docs/numerics.md`). Special values follow
//! IEEE arithmetic: NaN propagates (the ReLU keeps it), ±Inf propagates
//! (`0·Inf` is NaN), subnormals are kept, and the ReLU maps −0 to +0.

use crate::dispatch::{active, kernel_table};
use crate::slice::{Dst, Src};

kernel_table! {
    /// The batch-norm kernels of one ISA path.
    pub struct Table {
        /// `y = act(((x − μ)·σ⁻¹)·γ + β)` per row ([`affine_rows`]).
        affine_rows: fn(Src<'_>, usize, usize, &[[f64; 4]], bool, Dst<'_>),
        /// `[Σ m, Σ m·(x − μ)]` per row, `m` the masked gradient ([`grad_sums_rows`]).
        grad_sums_rows: fn(Src<'_>, Option<&[[f64; 4]]>, Src<'_>, usize, usize, &[f64], &mut [[f64; 2]]),
        /// `dx = ((a·m) + (b·(x − μ))) + c` per row ([`grad_rows`]).
        grad_rows: fn(Src<'_>, Option<&[[f64; 4]]>, Src<'_>, usize, usize, &[[f64; 4]], Dst<'_>),
    }
}

/// The operand checks of every pass: each `(name, length)` of `blocks`
/// must be `rows × n`, each `(what it holds, length)` of `per_row` (`None`
/// where the operand is absent) `rows`.
fn check(what: &str, rows: usize, n: usize, blocks: &[(&str, usize)], per_row: &[(&str, Option<usize>)]) {
    for &(name, len) in blocks {
        assert_eq!(len, rows * n, "norm::{what}: {name} holds {len} elements, a {rows}×{n} block needs {}", rows * n);
    }
    for &(name, len) in per_row {
        if let Some(len) = len {
            assert_eq!(len, rows, "norm::{what}: {len} {name} for {rows} rows");
        }
    }
}

/// `y[r, p] = act(((x[r, p] − μ_r)·σ⁻¹_r)·γ_r + β_r)` with `[μ, σ⁻¹, γ, β] =
/// k[r]`, each constant rounded to the compute type (FP32 unless `x` or `y`
/// is f64), four roundings in that order and one to `y`'s type. With
/// `relu`, values ≤ 0 (−0 included) become +0 before the final rounding
/// and NaN stays NaN: the unary ReLU of the rounded value, bit for bit.
///
/// # Panics
/// If `x` or `y` does not hold `rows × n` elements or `k` does not hold `rows`.
pub fn affine_rows(x: Src<'_>, rows: usize, n: usize, k: &[[f64; 4]], relu: bool, y: Dst<'_>) {
    check("affine_rows", rows, n, &[("x", x.len()), ("y", y.len())], &[("row constants", Some(k.len()))]);
    (active().norm.affine_rows.f)(x, rows, n, k, relu, y)
}

/// Per row `r`: `sums[r] = [Σ m, Σ m·(x − μ_r)]` over the row, where `m =
/// g` or, with `relu = Some(k)` (the forward's row constants), `m = g`
/// where the ReLU's output `y` is positive and +0 elsewhere (its gradient).
/// `y` is not read but recomputed from `x`: [`affine_rows`]'s value `t`
/// with `k[r]`, the same operations, so `y > 0` exactly when `t` is above
/// the largest value that rounds to +0 in `x`'s type (0 for f32 and f64,
/// 2^-25 for f16, 2^-134 for bf16); a NaN `t` masks. FP32 accumulation (f64
/// when an operand is f64) in an order fixed per path, `x − μ_r` rounded
/// once to it, returned exactly as f64. Lanes past the row add nothing (so
/// `μ = ±Inf` gives the sums of the row's own terms).
///
/// # Panics
/// If `g` or `x` does not hold `rows × n` elements or `mu`, `sums` and
/// `relu` do not hold `rows`.
pub fn grad_sums_rows(
    g: Src<'_>,
    relu: Option<&[[f64; 4]]>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    mu: &[f64],
    sums: &mut [[f64; 2]],
) {
    let per_row = [("forward constants", relu.map(<[_]>::len)), ("means", Some(mu.len())), ("sums", Some(sums.len()))];
    check("grad_sums_rows", rows, n, &[("g", g.len()), ("x", x.len())], &per_row);
    (active().norm.grad_sums_rows.f)(g, relu, x, rows, n, mu, sums)
}

/// `dx[r, p] = ((a·m) + (b·(x − μ))) + c` with `[a, b, c, μ] = k[r]` rounded
/// to the compute type, `m` the gradient masked as in [`grad_sums_rows`]:
/// f32 operations in that order (no fused multiply-add) and one rounding
/// to `dx`'s type.
///
/// # Panics
/// If `g`, `x` or `dx` does not hold `rows × n` elements or `k` and `relu`
/// do not hold `rows`.
pub fn grad_rows(
    g: Src<'_>,
    relu: Option<&[[f64; 4]]>,
    x: Src<'_>,
    rows: usize,
    n: usize,
    k: &[[f64; 4]],
    dx: Dst<'_>,
) {
    let per_row = [("forward constants", relu.map(<[_]>::len)), ("row constants", Some(k.len()))];
    check("grad_rows", rows, n, &[("g", g.len()), ("x", x.len()), ("dx", dx.len())], &per_row);
    (active().norm.grad_rows.f)(g, relu, x, rows, n, k, dx)
}
