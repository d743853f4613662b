//! `dropout` (PyTorch's `F.dropout` in training; inverted dropout): with
//! drop probability `p`, `y = x·m`, `m_i = 1/(1 − p)` with probability
//! `1 − p`, else 0; `dx = dy·m`.
//!
//! `m_i` comes from a counter-based stream indexed by element `i`
//! ([`CounterStream`]), so the mask is the same for any thread count and
//! any chunking, and the backward regenerates it instead of saving it:
//! nothing is saved for backward. Products in FP32 for f16/bf16, one
//! rounding.

use mixprec_tensor::Tensor;
use mixprec_tensor::random::CounterStream;
use rayon::prelude::*;

use crate::autocast::cast_inputs;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::elem::{Elem, Real, dispatch, elems, tensor};
use crate::var::Var;

/// Elements per parallel chunk (one mask call each).
const CHUNK: usize = 1 << 14;

/// `out_i = x_i·m_i` for every element.
fn masked<T: Elem>(x: &[T], p: f32, stream: &CounterStream) -> Vec<T> {
    let mut out = vec![T::ZERO; x.len()];
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).enumerate().for_each(|(c, (o, xs))| {
        let mut m = vec![0.0f32; xs.len()];
        stream.fill_dropout_scale_f32((c * CHUNK) as u64, p, &mut m);
        for ((o, &x), &m) in o.iter_mut().zip(xs).zip(&m) {
            *o = T::from_acc(x.acc() * T::Acc::of(f64::from(m)));
        }
    });
    out
}

impl Var {
    /// Inverted dropout with drop probability `p` (`0 ≤ p ≤ 1`), its mask
    /// from `stream` (take one stream per call, e.g.
    /// [`Generator::counter_stream`](mixprec_tensor::random::Generator::counter_stream)).
    pub fn dropout(&self, p: f64, stream: &CounterStream) -> Result<Var> {
        const OP: &str = "dropout";
        if p.is_nan() || !(0.0..=1.0).contains(&p) {
            return Err(AutogradError::bad(OP, format!("the drop probability must be in [0, 1], got {p}")));
        }
        let [x] = cast_inputs(OP, [self])?;
        let xv = x.value().contiguous();
        let p = p as f32;
        let y = dispatch!(xv.dtype(), T => tensor(masked::<T>(elems(&xv), p, stream), xv.shape())?);
        Ok(record(OP, &[&x], y, |_| DropoutBackward { p, stream: *stream }))
    }
}

struct DropoutBackward {
    p: f32,
    stream: CounterStream,
}

impl Backward for DropoutBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let g = g.contiguous();
        let dx = dispatch!(g.dtype(), T => tensor(masked::<T>(elems(&g), self.p, &self.stream), g.shape())?);
        grads.accumulate(0, dx)
    }

    fn saved(&self) -> Vec<&Tensor> {
        Vec::new()
    }
}
