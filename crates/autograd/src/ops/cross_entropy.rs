//! `cross_entropy` (fused log-softmax + negative log-likelihood, with label
//! smoothing) and `nll_loss`, on class indices. Logits are `[N, C]`,
//! `[N, C, d₁, …]` (class axis 1, as PyTorch) or `[C]`; targets hold one
//! class index per position (`N·d₁·…` of them, row-major).
//!
//! Computed in FP32 whatever the logits' dtype (f64 for f64): the logits are
//! widened, log-softmax and the loss are never rounded to f16/bf16; the loss
//! is rounded once to the logits' dtype.
//!
//! Cross-entropy with smoothing ε over C classes, `q = (1−ε)·onehot(y) + ε/C`:
//! `ℓᵢ = −Σ_c q_c · log pᵢ_c`, and `dxᵢ_c = gᵢ·s·(pᵢ_c − q_c)` where
//! `p = softmax(x)` and `s = 1/#{non-ignored}` for the mean, else 1.
//! NLL on log-probabilities `x`: `ℓᵢ = −xᵢ_{yᵢ}`, `dxᵢ_c = −gᵢ·s·1[c = yᵢ]`.
//! Ignored positions (`ignore_index`) contribute 0 to the loss and get a
//! zero gradient.

use mixprec_tensor::{DType, Tensor};

use crate::autocast::cast_inputs;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::Reduction;
use crate::pool;
use crate::util::{dst, src};
use crate::var::Var;
use mixprec_tensor::kernels::loss as kloss;

/// Options of [`Var::cross_entropy`] and [`Var::nll_loss`] (PyTorch's).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrossEntropy {
    /// Mean (over non-ignored positions), sum, or one loss per position.
    pub reduction: Reduction,
    /// ε in `[0, 1]`: the target distribution is `(1−ε)·onehot + ε/C`
    /// (cross-entropy only).
    pub label_smoothing: f64,
    /// Positions whose target is this index are left out.
    pub ignore_index: Option<usize>,
}

/// Logits viewed as `rows × classes` with the class axis last.
struct Rows {
    /// `[rows, C]`, contiguous, in the logits' dtype.
    x: Tensor,
    rows: usize,
    classes: usize,
    /// The per-position shape (the loss's shape for `Reduction::None`).
    positions: Vec<usize>,
}

fn as_rows(op: &'static str, logits: &Tensor, targets: &[usize], opts: &CrossEntropy) -> Result<Rows> {
    let shape = logits.shape();
    let (x, positions) = match shape.len() {
        0 => return Err(AutogradError::bad(op, "logits must have a class axis (shape [C], [N, C] or [N, C, d…])")),
        1 => (logits.unsqueeze(0)?, vec![]),
        2 => (logits.clone(), vec![shape[0]]),
        r => {
            // [N, C, d…] → [N, d…, C]
            let mut perm: Vec<usize> = vec![0];
            perm.extend(2..r);
            perm.push(1);
            let mut pos = vec![shape[0]];
            pos.extend_from_slice(&shape[2..]);
            (logits.permute(&perm)?, pos)
        }
    };
    let classes = *x.shape().last().unwrap_or(&0);
    // An overflowing count (possible only with no classes) matches no target list.
    let rows = mixprec_tensor::layout::checked_numel(&positions).unwrap_or(usize::MAX);
    if targets.len() != rows {
        return Err(AutogradError::bad(
            op,
            format!("{} targets for logits of shape {shape:?} ({rows} positions)", targets.len()),
        ));
    }
    for (i, &t) in targets.iter().enumerate() {
        if t >= classes && Some(t) != opts.ignore_index {
            return Err(AutogradError::BadTarget { op, position: i, target: t as i64, classes });
        }
    }
    if !(0.0..=1.0).contains(&opts.label_smoothing) {
        return Err(AutogradError::bad(op, format!("label_smoothing {} is outside [0, 1]", opts.label_smoothing)));
    }
    let x = x.contiguous().reshape(&[rows, classes])?;
    Ok(Rows { x, rows, classes, positions })
}

/// A `[rows, C]` gradient back to the logits' shape and dtype.
fn from_rows(d: Vec<f64>, rows: &RowsMeta) -> Result<Tensor> {
    to_shape(Tensor::from_vec(d, &[rows.rows, rows.classes])?.to_dtype(rows.dtype)?, rows)
}

/// A `[rows, C]` tensor back to the logits' shape (class axis 1).
fn to_shape(t: Tensor, rows: &RowsMeta) -> Result<Tensor> {
    let r = rows.shape.len();
    Ok(match r {
        1 => t.reshape(&rows.shape)?,
        2 => t,
        _ => {
            let mut moved = vec![rows.shape[0]];
            moved.extend_from_slice(&rows.shape[2..]);
            moved.push(rows.shape[1]);
            let mut perm = vec![0, r - 1];
            perm.extend(1..r - 1);
            t.reshape(&moved)?.permute(&perm)?
        }
    })
}

/// What the backward needs to rebuild the logits' layout.
struct RowsMeta {
    rows: usize,
    classes: usize,
    shape: Vec<usize>,
    dtype: DType,
}

/// The per-position losses reduced as asked, in `dtype`; and the scale `s`.
fn reduce(
    losses: Vec<f64>,
    positions: &[usize],
    counted: usize,
    reduction: Reduction,
    dtype: DType,
) -> Result<(Tensor, f64)> {
    Ok(match reduction {
        Reduction::None => (Tensor::from_vec(losses, positions)?.to_dtype(dtype)?, 1.0),
        Reduction::Sum => (Tensor::scalar(losses.iter().sum(), dtype), 1.0),
        Reduction::Mean => {
            let n = counted as f64;
            (Tensor::scalar(losses.iter().sum::<f64>() / n, dtype), 1.0 / n)
        }
    })
}

impl Var {
    /// Cross-entropy between these logits and class-index `targets`
    /// (PyTorch's `F.cross_entropy`), computed in FP32.
    pub fn cross_entropy(&self, targets: &[usize], opts: CrossEntropy) -> Result<Var> {
        let [x] = cast_inputs("cross_entropy", [self])?;
        let xv = x.value();
        let r = as_rows("cross_entropy", &xv, targets, &opts)?;
        let (rows, c, eps) = (r.rows, r.classes, opts.label_smoothing);
        if c == 0 && rows > 0 {
            return Err(AutogradError::bad("cross_entropy", "logits with no classes"));
        }
        let ignored = |t: usize| Some(t) == opts.ignore_index;
        // Ignored positions run as class 0 and are zeroed after.
        let kept: Vec<usize> = targets.iter().map(|&t| if ignored(t) { 0 } else { t }).collect();
        let acc = if xv.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
        let (mut loss, mut lse) = (Tensor::zeros(&[rows], acc)?, Tensor::zeros(&[rows], acc)?);
        let Some(xs) = src(&r.x) else { unreachable!("as_rows gives a contiguous tensor") };
        kloss::cross_entropy(xs, rows, c, &kept, dst(&mut loss)?, dst(&mut lse)?);
        let mut losses = loss.to_vec_f64()?;
        if eps > 0.0 {
            // −Σ_c q_c·log p_c = (1−ε)·(lse − x_t) + ε·(lse − mean_c x_c)
            let (xf, lf) = (r.x.to_vec_f64()?, lse.to_vec_f64()?);
            for (i, l) in losses.iter_mut().enumerate() {
                let mean = xf[i * c..(i + 1) * c].iter().sum::<f64>() / c as f64;
                *l = (1.0 - eps) * *l + eps * (lf[i] - mean);
            }
        }
        let mut counted = 0usize;
        for (l, &t) in losses.iter_mut().zip(targets) {
            if ignored(t) {
                *l = 0.0;
            } else {
                counted += 1;
            }
        }
        let (y, scale) = reduce(losses, &r.positions, counted, opts.reduction, xv.dtype())?;
        let meta = RowsMeta { rows, classes: c, shape: xv.shape().to_vec(), dtype: xv.dtype() };
        Ok(record("cross_entropy", &[&x], y, |_| CrossEntropyBackward {
            logits: r.x,
            lse,
            targets: kept,
            ignored: targets.iter().map(|&t| ignored(t)).collect(),
            eps,
            scale,
            meta,
        }))
    }

    /// Negative log-likelihood of class-index `targets` under these
    /// log-probabilities (PyTorch's `F.nll_loss`; label smoothing is not
    /// used).
    pub fn nll_loss(&self, targets: &[usize], opts: CrossEntropy) -> Result<Var> {
        let [x] = cast_inputs("nll_loss", [self])?;
        let xv = x.value();
        let r = as_rows("nll_loss", &xv, targets, &opts)?;
        let lp = r.x.to_vec_f64()?;
        let c = r.classes;
        let mut losses = vec![0.0f64; r.rows];
        let mut counted = 0usize;
        for (i, (&t, loss)) in targets.iter().zip(losses.iter_mut()).enumerate() {
            if Some(t) != opts.ignore_index {
                counted += 1;
                *loss = -lp[i * c + t];
            }
        }
        let (y, scale) = reduce(losses, &r.positions, counted, opts.reduction, xv.dtype())?;
        let meta = RowsMeta { rows: r.rows, classes: c, shape: xv.shape().to_vec(), dtype: xv.dtype() };
        Ok(record("nll_loss", &[&x], y, |_| NllBackward {
            targets: targets.to_vec(),
            ignore: opts.ignore_index,
            scale,
            meta,
        }))
    }
}

/// The per-position output gradient `gᵢ·s`, as f64.
fn row_scales(g: &Tensor, rows: usize, scale: f64) -> Result<Vec<f64>> {
    let g = g.to_vec_f64()?;
    Ok(if g.len() == 1 { vec![g[0] * scale; rows] } else { g.into_iter().map(|v| v * scale).collect() })
}

struct CrossEntropyBackward {
    /// `[rows, C]` logits in their dtype.
    logits: Tensor,
    /// Per-row log-sum-exp (f32, f64 for f64 logits).
    lse: Tensor,
    /// Targets, ignored positions replaced by class 0.
    targets: Vec<usize>,
    ignored: Vec<bool>,
    eps: f64,
    scale: f64,
    meta: RowsMeta,
}

impl Backward for CrossEntropyBackward {
    // dxᵢ_c = gᵢ·s·(pᵢ_c − (1−ε)·1[c = yᵢ] − ε/C): the kernel's
    // gᵢ·s·(pᵢ_c − 1[c = yᵢ]) plus gᵢ·s·ε·(1[c = yᵢ] − 1/C) with smoothing.
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let m = &self.meta;
        let (rows, c) = (m.rows, m.classes);
        let mut gs = row_scales(g, rows, self.scale)?;
        for (gi, &ign) in gs.iter_mut().zip(&self.ignored) {
            if ign {
                *gi = 0.0;
            }
        }
        let acc = self.lse.dtype();
        let gt = Tensor::from_vec(gs.clone(), &[rows])?.to_dtype(acc)?;
        // With smoothing the correction is added in the accumulation type
        // and the sum rounded once to the logits' dtype.
        let out_dtype = if self.eps > 0.0 { acc } else { m.dtype };
        let mut d = pool::take(&[rows, c], out_dtype)?;
        let (Some(xs), Some(ls), Some(gsrc)) = (src(&self.logits), src(&self.lse), src(&gt)) else {
            unreachable!("saved tensors are contiguous")
        };
        kloss::cross_entropy_grad(xs, rows, c, &self.targets, ls, gsrc, dst(&mut d)?);
        let any_ignored = self.ignored.iter().any(|&i| i);
        if self.eps > 0.0 || any_ignored {
            let mut dv = d.to_vec_f64()?;
            for (i, (&t, &gi)) in self.targets.iter().zip(&gs).enumerate() {
                let row = &mut dv[i * c..(i + 1) * c];
                if self.ignored[i] {
                    // Zero even where the logits are not finite (0·NaN).
                    row.fill(0.0);
                    continue;
                }
                if self.eps > 0.0 {
                    let smooth = gi * self.eps / c as f64;
                    for v in row.iter_mut() {
                        *v -= smooth;
                    }
                    // `as_rows` checked every kept target against C.
                    row[t] += gi * self.eps;
                }
            }
            return grads.accumulate(0, from_rows(dv, m)?);
        }
        grads.accumulate(0, to_shape(d, m)?)
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.logits, &self.lse]
    }
}

struct NllBackward {
    targets: Vec<usize>,
    ignore: Option<usize>,
    scale: f64,
    meta: RowsMeta,
}

impl Backward for NllBackward {
    // dxᵢ_c = −gᵢ·s·1[c = yᵢ]
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let m = &self.meta;
        let gs = row_scales(g, m.rows, self.scale)?;
        let mut d = vec![0.0f64; m.rows * m.classes];
        for (i, (&t, &gi)) in self.targets.iter().zip(&gs).enumerate() {
            if Some(t) != self.ignore {
                d[i * m.classes + t] = -gi;
            }
        }
        grads.accumulate(0, from_rows(d, m)?)
    }
}
