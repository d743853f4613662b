//! `embedding` (PyTorch's `F.embedding`): rows of a weight `[V, D]` picked
//! by integer indices; `y[i…, :] = W[idx[i…], :]`, shape `index_shape + [D]`.
//!
//! `dW[v, :] = Σ_{i: idx[i] = v} dy[i, :]` (a scatter-add, FP32 sums for
//! f16/bf16 weights). The backward keeps the indices, not the weight.

use mixprec_tensor::{Tensor, TensorError};

use crate::autocast::cast_inputs;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::elem::{dispatch, elems, scatter_rows, tensor};
use crate::var::Var;

impl Var {
    /// The rows of `self` (a weight `[V, D]`) at `indices`, shaped
    /// `index_shape + [D]` (PyTorch's `F.embedding(indices, self)`).
    pub fn embedding(&self, indices: &[usize], index_shape: &[usize]) -> Result<Var> {
        const OP: &str = "embedding";
        let [w] = cast_inputs(OP, [self])?;
        let ws = w.shape();
        if ws.len() != 2 {
            return Err(
                TensorError::BadRank { op: OP, expected: "a weight of rank 2 ([V, D])", shape: ws.to_vec() }.into()
            );
        }
        let (v, d) = (ws[0], ws[1]);
        // Checked: an index shape whose product overflows fills no list.
        if mixprec_tensor::layout::checked_numel(index_shape) != Some(indices.len()) {
            return Err(AutogradError::bad(
                OP,
                format!("{} indices do not fill the index shape {index_shape:?}", indices.len()),
            ));
        }
        if let Some((pos, &bad)) = indices.iter().enumerate().find(|&(_, &i)| i >= v) {
            return Err(AutogradError::bad(OP, format!("index {bad} at position {pos} is outside 0..{v}")));
        }
        let mut shape = index_shape.to_vec();
        shape.push(d);
        let y = w.value().index_select(0, indices)?.reshape(&shape)?;
        Ok(record(OP, &[&w], y, |_| EmbeddingBackward { indices: indices.to_vec(), v, d }))
    }
}

struct EmbeddingBackward {
    indices: Vec<usize>,
    v: usize,
    d: usize,
}

impl Backward for EmbeddingBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let g = g.contiguous();
        let dw = dispatch!(g.dtype(), T => tensor(scatter_rows::<T>(elems(&g), &self.indices, self.v, self.d), &[self.v, self.d])?);
        grads.accumulate(0, dw)
    }

    fn saved(&self) -> Vec<&Tensor> {
        Vec::new()
    }
}
