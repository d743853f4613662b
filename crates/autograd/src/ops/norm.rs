//! `batch_norm` (PyTorch's `F.batch_norm`, training and eval) and
//! `layer_norm` (PyTorch's `F.layer_norm`). Statistics and every reduction
//! run in FP32 (f64 for f64 inputs), whatever the input's dtype; the output
//! has the input's dtype, rounded once; the input is saved as it is (f16
//! stays f16).
//!
//! With `x̂ = (x − μ)·σ⁻¹`, `σ⁻¹ = 1/√(var + ε)` (biased variance) and
//! `y = γ·x̂ + β`, over the `M` elements that share one `(μ, σ)`:
//! - `dβ = Σ g`, `dγ = Σ g·x̂` (batch norm: per channel; layer norm: per
//!   normalized element, summed over rows);
//! - batch statistics (batch norm in training, layer norm):
//!   `dx = σ⁻¹·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))` with `ĝ = γ·g`;
//! - running statistics (batch norm in eval): `dx = σ⁻¹·γ·g`.
//!
//! In training, batch norm updates the running statistics (if given) as
//! PyTorch: `r_μ ← (1 − m)·r_μ + m·μ`, `r_var ← (1 − m)·r_var + m·var·M/(M − 1)`.

use mixprec_tensor::kernels::{norm as kernels, reduce};
use mixprec_tensor::{DType, Element, Tensor, TensorError};
use rayon::prelude::*;

use crate::autocast::cast_inputs_vec;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::elem::{Elem, Real, dispatch, elems, narrowed, tensor, tensor_from};
use crate::var::Var;

/// Batch norm's running mean and (unbiased) variance, one value per
/// channel (PyTorch's `running_mean` and `running_var` buffers).
#[derive(Clone, Debug)]
pub struct RunningStats {
    /// The running mean, `[C]`.
    pub mean: Tensor,
    /// The running variance, `[C]`.
    pub var: Tensor,
}

impl RunningStats {
    /// Zero mean and unit variance for `channels` channels, in FP32 (PyTorch's initial buffers).
    pub fn new(channels: usize) -> Result<RunningStats> {
        Ok(RunningStats { mean: Tensor::zeros(&[channels], DType::F32)?, var: Tensor::ones(&[channels], DType::F32)? })
    }
}

/// Mean and biased variance of each of `groups` groups made of `outer`
/// runs of `len` elements (run `i` of group `j` at `(i·groups + j)·len`):
/// each run's two-pass moments by the reduction kernels (FP32 for
/// f32/f16/bf16), combined exactly in f64 (`M2 = Σ_runs len·(var_run +
/// (mean_run − mean)²)`, equal runs), so no `E[x²] − E[x]²` cancellation.
fn moments<T: Elem>(x: &[T], outer: usize, groups: usize, len: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = outer * groups;
    let (mut rm, mut rv) = (vec![T::Acc::default(); rows], vec![T::Acc::default(); rows]);
    if rows > 0 {
        reduce::moments_rows(Element::src(x), rows, len, Element::dst(&mut rm[..]), Element::dst(&mut rv[..]));
    }
    let (mut mean, mut var) = (vec![0.0; groups], vec![0.0; groups]);
    for j in 0..groups {
        let run = |i: usize| (Element::to_f64(rm[i * groups + j]), Element::to_f64(rv[i * groups + j]));
        let mu = (0..outer).map(|i| run(i).0).sum::<f64>() / outer as f64;
        let m2 = (0..outer).map(run).map(|(m, v)| v + (m - mu) * (m - mu)).sum::<f64>() / outer as f64;
        // Rounded to the accumulation type, as a reduction in it would be.
        mean[j] = Element::to_f64(T::Acc::of(mu));
        var[j] = Element::to_f64(T::Acc::of(m2));
    }
    (mean, var)
}

/// Batch norm's per-channel `[μ, σ⁻¹, γ, β]` (the forward's constants,
/// which the backward also uses to recompute the ReLU's mask).
fn row_constants(mean: &[f64], istd: &[f64], affine: &Affine) -> Vec<[f64; 4]> {
    (0..mean.len())
        .map(|j| {
            let ga = affine.gamma.as_ref().map_or(1.0, |g| g[j]);
            let be = affine.beta.as_ref().map_or(0.0, |b| b[j]);
            [mean[j], istd[j], ga, be]
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn normalize<T: Elem>(
    x: &[T],
    outer: usize,
    groups: usize,
    len: usize,
    mean: &[f64],
    istd: &[f64],
    affine: &Affine,
    relu: bool,
    y: &mut [T],
) {
    let run = groups * len;
    if run == 0 {
        return;
    }
    if affine.per_group {
        // Batch norm: each image's `[C, len]` block in one kernel call, f16/bf16
        // read and written directly (no widened copy), FP32 in registers.
        let k = row_constants(mean, istd, affine);
        y.par_chunks_mut(run).zip(x.par_chunks(run)).take(outer).for_each(|(yo, xo)| {
            kernels::affine_rows(Element::src(xo), groups, len, &k, relu, Element::dst(yo));
        });
        return;
    }
    let (gamma, beta) = (affine.gamma::<T::Acc>(), affine.beta::<T::Acc>());
    let (one, zero) = (T::Acc::of(1.0), T::Acc::default());
    // f16/bf16: each image widened once, normalized in place run by run
    // ([`affine_in_place`], as `normalize_run` does) and rounded back once.
    let init = Vec::new;
    y.par_chunks_mut(run).zip(x.par_chunks(run)).take(outer).for_each_init(init, |wide, (yo, xo)| {
        if T::NARROW {
            wide.resize(run, zero);
            T::widen(xo, wide);
        }
        for j in 0..groups {
            let at = j * len;
            let (mu, is) = (T::Acc::of(mean[j]), T::Acc::of(istd[j]));
            let (ys, xs) = (&mut yo[at..at + len], &xo[at..at + len]);
            let (gamma, beta) = (gamma.as_deref(), beta.as_deref());
            let ab = |p: usize| (gamma.map_or(one, |g| g[p]), beta.map_or(zero, |b| b[p]));
            if T::NARROW {
                affine_in_place(&mut wide[at..at + len], mu, is, ab, relu);
            } else {
                normalize_run::<T>(xs, ys, mu, is, ab, relu, &mut []);
            }
        }
        if T::NARROW {
            T::narrow(wide, yo);
        }
    });
}

/// One run of [`normalize`]: `y[p] = round((x[p] − μ)·σ⁻¹·γ_p + β_p)` with
/// `(γ_p, β_p) = ab(p)`, computed in the accumulation type and rounded once;
/// with `relu`, values ≤ 0 become +0 before the rounding (NaN kept), which
/// gives the unary ReLU of the rounded value bit for bit (rounding keeps
/// the sign, and ±0 or a value rounding to −0 becomes +0 either way).
/// f16/bf16 runs are widened into `wide` (`x`'s length) and rounded back by
/// the conversion kernels: the same values as converting element by
/// element, without a scalar conversion per element.
#[inline]
fn normalize_run<T: Elem>(
    xs: &[T],
    ys: &mut [T],
    mu: T::Acc,
    is: T::Acc,
    ab: impl Fn(usize) -> (T::Acc, T::Acc),
    relu: bool,
    wide: &mut [T::Acc],
) {
    let zero = T::Acc::default();
    let act = |v: T::Acc| if !relu || v > zero || v.is_nan() { v } else { zero };
    if T::NARROW {
        let wide = &mut wide[..xs.len()];
        T::widen(xs, wide);
        affine_in_place(wide, mu, is, ab, relu);
        T::narrow(wide, ys);
    } else {
        for (p, (yv, &xv)) in ys.iter_mut().zip(xs).enumerate() {
            let (ga, be) = ab(p);
            *yv = T::from_acc(act((xv.acc() - mu) * is * ga + be));
        }
    }
}

/// [`normalize_run`]'s arithmetic on values already widened, in place.
#[inline]
fn affine_in_place<A: Real>(v: &mut [A], mu: A, is: A, ab: impl Fn(usize) -> (A, A), relu: bool) {
    let zero = A::default();
    for (p, x) in v.iter_mut().enumerate() {
        let (ga, be) = ab(p);
        let r = (*x - mu) * is * ga + be;
        *x = if !relu || r > zero || r.is_nan() { r } else { zero };
    }
}

#[derive(Clone, Debug)]
struct Affine {
    gamma: Option<Vec<f64>>,
    beta: Option<Vec<f64>>,
    per_group: bool,
}

impl Affine {
    fn gamma<A: Real>(&self) -> Option<Vec<A>> {
        self.gamma.as_ref().map(|g| g.iter().map(|&v| A::of(v)).collect())
    }
    fn beta<A: Real>(&self) -> Option<Vec<A>> {
        self.beta.as_ref().map(|g| g.iter().map(|&v| A::of(v)).collect())
    }
}

/// `(dx, dγ, dβ)`: dx only if asked for, in the input's dtype `T`.
type NormGrads<A> = (Option<Tensor>, Vec<A>, Vec<A>);

/// `(dx, dγ, dβ)` for [`normalize`] with one `(μ, σ)` and affine pair
/// per group (batch norm); `batch_stats` says whether μ and σ came from
/// `x` (then they have gradients) or were given. Two passes, image by
/// image, each one kernel call over the image's `[C, len]` block: the
/// per-row sums `Σ g` and `Σ g·(x − μ)` (FP32 accumulation), combined over
/// images per group in f64 (`dβ = Σ g`, `dγ = σ⁻¹·Σ g·(x − μ)`), then `dx`
/// with per-group constants, rounded once to `T`. With `relu`
/// (`batch_norm_relu`) both passes mask `g` by `1[y > 0]` as they read it
/// (the unary ReLU's gradient), `y > 0` recomputed from `x` by the
/// forward's exact operations: the output is neither saved nor read.
#[allow(clippy::too_many_arguments)]
fn group_backward<T: Elem>(
    x: &[T],
    g: &[T],
    relu: bool,
    outer: usize,
    groups: usize,
    len: usize,
    mean: &[f64],
    istd: &[f64],
    affine: &Affine,
    batch_stats: bool,
    want: [bool; 3],
) -> Result<NormGrads<T::Acc>> {
    let run = groups * len;
    let fwd = relu.then(|| row_constants(mean, istd, affine));
    let mask = fwd.as_deref();
    let mut sums = vec![[0.0f64; 2]; outer * groups];
    if run > 0 {
        sums.par_chunks_mut(groups).enumerate().for_each(|(i, s)| {
            let at = i * run;
            let (gi, xi) = (Element::src(&g[at..at + run]), Element::src(&x[at..at + run]));
            kernels::grad_sums_rows(gi, mask, xi, groups, len, mean, s);
        });
    }
    let gamma = affine.gamma.as_deref();
    let (mut dgamma, mut dbeta) = (vec![T::Acc::default(); groups], vec![T::Acc::default(); groups]);
    // Per group: a·g + b·(x − μ) + c = σ⁻¹·(γ·g − mean(γ·g) − x̂·mean(γ·g·x̂)).
    let mut coef = vec![[0.0f64; 4]; groups];
    let m = (outer * len) as f64;
    for j in 0..groups {
        let sg: f64 = (0..outer).map(|i| sums[i * groups + j][0]).sum();
        let sgx: f64 = (0..outer).map(|i| sums[i * groups + j][1]).sum();
        let (mu, is) = (mean[j], istd[j]);
        let sgxh = is * sgx;
        dgamma[j] = T::Acc::of(sgxh);
        dbeta[j] = T::Acc::of(sg);
        let ga = gamma.map_or(1.0, |gm| gm[j]);
        coef[j] = if batch_stats {
            let (mg, mgx) = (ga * sg / m, ga * sgxh / m);
            [is * ga, -is * is * mgx, -is * mg, mu]
        } else {
            [is * ga, 0.0, 0.0, mu]
        };
    }
    let dx = if want[0] {
        let mut dxt = crate::pool::take(&[x.len()], T::DTYPE)?;
        if run > 0 {
            dxt.data_mut::<T>()?.par_chunks_mut(run).enumerate().for_each(|(i, d)| {
                let at = i * run;
                let (gi, xi) = (Element::src(&g[at..at + run]), Element::src(&x[at..at + run]));
                kernels::grad_rows(gi, mask, xi, groups, len, &coef, Element::dst(d));
            });
        }
        Some(dxt)
    } else {
        None
    };
    Ok((dx, dgamma, dbeta))
}

#[allow(clippy::too_many_arguments)]
fn norm_backward<T: Elem>(
    x: &[T],
    g: &[T],
    outer: usize,
    groups: usize,
    len: usize,
    mean: &[f64],
    istd: &[f64],
    affine: &Affine,
    batch_stats: bool,
    want: [bool; 3],
) -> Result<NormGrads<T::Acc>> {
    let zero = T::Acc::default();
    let one = T::Acc::of(1.0);
    let gamma = affine.gamma::<T::Acc>();
    let params = if affine.per_group { groups } else { len };
    let mut dgamma = vec![zero; params];
    let mut dbeta = vec![zero; params];
    let mut dx = want[0].then(|| vec![zero; x.len()]);
    let m = T::Acc::of((outer * len) as f64);
    for j in 0..groups {
        let (mu, is) = (T::Acc::of(mean[j]), T::Acc::of(istd[j]));
        let gam = |p: usize| gamma.as_ref().map_or(one, |gm| if affine.per_group { gm[j] } else { gm[p] });
        // Σ ĝ and Σ ĝ·x̂ over the group, with ĝ = γ·g.
        let (mut sg, mut sgx) = (zero, zero);
        for i in 0..outer {
            let at = (i * groups + j) * len;
            for p in 0..len {
                let (gv, xh) = (g[at + p].acc(), (x[at + p].acc() - mu) * is);
                let k = if affine.per_group { j } else { p };
                dgamma[k] += gv * xh;
                dbeta[k] += gv;
                let gh = gv * gam(p);
                sg += gh;
                sgx += gh * xh;
            }
        }
        let Some(dx) = dx.as_mut() else { continue };
        let (mg, mgx) = (sg / m, sgx / m);
        for i in 0..outer {
            let at = (i * groups + j) * len;
            for p in 0..len {
                let gh = g[at + p].acc() * gam(p);
                dx[at + p] = if batch_stats {
                    let xh = (x[at + p].acc() - mu) * is;
                    is * (gh - mg - xh * mgx)
                } else {
                    is * gh
                };
            }
        }
    }
    let dx = dx.map(|v| narrowed::<T>(tensor(v, &[x.len()])?)).transpose()?;
    Ok((dx, dgamma, dbeta))
}

/// The inputs after autocast: `x`, then γ and β where given.
fn cast_affine(op: &'static str, x: &Var, weight: Option<&Var>, bias: Option<&Var>) -> Result<Vec<Var>> {
    let mut ins = vec![x.clone()];
    ins.extend(weight.cloned());
    ins.extend(bias.cloned());
    cast_inputs_vec(op, &ins)
}

fn param_values(v: Option<&Var>, shape: &[usize], op: &'static str) -> Result<Option<Vec<f64>>> {
    let Some(v) = v else { return Ok(None) };
    if v.shape() != shape {
        return Err(TensorError::ShapeMismatch { op, lhs: shape.to_vec(), rhs: v.shape().to_vec() }.into());
    }
    Ok(Some(v.value().to_vec_f64()?))
}

impl Var {
    /// Batch normalization (PyTorch's `F.batch_norm`) of `[N, C, …]` over
    /// every axis but the channel axis 1. In `training`, batch statistics
    /// are used and `running` (if given) is updated with `momentum`; in
    /// eval, `running` is required and used.
    pub fn batch_norm(
        &self,
        weight: Option<&Var>,
        bias: Option<&Var>,
        running: Option<&mut RunningStats>,
        training: bool,
        momentum: f64,
        eps: f64,
    ) -> Result<Var> {
        self.batch_norm_op("batch_norm", false, weight, bias, running, training, momentum, eps)
    }

    /// [`Var::batch_norm`] followed by ReLU, as one op: the same values and
    /// gradients as `batch_norm(…)?.relu()` (bit for bit), without the
    /// ReLU's separate pass over the output and its gradient. The backward
    /// masks the incoming gradient by `1[y > 0]` (the unary ReLU's rule),
    /// `y > 0` recomputed from the saved input and statistics by the
    /// forward's exact operations, so the output is not saved.
    pub fn batch_norm_relu(
        &self,
        weight: Option<&Var>,
        bias: Option<&Var>,
        running: Option<&mut RunningStats>,
        training: bool,
        momentum: f64,
        eps: f64,
    ) -> Result<Var> {
        self.batch_norm_op("batch_norm_relu", true, weight, bias, running, training, momentum, eps)
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_norm_op(
        &self,
        op: &'static str,
        relu: bool,
        weight: Option<&Var>,
        bias: Option<&Var>,
        running: Option<&mut RunningStats>,
        training: bool,
        momentum: f64,
        eps: f64,
    ) -> Result<Var> {
        let ins = cast_affine(op, self, weight, bias)?;
        let x = &ins[0];
        let xs = x.shape().to_vec();
        if xs.len() < 2 {
            return Err(TensorError::BadRank { op, expected: "an input of rank ≥ 2 ([N, C, …])", shape: xs }.into());
        }
        let (n, c) = (xs[0], xs[1]);
        // Overflow only when N or C is 0: nothing is normalised.
        let len = mixprec_tensor::layout::checked_numel(&xs[2..]).unwrap_or(0);
        if eps.is_nan() || eps <= 0.0 {
            return Err(AutogradError::bad(op, format!("eps must be positive, got {eps}")));
        }
        if !(0.0..=1.0).contains(&momentum) {
            return Err(AutogradError::bad(op, format!("momentum must be in [0, 1], got {momentum}")));
        }
        let (wi, bi) = (weight.map(|_| 1), bias.map(|_| 1 + usize::from(weight.is_some())));
        let affine = Affine {
            gamma: param_values(wi.map(|i| &ins[i]), &[c], op)?,
            beta: param_values(bi.map(|i| &ins[i]), &[c], op)?,
            per_group: true,
        };
        let xv = x.value().contiguous();
        let (mean, istd) = if training {
            if n * len < 2 {
                return Err(AutogradError::bad(
                    op,
                    format!("training needs more than one value per channel, input {xs:?}"),
                ));
            }
            let (mean, var) = dispatch!(xv.dtype(), T => moments::<T>(elems(&xv), n, c, len));
            if let Some(r) = running {
                if r.mean.shape() != [c] || r.var.shape() != [c] {
                    return Err(TensorError::ShapeMismatch { op, lhs: vec![c], rhs: r.mean.shape().to_vec() }.into());
                }
                let m = (n * len) as f64;
                let upd = |old: &Tensor, new: &[f64], unbias: f64| -> Result<Tensor> {
                    let o = old.to_vec_f64()?;
                    let v: Vec<f64> =
                        o.iter().zip(new).map(|(&a, &b)| (1.0 - momentum) * a + momentum * b * unbias).collect();
                    Ok(Tensor::from_vec(v, &[c])?.to_dtype(old.dtype())?)
                };
                r.mean = upd(&r.mean, &mean, 1.0)?;
                r.var = upd(&r.var, &var, m / (m - 1.0))?;
            }
            (mean, var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect::<Vec<f64>>())
        } else {
            let Some(r) = running else {
                return Err(AutogradError::bad(op, "eval mode needs the running statistics"));
            };
            if r.mean.shape() != [c] || r.var.shape() != [c] {
                return Err(TensorError::ShapeMismatch { op, lhs: vec![c], rhs: r.mean.shape().to_vec() }.into());
            }
            let istd = r.var.to_vec_f64()?.iter().map(|&v| 1.0 / (v + eps).sqrt()).collect();
            (r.mean.to_vec_f64()?, istd)
        };
        let y = dispatch!(xv.dtype(), T => tensor_from::<T>(&xs, |y| normalize::<T>(elems(&xv), n, c, len, &mean, &istd, &affine, relu, y))?);
        let inputs: Vec<&Var> = ins.iter().collect();
        Ok(record(op, &inputs, y, |_| NormBackward {
            relu,
            x: xv,
            mean,
            istd,
            affine,
            outer: n,
            groups: c,
            len,
            batch_stats: training,
        }))
    }

    /// Layer normalization (PyTorch's `F.layer_norm`) over the trailing
    /// axes `normalized_shape`; `weight` and `bias` have that shape.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f64,
    ) -> Result<Var> {
        const OP: &str = "layer_norm";
        let ins = cast_affine(OP, self, weight, bias)?;
        let x = &ins[0];
        let xs = x.shape().to_vec();
        let k = normalized_shape.len();
        if k == 0 || xs.len() < k || xs[xs.len() - k..] != *normalized_shape {
            return Err(TensorError::ShapeMismatch { op: OP, lhs: xs, rhs: normalized_shape.to_vec() }.into());
        }
        if eps.is_nan() || eps <= 0.0 {
            return Err(AutogradError::bad(OP, format!("eps must be positive, got {eps}")));
        }
        // The trailing axes of x: overflow only when x is empty.
        let len = mixprec_tensor::layout::checked_numel(normalized_shape).unwrap_or(0);
        let rows = x.numel() / len.max(1);
        let (wi, bi) = (weight.map(|_| 1), bias.map(|_| 1 + usize::from(weight.is_some())));
        let affine = Affine {
            gamma: param_values(wi.map(|i| &ins[i]), normalized_shape, OP)?,
            beta: param_values(bi.map(|i| &ins[i]), normalized_shape, OP)?,
            per_group: false,
        };
        let xv = x.value().contiguous();
        let (mean, var) = dispatch!(xv.dtype(), T => moments::<T>(elems(&xv), 1, rows, len));
        let istd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let y = dispatch!(xv.dtype(), T => tensor_from::<T>(&xs, |y| normalize::<T>(elems(&xv), 1, rows, len, &mean, &istd, &affine, false, y))?);
        let inputs: Vec<&Var> = ins.iter().collect();
        Ok(record(OP, &inputs, y, |_| NormBackward {
            relu: false,
            x: xv,
            mean,
            istd,
            affine,
            outer: 1,
            groups: rows,
            len,
            batch_stats: true,
        }))
    }
}

struct NormBackward {
    /// `batch_norm_relu`: the gradient is masked by the ReLU's.
    relu: bool,
    x: Tensor,
    mean: Vec<f64>,
    istd: Vec<f64>,
    affine: Affine,
    outer: usize,
    groups: usize,
    len: usize,
    batch_stats: bool,
}

impl Backward for NormBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let dtype = self.x.dtype();
        let g = g.to_dtype(dtype)?.contiguous();
        let wi = self.affine.gamma.as_ref().map(|_| 1);
        let bi = self.affine.beta.as_ref().map(|_| 1 + usize::from(wi.is_some()));
        let want = [grads.wants(0), wi.is_some_and(|i| grads.wants(i)), bi.is_some_and(|i| grads.wants(i))];
        let (dx, dgamma, dbeta) = dispatch!(dtype, T => {
            let (x, g) = (elems::<T>(&self.x), elems::<T>(&g));
            let (outer, groups, len) = (self.outer, self.groups, self.len);
            let (dx, dg, db) = if self.affine.per_group {
                group_backward::<T>(x, g, self.relu, outer, groups, len, &self.mean, &self.istd, &self.affine, self.batch_stats, want)?
            } else {
                norm_backward::<T>(x, g, outer, groups, len, &self.mean, &self.istd, &self.affine, self.batch_stats, want)?
            };
            let pshape = |i: usize| grads.shape(i).to_vec();
            (
                dx.map(|t| t.reshape(self.x.shape())).transpose()?,
                wi.filter(|_| want[1]).map(|i| tensor(dg, &pshape(i))).transpose()?,
                bi.filter(|_| want[2]).map(|i| tensor(db, &pshape(i))).transpose()?,
            )
        });
        if let Some(dx) = dx {
            grads.accumulate(0, dx)?;
        }
        if let (Some(i), Some(d)) = (wi, dgamma) {
            grads.accumulate(i, d)?;
        }
        if let (Some(i), Some(d)) = (bi, dbeta) {
            grads.accumulate(i, d)?;
        }
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        vec![&self.x]
    }
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};
    use mixprec_tensor::random::Generator;

    use super::{Elem, normalize_run};

    /// Random values of every magnitude with ±0, subnormals, values near
    /// the f16 maximum, ±Inf and NaN mixed in, rounded to `T`.
    fn values<T: Elem<Acc = f32>>(n: usize, seed: u64) -> Vec<T> {
        let mut rng = Generator::new(seed);
        let mut v = vec![0.0f32; n];
        rng.fill_normal_f32(&mut v, 0.0, 1.0);
        let special = [0.0, -0.0, 3.0e-8, -6.0e-6, 65504.0, -65000.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        for (i, x) in v.iter_mut().enumerate() {
            *x = match i % 7 {
                3 => special[(i / 7) % special.len()],
                5 => *x * 1e3,
                6 => *x * 1e-5,
                _ => *x,
            };
        }
        v.into_iter().map(T::from_acc).collect()
    }

    fn same<T: Elem<Acc = f32>>(got: &[T], want: &[T], what: &str) {
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let (g, w) = (g.acc(), w.acc());
            assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{what}[{i}]: {g} vs {w}");
        }
    }

    /// The widened runs give exactly the element-by-element results
    /// (every length through the conversion kernels' tails).
    fn runs_match_elementwise<T: Elem<Acc = f32>>() {
        for len in [0, 1, 7, 8, 15, 16, 17, 33, 196, 785] {
            let x = values::<T>(len, len as u64);
            let (mu, is) = (0.3f32, 1.7f32);
            let ab = |p: usize| (0.5 + p as f32 * 0.01, -0.25);
            let mut wide = vec![0.0f32; 2 * len];
            let mut y = vec![T::from_acc(9.0); len];
            normalize_run::<T>(&x, &mut y, mu, is, ab, false, &mut wide);
            let want: Vec<T> =
                x.iter().enumerate().map(|(p, &v)| T::from_acc((v.acc() - mu) * is * ab(p).0 + ab(p).1)).collect();
            same(&y, &want, "normalize");
        }
    }

    #[test]
    fn f16_runs_match_elementwise() {
        runs_match_elementwise::<f16>();
    }

    #[test]
    fn bf16_runs_match_elementwise() {
        runs_match_elementwise::<bf16>();
    }
}
