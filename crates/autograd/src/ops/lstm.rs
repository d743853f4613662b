//! `lstm_cell` and the multi-layer `lstm` over a sequence (PyTorch's
//! `nn.LSTMCell` / `nn.LSTM` math, gate order i, f, g, o), composed from
//! the tape's primitives (linear, narrow, sigmoid, tanh, mul, add), so the
//! backward is theirs and the gradchecks cover the composition:
//!
//! ```text
//! [i f g o] = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh
//! i, f, o = σ(·);  g = tanh(·)
//! c' = f·c + i·g;  h' = o·tanh(c')
//! ```
//!
//! Over a sequence `[T, B, I]`, each layer's input projection runs as one
//! GEMM over all `T·B` rows; only the recurrent product `h·W_hhᵀ` runs per
//! step. Layer `l + 1` reads layer `l`'s outputs.

use crate::autocast::cast_inputs_vec;
use crate::error::{AutogradError, Result};
use crate::var::Var;
use mixprec_tensor::TensorError;

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
        if wi.len() != 2 || wh.len() != 2 || wi[0] % 4 != 0 || wh[0] != wi[0] || wh[1] * 4 != wh[0] {
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

/// `(h', c')` from the summed pre-activations `[B, 4H]` and `c`.
fn gates_to_state(gates: &Var, c: &Var, h: usize) -> Result<(Var, Var)> {
    let i = gates.narrow(1, 0, h)?.sigmoid()?;
    let f = gates.narrow(1, h, h)?.sigmoid()?;
    let g = gates.narrow(1, 2 * h, h)?.tanh()?;
    let o = gates.narrow(1, 3 * h, h)?.sigmoid()?;
    let c2 = f.mul(c)?.add(&i.mul(&g)?)?;
    let h2 = o.mul(&c2.tanh()?)?;
    Ok((h2, c2))
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
        let gates = x.linear(&p.w_ih, p.b_ih.as_ref())?.add(&h.linear(&p.w_hh, p.b_hh.as_ref())?)?;
        gates_to_state(&gates, c, hs)
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
                let z = Var::constant(mixprec_tensor::Tensor::zeros(&[b, hs], input.dtype())?);
                (z.clone(), z)
            }
        };
        // The input projection of every step at once: one GEMM of T·B rows.
        let proj = input.reshape(&[t * b, is])?.linear(&p.w_ih, p.b_ih.as_ref())?.reshape(&[t, b, 4 * hs])?;
        let mut outs = Vec::with_capacity(t);
        for step in 0..t {
            let gates = proj.narrow(0, step, 1)?.reshape(&[b, 4 * hs])?.add(&h.linear(&p.w_hh, p.b_hh.as_ref())?)?;
            (h, c) = gates_to_state(&gates, &c, hs)?;
            outs.push(h.clone());
        }
        let refs: Vec<&Var> = outs.iter().collect();
        input = if t == 0 {
            Var::constant(mixprec_tensor::Tensor::zeros(&[0, b, hs], input.dtype())?)
        } else {
            Var::stack(&refs, 0)?
        };
        hn.push(h);
        cn.push(c);
    }
    let (hr, cr): (Vec<&Var>, Vec<&Var>) = (hn.iter().collect(), cn.iter().collect());
    Ok((input, Var::stack(&hr, 0)?, Var::stack(&cr, 0)?))
}
