//! `matmul`: PyTorch's matrix product — `(m, k)·(k, n)`, batched
//! `(b, m, k)·(b, k, n)` (a batch of 1 broadcasts), `(b, m, k)·(k, n)`,
//! `(m, k)·(b, k, n)`, and 1-D operands as row (left) or column (right)
//! vectors. Mixed dtypes promote; f16/bf16 accumulate in FP32.
//!
//! `C = A·B`: `dA = dC·Bᵀ`, `dB = Aᵀ·dC` (summed over broadcast batches).
//! Transposes are GEMM flags, never copies; when B is one matrix, A's
//! batch is folded into rows so each gradient is one GEMM, and a weight
//! gradient accumulates straight into its buffer (`beta = 1`). A is saved
//! only if B needs a gradient, and B only if A does.

use mixprec_tensor::Tensor;
use mixprec_tensor::kernels::gemm::Transpose;

use crate::autocast::cast_inputs;
use crate::error::Result;
use crate::graph::{Backward, Grads, record};
use crate::ops::gemm::{Mat, accumulate_product};
use crate::util::reshaped;
use crate::var::Var;

impl Var {
    /// The matrix product `self · other` (PyTorch's `matmul`).
    pub fn matmul(&self, other: &Var) -> Result<Var> {
        let [a, b] = cast_inputs("matmul", [self, other])?;
        let (av, bv) = (a.value(), b.value());
        let y = av.matmul(&bv)?;
        let dtype = y.dtype();
        let keep_a = b.requires_grad();
        let keep_b = a.requires_grad();
        Ok(record("matmul", &[&a, &b], y, |_| MatmulBackward {
            a: if keep_a { av.to_dtype(dtype).ok() } else { None },
            b: if keep_b { bv.to_dtype(dtype).ok() } else { None },
            a_shape: av.shape().to_vec(),
            b_shape: bv.shape().to_vec(),
        }))
    }
}

struct MatmulBackward {
    a: Option<Tensor>,
    b: Option<Tensor>,
    a_shape: Vec<usize>,
    b_shape: Vec<usize>,
}

/// A shape with a 1-D operand made 2-D: `[k]` → `[1, k]` (left) or `[k, 1]` (right).
fn as_matrix(shape: &[usize], left: bool) -> Vec<usize> {
    match (shape.len(), left) {
        (1, true) => vec![1, shape[0]],
        (1, false) => vec![shape[0], 1],
        _ => shape.to_vec(),
    }
}

impl Backward for MatmulBackward {
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let a_sh = as_matrix(&self.a_shape, true);
        let b_sh = as_matrix(&self.b_shape, false);
        // The output shape with 1-D operands' axes put back.
        let mut g_sh = g.shape().to_vec();
        if self.a_shape.len() == 1 {
            // A 1-D `a` with a 2-D+ `b` gives a rank ≥ 1 output; with a 1-D `b`, nothing is subtracted.
            let at = g_sh.len() - usize::from(self.b_shape.len() != 1);
            g_sh.insert(at, 1);
        }
        if self.b_shape.len() == 1 {
            g_sh.push(1);
        }
        let g = reshaped(g, &g_sh)?;
        if b_sh.len() == 2 {
            // B is one matrix: fold A's batch into rows.
            let (k, n) = (b_sh[0], b_sh[1]);
            let rows = g.numel() / n.max(1);
            let gm = reshaped(&g, &[rows, n])?;
            if grads.wants(0)
                && let Some(b) = &self.b
            {
                // dA = G·Bᵀ
                let bm = reshaped(b, &b_sh)?;
                accumulate_product(grads, 0, &Mat::new(&gm, Transpose::No)?, &Mat::new(&bm, Transpose::Yes)?)?;
            }
            if grads.wants(1)
                && let Some(a) = &self.a
            {
                let am = reshaped(a, &[rows, k])?;
                if self.b_shape.len() == 1 {
                    // dB (a column) = (Gᵀ·A)ᵀ, computed as the row Gᵀ·A.
                    accumulate_product(grads, 1, &Mat::new(&gm, Transpose::Yes)?, &Mat::new(&am, Transpose::No)?)?;
                } else {
                    // dB = Aᵀ·G
                    accumulate_product(grads, 1, &Mat::new(&am, Transpose::Yes)?, &Mat::new(&gm, Transpose::No)?)?;
                }
            }
            return Ok(());
        }
        // B is batched: batched products, summed over broadcast batches.
        if grads.wants(0)
            && let Some(b) = &self.b
        {
            let bm = reshaped(b, &b_sh)?;
            let d = g.matmul(&bm.transpose(-1, -2)?)?.sum_to(&a_sh)?;
            let shape = self.a_shape.clone();
            grads.accumulate(0, reshaped(&d, &shape)?)?;
        }
        if grads.wants(1)
            && let Some(a) = &self.a
        {
            let am = reshaped(a, &a_sh)?;
            let d = am.transpose(-1, -2)?.matmul(&g)?.sum_to(&b_sh)?;
            let shape = self.b_shape.clone();
            grads.accumulate(1, reshaped(&d, &shape)?)?;
        }
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        self.a.iter().chain(self.b.iter()).collect()
    }
}
