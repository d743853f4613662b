//! `lstm_cell` and the multi-layer `lstm` over a sequence (PyTorch's
//! `nn.LSTMCell` / `nn.LSTM` math, gate order i, f, g, o):
//!
//! ```text
//! [i f g o] = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh
//! i, f, o = σ(·);  g = tanh(·)
//! c' = f·c + i·g;  h' = o·tanh(c')
//! ```
//!
//! Each layer's input projection runs as one `linear` over all `T·B` rows;
//! the recurrence over the `T` steps is one tape node (`lstm_recurrence`):
//! per step one GEMM for the four gates of the whole batch, the gate
//! nonlinearities and `tanh(c')` through the SIMD elementwise kernels and
//! the cell update in one pass; its backward walks the steps in reverse
//! with one GEMM per step for `dh`, then one GEMM over all steps for
//! `dW_hh`. Layer `l + 1` reads layer `l`'s outputs. Gate activations,
//! cells and `tanh(c)` are kept in the accumulation type (f32; f64 for
//! f64), hidden states in the compute dtype.

use mixprec_tensor::kernels::gemm::Transpose;
use mixprec_tensor::{Element, Tensor, TensorError};

use crate::autocast::cast_inputs_vec;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::elem::{Elem, Real, dispatch, elems, tensor};
use crate::ops::gemm::{Mat, accumulate_product};
use crate::pool;
use crate::util::reshaped;
use crate::var::Var;

/// One LSTM layer's parameters in PyTorch's layout: `w_ih` `[4H, I]`,
/// `w_hh` `[4H, H]`, biases `[4H]` (gate blocks i, f, g, o).
#[derive(Clone, Debug)]
pub struct LstmParams {
    /// Input-to-hidden weights `[4H, I]`.
    pub w_ih: Var,
    /// Hidden-to-hidden weights `[4H, H]`.
    pub w_hh: Var,
    /// Input bias `[4H]`.
    pub b_ih: Option<Var>,
    /// Hidden bias `[4H]`.
    pub b_hh: Option<Var>,
}

impl LstmParams {
    /// The hidden size `H` and input size `I`, after checking the shapes.
    fn sizes(&self, op: &'static str) -> Result<(usize, usize)> {
        let (wi, wh) = (self.w_ih.shape(), self.w_hh.shape());
        if wi.len() != 2 || wh.len() != 2 || wi[0] % 4 != 0 || wh[0] != wi[0] || wh[1].checked_mul(4) != Some(wh[0]) {
            return Err(AutogradError::bad(op, format!("w_ih {wi:?} and w_hh {wh:?} are not [4H, I] and [4H, H]")));
        }
        for b in self.b_ih.iter().chain(&self.b_hh) {
            if b.shape() != [wi[0]] {
                return Err(TensorError::ShapeMismatch { op, lhs: vec![wi[0]], rhs: b.shape().to_vec() }.into());
            }
        }
        Ok((wh[1], wi[1]))
    }

    /// The parameters as a list (for autocast and optimizers).
    pub fn vars(&self) -> Vec<Var> {
        let mut v = vec![self.w_ih.clone(), self.w_hh.clone()];
        v.extend(self.b_ih.iter().cloned());
        v.extend(self.b_hh.iter().cloned());
        v
    }

    fn from_vars(v: &[Var], like: &LstmParams) -> LstmParams {
        let mut it = v.iter().cloned();
        let (w_ih, w_hh) = (it.next().expect("w_ih"), it.next().expect("w_hh"));
        let b_ih = like.b_ih.as_ref().and_then(|_| it.next());
        let b_hh = like.b_hh.as_ref().and_then(|_| it.next());
        LstmParams { w_ih, w_hh, b_ih, b_hh }
    }
}

impl Var {
    /// One LSTM step (PyTorch's `LSTMCell`): `self` is `[B, I]`, `h` and
    /// `c` are `[B, H]`; returns `(h', c')`.
    pub fn lstm_cell(&self, h: &Var, c: &Var, params: &LstmParams) -> Result<(Var, Var)> {
        const OP: &str = "lstm_cell";
        let (hs, is) = params.sizes(OP)?;
        let mut ins = vec![self.clone(), h.clone(), c.clone()];
        ins.extend(params.vars());
        let ins = cast_inputs_vec(OP, &ins)?;
        let p = LstmParams::from_vars(&ins[3..], params);
        let (x, h, c) = (&ins[0], &ins[1], &ins[2]);
        let b = x.shape().first().copied().unwrap_or(0);
        if x.shape() != [b, is] || h.shape() != [b, hs] || c.shape() != [b, hs] {
            return Err(AutogradError::bad(
                OP,
                format!(
                    "x {:?}, h {:?}, c {:?} for input size {is} and hidden size {hs}",
                    x.shape(),
                    h.shape(),
                    c.shape()
                ),
            ));
        }
        let proj = x.linear(&p.w_ih, p.b_ih.as_ref())?.reshape(&[1, b, 4 * hs])?;
        let y = recurrence(&proj, &p.w_hh, p.b_hh.as_ref(), h, c)?;
        Ok((y.narrow(0, 0, 1)?.reshape(&[b, hs])?, y.narrow(0, 1, 1)?.reshape(&[b, hs])?))
    }
}

/// A multi-layer LSTM over a sequence (PyTorch's `nn.LSTM`, not batch-first):
/// `x` is `[T, B, I]`, `state` the initial `(h, c)`, each `[L, B, H]`
/// (zeros if `None`). Returns the last layer's outputs `[T, B, H]` and the
/// final `(h, c)`, each `[L, B, H]`.
pub fn lstm(x: &Var, state: Option<(&Var, &Var)>, layers: &[LstmParams]) -> Result<(Var, Var, Var)> {
    const OP: &str = "lstm";
    let xs = x.shape().to_vec();
    if xs.len() != 3 {
        return Err(TensorError::BadRank { op: OP, expected: "an input of rank 3 ([T, B, I])", shape: xs }.into());
    }
    if layers.is_empty() {
        return Err(AutogradError::bad(OP, "no layers"));
    }
    let (t, b) = (xs[0], xs[1]);
    let mut ins = vec![x.clone()];
    if let Some((h0, c0)) = state {
        ins.push(h0.clone());
        ins.push(c0.clone());
    }
    for l in layers {
        ins.extend(l.vars());
    }
    let ins = cast_inputs_vec(OP, &ins)?;
    let mut at = if state.is_some() { 3 } else { 1 };
    let mut input = ins[0].clone();
    let (mut hn, mut cn) = (Vec::new(), Vec::new());
    for (li, layer) in layers.iter().enumerate() {
        let n = layer.vars().len();
        let p = LstmParams::from_vars(&ins[at..at + n], layer);
        at += n;
        let (hs, is) = p.sizes(OP)?;
        // Rank 3: `x` was checked, later layers read the previous one's `[T, B, H]`.
        if input.shape()[2] != is {
            return Err(TensorError::ShapeMismatch {
                op: OP,
                lhs: input.shape().to_vec(),
                rhs: p.w_ih.shape().to_vec(),
            }
            .into());
        }
        let (mut h, mut c) = match state {
            Some(_) => {
                let (h0, c0) = (&ins[1], &ins[2]);
                if h0.shape() != [layers.len(), b, hs] || c0.shape() != [layers.len(), b, hs] {
                    return Err(AutogradError::bad(
                        OP,
                        format!("initial state {:?}, {:?}, want [{}, {b}, {hs}]", h0.shape(), c0.shape(), layers.len()),
                    ));
                }
                (h0.narrow(0, li, 1)?.reshape(&[b, hs])?, c0.narrow(0, li, 1)?.reshape(&[b, hs])?)
            }
            None => {
                let z = Var::constant(Tensor::zeros(&[b, hs], input.dtype())?);
                (z.clone(), z)
            }
        };
        if t == 0 {
            input = Var::constant(Tensor::zeros(&[0, b, hs], input.dtype())?);
            hn.push(h);
            cn.push(c);
            continue;
        }
        // The input projection of every step at once: one GEMM of T·B rows.
        let proj = input.reshape(&[t * b, is])?.linear(&p.w_ih, p.b_ih.as_ref())?.reshape(&[t, b, 4 * hs])?;
        let y = recurrence(&proj, &p.w_hh, p.b_hh.as_ref(), &h, &c)?;
        (h, c) = (y.narrow(0, t - 1, 1)?.reshape(&[b, hs])?, y.narrow(0, t, 1)?.reshape(&[b, hs])?);
        input = y.narrow(0, 0, t)?;
        hn.push(h);
        cn.push(c);
    }
    let (hr, cr): (Vec<&Var>, Vec<&Var>) = (hn.iter().collect(), cn.iter().collect());
    Ok((input, Var::stack(&hr, 0)?, Var::stack(&cr, 0)?))
}

/// One layer's recurrence as one tape node: from the input projections
/// `proj` `[T, B, 4H]` (`x·W_ihᵀ + b_ih`, `T ≥ 1`), `w_hh`, `b_hh` and the
/// initial `h0`, `c0` `[B, H]`, the tensor `[T + 1, B, H]` holding
/// `h_1 … h_T` then `c_T`.
fn recurrence(proj: &Var, w_hh: &Var, b_hh: Option<&Var>, h0: &Var, c0: &Var) -> Result<Var> {
    const OP: &str = "lstm_recurrence";
    let dtype = proj.dtype();
    let (t, b, g4) = match proj.shape() {
        &[t, b, g4] if t > 0 && g4 % 4 == 0 => (t, b, g4),
        s => return Err(AutogradError::bad(OP, format!("projections of shape {s:?}, want [T ≥ 1, B, 4H]"))),
    };
    let hs = g4 / 4;
    let value = |v: &Var| -> Result<Tensor> { Ok(v.value().to_dtype(dtype)?.contiguous()) };
    let (pv, wv, h0v, c0v) = (value(proj)?, value(w_hh)?, value(h0)?, value(c0)?);
    let bv = b_hh.map(value).transpose()?;
    if wv.shape() != [g4, hs] || h0v.shape() != [b, hs] || c0v.shape() != [b, hs] {
        return Err(AutogradError::bad(
            OP,
            format!(
                "w_hh {:?}, h0 {:?}, c0 {:?} for [T, B, 4H] = {:?}",
                wv.shape(),
                h0v.shape(),
                c0v.shape(),
                [t, b, g4]
            ),
        ));
    }
    let dims = Dims { t, b, hs };
    let fwd = dispatch!(dtype, T => forward::<T>(
        elems(&pv),
        elems(&wv),
        bv.as_ref().map(elems::<T>),
        elems(&h0v),
        elems(&c0v),
        dims,
    ))?;
    let mut inputs = vec![proj, w_hh];
    inputs.extend(b_hh);
    inputs.push(h0);
    inputs.push(c0);
    let Forward { y, saved } = fwd;
    Ok(record(OP, &inputs, y, |_| RecurrenceBackward { saved, w: wv, has_bias: b_hh.is_some(), dims }))
}

#[derive(Clone, Copy, Debug)]
struct Dims {
    t: usize,
    b: usize,
    hs: usize,
}

/// What the backward reads: gate activations `[T, B, 4H]`, cells
/// `c_0 … c_T` `[T + 1, B, H]` and `tanh(c_1 … c_T)` `[T, B, H]` in the
/// accumulation type; the hidden states `h_0 … h_{T−1}` `[T, B, H]` that
/// entered each step, in the compute dtype.
struct Saved {
    act: Tensor,
    cells: Tensor,
    tanh_c: Tensor,
    h_prev: Tensor,
}

struct Forward {
    y: Tensor,
    saved: Saved,
}

fn forward<T: Elem>(proj: &[T], w: &[T], bias: Option<&[T]>, h0: &[T], c0: &[T], d: Dims) -> Result<Forward> {
    let Dims { t, b, hs } = d;
    let (g4, bh) = (4 * hs, b * hs);
    // Every element of these is written below: buffers from the tape's cache.
    let mut y_t = pool::take(&[t + 1, b, hs], T::DTYPE)?;
    let mut act_t = pool::take(&[t, b, g4], T::Acc::DTYPE)?;
    let mut cells_t = pool::take(&[t + 1, b, hs], T::Acc::DTYPE)?;
    let mut tanh_t = pool::take(&[t, b, hs], T::Acc::DTYPE)?;
    let mut h_prev_t = pool::take(&[t * b, hs], T::DTYPE)?;
    let y = y_t.data_mut::<T>()?;
    let act = act_t.data_mut::<T::Acc>()?;
    let cells = cells_t.data_mut::<T::Acc>()?;
    let tanh_c = tanh_t.data_mut::<T::Acc>()?;
    let h_prev = h_prev_t.data_mut::<T>()?;
    for (c, &x) in cells.iter_mut().zip(c0) {
        *c = x.acc();
    }
    h_prev[..bh].copy_from_slice(h0);
    // W_hhᵀ packed once for the T steps.
    let wp = T::pack_b(Transpose::Yes, hs, g4, w, hs);
    for s in 0..t {
        // a_s = proj_s + b_hh + h_{s−1}·W_hhᵀ: the four gates of the batch in one GEMM.
        let a_s = &mut act[s * b * g4..(s + 1) * b * g4];
        for (r, row) in a_s.chunks_exact_mut(g4).enumerate() {
            let p = &proj[(s * b + r) * g4..(s * b + r + 1) * g4];
            match bias {
                Some(bb) => row.iter_mut().zip(p).zip(bb).for_each(|((o, &x), &y)| *o = x.acc() + y.acc()),
                None => row.iter_mut().zip(p).for_each(|(o, &x)| *o = x.acc()),
            }
        }
        T::gemm_packed_b(Transpose::No, b, &h_prev[s * bh..(s + 1) * bh], hs, &wp, T::Acc::of(1.0), a_s);
        // The gate nonlinearities, c_s = f·c_{s−1} + i·g and h_s = o·tanh(c_s) in one pass.
        let (before, after) = cells.split_at_mut((s + 1) * bh);
        T::lstm_cell(
            hs,
            a_s,
            &before[s * bh..],
            &mut after[..bh],
            &mut tanh_c[s * bh..(s + 1) * bh],
            &mut y[s * bh..(s + 1) * bh],
        );
        if s + 1 < t {
            h_prev[(s + 1) * bh..(s + 2) * bh].copy_from_slice(&y[s * bh..(s + 1) * bh]);
        }
    }
    for (o, &c) in y[t * bh..].iter_mut().zip(&cells[t * bh..]) {
        *o = T::from_acc(c);
    }
    Ok(Forward { y: y_t, saved: Saved { act: act_t, cells: cells_t, tanh_c: tanh_t, h_prev: h_prev_t } })
}

/// The gradients of the pre-activations `[T, B, 4H]` (compute dtype), `h0`
/// and `c0` (accumulation type), from `dy` `[T + 1, B, H]`.
fn backward<T: Elem>(dy: &[T], sv: &Saved, w: &[T], d: Dims) -> Result<(Tensor, Tensor, Tensor)> {
    let Dims { t, b, hs } = d;
    let (g4, bh) = (4 * hs, b * hs);
    let (act, cells, tanh_c) = (elems::<T::Acc>(&sv.act), elems::<T::Acc>(&sv.cells), elems::<T::Acc>(&sv.tanh_c));
    let zero = T::Acc::default();
    // Every element is written by the steps below.
    let mut dgates_t = pool::take(&[t, b, g4], T::DTYPE)?;
    let dgates = dgates_t.data_mut::<T>()?;
    let mut dh_next = vec![zero; bh];
    let mut dc: Vec<T::Acc> = dy[t * bh..].iter().map(|x| x.acc()).collect();
    // W_hh packed once for the T steps.
    let wp = T::pack_b(Transpose::No, g4, hs, w, hs);
    for s in (0..t).rev() {
        let dg_s = &mut dgates[s * b * g4..(s + 1) * b * g4];
        T::lstm_cell_grad(
            hs,
            &act[s * b * g4..(s + 1) * b * g4],
            &cells[s * bh..(s + 1) * bh],
            &tanh_c[s * bh..(s + 1) * bh],
            &dy[s * bh..(s + 1) * bh],
            &dh_next,
            &mut dc,
            dg_s,
        );
        // dh_{s−1} = dG_s·W_hh
        T::gemm_packed_b(Transpose::No, b, dg_s, g4, &wp, zero, &mut dh_next);
    }
    Ok((dgates_t, tensor(dh_next, &[b, hs])?, tensor(dc, &[b, hs])?))
}

struct RecurrenceBackward {
    saved: Saved,
    /// `W_hh` `[4H, H]` in the compute dtype.
    w: Tensor,
    has_bias: bool,
    dims: Dims,
}

impl Backward for RecurrenceBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let dtype = self.w.dtype();
        let g = g.to_dtype(dtype)?.contiguous();
        let Dims { t, b, hs } = self.dims;
        let (dgates, dh0, dc0) =
            dispatch!(dtype, T => backward::<T>(elems(&g), &self.saved, elems(&self.w), self.dims))?;
        let dg = reshaped(&dgates, &[t * b, 4 * hs])?;
        if grads.wants(1) {
            // dW_hh = Σ_s dG_sᵀ·h_{s−1}
            accumulate_product(
                grads,
                1,
                &Mat::new(&dg, Transpose::Yes)?,
                &Mat::new(&self.saved.h_prev, Transpose::No)?,
            )?;
        }
        let at = if self.has_bias { 3 } else { 2 };
        if self.has_bias && grads.wants(2) {
            grads.accumulate(2, dg.sum(0, false)?)?;
        }
        grads.accumulate(at, dh0)?;
        grads.accumulate(at + 1, dc0)?;
        grads.accumulate(0, dgates)
    }

    fn saved(&self) -> Vec<&Tensor> {
        let s = &self.saved;
        vec![&s.act, &s.cells, &s.tanh_c, &s.h_prev, &self.w]
    }
}
