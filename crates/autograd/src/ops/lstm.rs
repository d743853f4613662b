//! `lstm_cell` and the multi-layer `lstm` over a sequence (PyTorch's
//! `nn.LSTMCell` / `nn.LSTM` math, gate order i, f, g, o):
//!
//! ```text
//! [i f g o] = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh
//! i, f, o = σ(·);  g = tanh(·)
//! c' = f·c + i·g;  h' = o·tanh(c')
//! ```
//!
//! Each layer is one tape node (`lstm_recurrence`): its pre-activations
//! start as `b_ih + b_hh` (summed once, in the accumulation type), the input
//! projection of all `T·B` rows adds `x·W_ihᵀ` in one GEMM, and each step
//! adds `h·W_hhᵀ` for the whole batch in one GEMM before the gate
//! nonlinearities, `tanh(c')` and the cell update run in one fused pass. Its
//! backward walks the steps in reverse with one GEMM per step for `dh`, then
//! one GEMM each over all steps for `dX`, `dW_ih` and `dW_hh`, and one
//! column sum for both biases (their gradients are the same sum). Layer
//! `l + 1` reads layer `l`'s outputs. `lstm_embedded` takes the first
//! layer's input as rows of an embedding table: its input projection is
//! the table's (`V` rows, not `T·B`), gathered per position, and its
//! gradient is summed back per table row. Gate activations, cells and
//! `tanh(c)` are kept in the accumulation type (f32; f64 for f64), hidden
//! states in the compute dtype.

use mixprec_tensor::kernels::gemm::Transpose;
use mixprec_tensor::{Element, Tensor, TensorError};

use crate::autocast::cast_inputs_vec;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::elem::{Elem, Real, dispatch, elems, scatter_rows, tensor};
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
        let y = layer(Source::X(&x.reshape(&[1, b, is])?), &p, h, c)?;
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
    run(OP, None, x, [xs[0], xs[1]], state, layers)
}

/// [`lstm`] over the rows of an embedding table: the same function as
/// `lstm(&emb.embedding(indices, &index_shape)?, state, layers)` for `emb`
/// `[V, I]` and `T·B` indices (row-major `[T, B]`), with the first layer's
/// input projection taken once per table row (`emb·W_ihᵀ`, `V` rows instead
/// of `T·B`) and gathered per position; its gradient is summed back per
/// table row, so the input projection's `T·B`-row products (forward, `dX`
/// and `dW_ih`) become `V`-row ones.
pub fn lstm_embedded(
    emb: &Var,
    indices: &[usize],
    index_shape: [usize; 2],
    state: Option<(&Var, &Var)>,
    layers: &[LstmParams],
) -> Result<(Var, Var, Var)> {
    const OP: &str = "lstm_embedded";
    let es = emb.shape();
    if es.len() != 2 {
        return Err(TensorError::BadRank { op: OP, expected: "a table of rank 2 ([V, I])", shape: es.to_vec() }.into());
    }
    let [t, b] = index_shape;
    if t.checked_mul(b) != Some(indices.len()) {
        return Err(AutogradError::bad(
            OP,
            format!("{} indices do not fill the index shape {index_shape:?}", indices.len()),
        ));
    }
    if let Some((pos, &bad)) = indices.iter().enumerate().find(|&(_, &i)| i >= es[0]) {
        return Err(AutogradError::bad(OP, format!("index {bad} at position {pos} is outside 0..{}", es[0])));
    }
    run(OP, Some(indices), emb, index_shape, state, layers)
}

/// The layers over `x` `[T, B, I]`, or with `rows`, over the rows of the
/// table `x` `[V, I]` at those checked indices.
fn run(
    op: &'static str,
    rows: Option<&[usize]>,
    x: &Var,
    [t, b]: [usize; 2],
    state: Option<(&Var, &Var)>,
    layers: &[LstmParams],
) -> Result<(Var, Var, Var)> {
    if layers.is_empty() {
        return Err(AutogradError::bad(op, "no layers"));
    }
    let mut ins = vec![x.clone()];
    if let Some((h0, c0)) = state {
        ins.push(h0.clone());
        ins.push(c0.clone());
    }
    for l in layers {
        ins.extend(l.vars());
    }
    // Cast as the LSTM it is: one autocast rule for both entry points.
    let ins = cast_inputs_vec("lstm", &ins)?;
    let mut at = if state.is_some() { 3 } else { 1 };
    let mut input = ins[0].clone();
    let (mut hn, mut cn) = (Vec::new(), Vec::new());
    for (li, layer_params) in layers.iter().enumerate() {
        let n = layer_params.vars().len();
        let p = LstmParams::from_vars(&ins[at..at + n], layer_params);
        at += n;
        let (hs, is) = p.sizes(op)?;
        // `x` was checked ([T, B, I], or a [V, I] table); later layers read the previous one's `[T, B, H]`.
        if input.shape().last() != Some(&is) {
            return Err(
                TensorError::ShapeMismatch { op, lhs: input.shape().to_vec(), rhs: p.w_ih.shape().to_vec() }.into()
            );
        }
        let (mut h, mut c) = match state {
            Some(_) => {
                let (h0, c0) = (&ins[1], &ins[2]);
                if h0.shape() != [layers.len(), b, hs] || c0.shape() != [layers.len(), b, hs] {
                    return Err(AutogradError::bad(
                        op,
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
        let y = match rows {
            Some(indices) if li == 0 => {
                // x·W_ihᵀ once per table row.
                let table = input.linear(&p.w_ih, None)?;
                layer(Source::Rows { table: &table, indices, t, b }, &p, &h, &c)?
            }
            _ => layer(Source::X(&input), &p, &h, &c)?,
        };
        (h, c) = (y.narrow(0, t - 1, 1)?.reshape(&[b, hs])?, y.narrow(0, t, 1)?.reshape(&[b, hs])?);
        input = y.narrow(0, 0, t)?;
        hn.push(h);
        cn.push(c);
    }
    let (hr, cr): (Vec<&Var>, Vec<&Var>) = (hn.iter().collect(), cn.iter().collect());
    Ok((input, Var::stack(&hr, 0)?, Var::stack(&cr, 0)?))
}

/// A layer's input: `x` `[T, B, I]`, or the rows of its input projection
/// `table` `[V, 4H]` (`x·W_ihᵀ` per table row) at `T·B` checked indices.
enum Source<'a> {
    X(&'a Var),
    Rows { table: &'a Var, indices: &'a [usize], t: usize, b: usize },
}

/// The same, as the forward reads it.
enum In<'s, T> {
    X { x: &'s [T], w_ih: &'s [T] },
    Rows { table: &'s [T], indices: &'s [usize] },
}

/// One layer as one tape node: from its input (`T ≥ 1` steps), parameters
/// and initial `h0`, `c0` `[B, H]` (all of one dtype), the tensor
/// `[T + 1, B, H]` holding `h_1 … h_T` then `c_T`. Inputs: `x` (0), `w_ih`
/// (1), `w_hh` (2), the biases, `h0`, `c0`; from a table: the table (0),
/// `w_hh` (1), the biases, `h0`, `c0`.
fn layer(src: Source<'_>, p: &LstmParams, h0: &Var, c0: &Var) -> Result<Var> {
    const OP: &str = "lstm_recurrence";
    let first = match &src {
        Source::X(x) => *x,
        Source::Rows { table, .. } => *table,
    };
    let dtype = first.dtype();
    let value = |v: &Var| -> Result<Tensor> { Ok(v.value().to_dtype(dtype)?.contiguous()) };
    let (hs, is) = p.sizes(OP)?;
    let biases: Vec<&Var> = p.b_ih.iter().chain(&p.b_hh).collect();
    let (fv, wh, h0v, c0v) = (value(first)?, value(&p.w_hh)?, value(h0)?, value(c0)?);
    let bv = biases.iter().map(|b| value(b)).collect::<Result<Vec<_>>>()?;
    let (t, b, indices, wi) = match src {
        Source::X(_) => match fv.shape() {
            &[t, b, i] if t > 0 && i == is => (t, b, None, Some(value(&p.w_ih)?)),
            s => return Err(AutogradError::bad(OP, format!("an input of shape {s:?}, want [T ≥ 1, B, {is}]"))),
        },
        Source::Rows { t, b, indices, .. } => match fv.shape() {
            &[_, g4] if t > 0 && g4 == 4 * hs => (t, b, Some(indices), None),
            s => return Err(AutogradError::bad(OP, format!("a table of shape {s:?}, want [V, {}]", 4 * hs))),
        },
    };
    if h0v.shape() != [b, hs] || c0v.shape() != [b, hs] {
        return Err(AutogradError::bad(
            OP,
            format!("h0 {:?}, c0 {:?} for batch {b} and hidden size {hs}", h0v.shape(), c0v.shape()),
        ));
    }
    let dims = Dims { t, b, hs, is };
    let saved = dispatch!(dtype, T => forward::<T>(
        match (indices, &wi) {
            (Some(indices), _) => In::Rows { table: elems(&fv), indices },
            (None, Some(w)) => In::X { x: elems(&fv), w_ih: elems(w) },
            (None, None) => unreachable!("an input tensor comes with W_ih"),
        },
        elems(&wh),
        &bv.iter().map(elems::<T>).collect::<Vec<_>>(),
        elems(&h0v),
        elems(&c0v),
        dims,
    ))?;
    let mut inputs = vec![first];
    if indices.is_none() {
        inputs.push(&p.w_ih);
    }
    inputs.push(&p.w_hh);
    inputs.extend(&biases);
    inputs.push(h0);
    inputs.push(c0);
    let x_kept = if indices.is_none() && p.w_ih.requires_grad() { Some(reshaped(&fv, &[t * b, is])?) } else { None };
    let w_ih_kept = if first.requires_grad() { wi } else { None };
    let rows = indices.map(|ix| (ix.to_vec(), fv.shape()[0]));
    // The node's value `h_1 … h_T, c_T` is a view of the saved states.
    let y = saved.states.narrow(0, 1, t + 1)?;
    Ok(record(OP, &inputs, y, |_| LayerBackward {
        saved,
        x: x_kept,
        w_ih: w_ih_kept,
        rows,
        w_hh: wh,
        biases: biases.len(),
        dims,
    }))
}

#[derive(Clone, Copy, Debug)]
struct Dims {
    t: usize,
    b: usize,
    hs: usize,
    is: usize,
}

/// What the backward reads: gate activations `[T, B, 4H]`, cells
/// `c_0 … c_T` `[T + 1, B, H]` and `tanh(c_1 … c_T)` `[T, B, H]` in the
/// accumulation type; `h_0 … h_T, c_T` `[T + 2, B, H]` in the compute
/// dtype (its first `T` rows are the states each step read).
struct Saved {
    act: Tensor,
    cells: Tensor,
    tanh_c: Tensor,
    states: Tensor,
}

/// `biases` holds zero, one or two `[4H]` vectors, added to every row of
/// the input projection (their sum taken once, in the accumulation type).
fn forward<T: Elem>(input: In<'_, T>, w_hh: &[T], biases: &[&[T]], h0: &[T], c0: &[T], d: Dims) -> Result<Saved> {
    let Dims { t, b, hs, is } = d;
    let (g4, bh) = (4 * hs, b * hs);
    // Every element of these is written below: buffers from the tape's cache.
    let mut y_t = pool::take(&[t + 2, b, hs], T::DTYPE)?;
    let mut act_t = pool::take(&[t, b, g4], T::Acc::DTYPE)?;
    let mut cells_t = pool::take(&[t + 1, b, hs], T::Acc::DTYPE)?;
    let mut tanh_t = pool::take(&[t, b, hs], T::Acc::DTYPE)?;
    let y = y_t.data_mut::<T>()?;
    let act = act_t.data_mut::<T::Acc>()?;
    let cells = cells_t.data_mut::<T::Acc>()?;
    let tanh_c = tanh_t.data_mut::<T::Acc>()?;
    T::widen(c0, &mut cells[..bh]);
    y[..bh].copy_from_slice(h0);
    // The pre-activations start as b_ih + b_hh on every row; the input
    // projection of all T·B rows adds x·W_ihᵀ in one GEMM (or its table's
    // rows are added), each step's h_{s−1}·W_hhᵀ follows in its own.
    let bias: Vec<T::Acc> = match biases {
        [] => vec![T::Acc::default(); g4],
        [u] => u.iter().map(|v| v.acc()).collect(),
        [u, v, ..] => u.iter().zip(*v).map(|(p, q)| p.acc() + q.acc()).collect(),
    };
    match input {
        In::X { x, w_ih } => {
            for row in act.chunks_exact_mut(g4) {
                row.copy_from_slice(&bias);
            }
            T::gemm(Transpose::No, Transpose::Yes, t * b, g4, is, x, is, w_ih, is, T::Acc::of(1.0), act);
        }
        In::Rows { table, indices } => {
            // Each gathered row widened by the conversion kernels, then `x + bias`.
            for (row, &i) in act.chunks_exact_mut(g4).zip(indices) {
                T::widen(&table[i * g4..(i + 1) * g4], row);
                for (o, &c) in row.iter_mut().zip(&bias) {
                    *o += c;
                }
            }
        }
    }
    // W_hhᵀ packed once for the T steps.
    let wp = T::pack_b(Transpose::Yes, hs, g4, w_hh, hs);
    for s in 0..t {
        let a_s = &mut act[s * b * g4..(s + 1) * b * g4];
        let (h_prev, rest) = y.split_at_mut((s + 1) * bh);
        T::gemm_packed_b(Transpose::No, b, &h_prev[s * bh..], hs, &wp, T::Acc::of(1.0), a_s);
        // The gate nonlinearities, c_s = f·c_{s−1} + i·g and h_s = o·tanh(c_s) in one pass.
        let (before, after) = cells.split_at_mut((s + 1) * bh);
        T::lstm_cell(hs, a_s, &before[s * bh..], &mut after[..bh], &mut tanh_c[s * bh..(s + 1) * bh], &mut rest[..bh]);
    }
    for (o, &c) in y[(t + 1) * bh..].iter_mut().zip(&cells[t * bh..]) {
        *o = T::from_acc(c);
    }
    Ok(Saved { act: act_t, cells: cells_t, tanh_c: tanh_t, states: y_t })
}

/// The gradients of the pre-activations `[T, B, 4H]` (compute dtype), `h0`
/// and `c0` (accumulation type), from `dy` `[T + 1, B, H]`.
fn backward<T: Elem>(dy: &[T], sv: &Saved, w: &[T], d: Dims) -> Result<(Tensor, Tensor, Tensor)> {
    let Dims { t, b, hs, .. } = d;
    let (g4, bh) = (4 * hs, b * hs);
    let (act, cells, tanh_c) = (elems::<T::Acc>(&sv.act), elems::<T::Acc>(&sv.cells), elems::<T::Acc>(&sv.tanh_c));
    let zero = T::Acc::default();
    // Every element is written by the steps below.
    let mut dgates_t = pool::take(&[t, b, g4], T::DTYPE)?;
    let dgates = dgates_t.data_mut::<T>()?;
    let mut dh_next = vec![zero; bh];
    let mut dc = vec![zero; bh];
    T::widen(&dy[t * bh..], &mut dc);
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

/// Inputs as [`layer`] records them.
struct LayerBackward {
    saved: Saved,
    /// `x` as `[T·B, I]` (kept if `w_ih` needs a gradient).
    x: Option<Tensor>,
    /// `W_ih` (kept if `x` needs a gradient).
    w_ih: Option<Tensor>,
    /// From a table: the indices and the table's rows `V`.
    rows: Option<(Vec<usize>, usize)>,
    /// `W_hh` `[4H, H]`.
    w_hh: Tensor,
    /// How many biases (after `w_hh`) were recorded.
    biases: usize,
    dims: Dims,
}

impl Backward for LayerBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let dtype = self.w_hh.dtype();
        let g = g.to_dtype(dtype)?.contiguous();
        let Dims { t, b, hs, .. } = self.dims;
        let (dgates, dh0, dc0) =
            dispatch!(dtype, T => backward::<T>(elems(&g), &self.saved, elems(&self.w_hh), self.dims))?;
        let dg = reshaped(&dgates, &[t * b, 4 * hs])?;
        // W_hh is input 2 after x and W_ih, input 1 after a table.
        let whh = if self.rows.is_some() { 1 } else { 2 };
        if let Some((indices, v)) = &self.rows
            && grads.wants(0)
        {
            // d(table) row i = Σ of the gate gradients at the positions of index i
            let dt =
                dispatch!(dtype, T => tensor(scatter_rows::<T>(elems(&dgates), indices, *v, 4 * hs), &[*v, 4 * hs])?);
            grads.accumulate(0, dt)?;
        }
        if grads.wants(0)
            && let Some(w) = &self.w_ih
        {
            // dX = dG·W_ih
            accumulate_product(grads, 0, &Mat::new(&dg, Transpose::No)?, &Mat::new(w, Transpose::No)?)?;
        }
        if grads.wants(1)
            && let Some(x) = &self.x
        {
            // dW_ih = dGᵀ·X
            accumulate_product(grads, 1, &Mat::new(&dg, Transpose::Yes)?, &Mat::new(x, Transpose::No)?)?;
        }
        if grads.wants(whh) {
            // dW_hh = Σ_s dG_sᵀ·h_{s−1}
            let h_prev = reshaped(&self.saved.states.narrow(0, 0, t)?, &[t * b, hs])?;
            accumulate_product(grads, whh, &Mat::new(&dg, Transpose::Yes)?, &Mat::new(&h_prev, Transpose::No)?)?;
        }
        // b_ih and b_hh get the same gradient, Σ_rows dG: summed once.
        let at = whh + 1 + self.biases;
        if (whh + 1..at).any(|i| grads.wants(i)) {
            let db = dg.sum(0, false)?;
            for i in whh + 1..at {
                grads.accumulate(i, db.clone())?;
            }
        }
        grads.accumulate(at, dh0)?;
        grads.accumulate(at + 1, dc0)?;
        drop(dg);
        pool::give(dgates);
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        let s = &self.saved;
        let mut v = vec![&s.act, &s.cells, &s.tanh_c, &s.states, &self.w_hh];
        v.extend(self.x.iter().chain(self.w_ih.iter()));
        v
    }
}
