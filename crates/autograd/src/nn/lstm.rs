//! [`LSTM`]: PyTorch's multi-layer `nn.LSTM` (sequence-first `[T, B, I]`,
//! gate order i, f, g, o, every weight and bias `U(±1/√H)`).

use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, TensorError};

use crate::error::Result;
use crate::nn::{Module, init};
use crate::ops::{LstmParams, lstm};
use crate::var::Var;

/// A stack of LSTM layers (named as PyTorch's `nn.LSTM`).
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug)]
pub struct LSTM {
    /// Each layer's parameters, bottom first.
    pub layers: Vec<LstmParams>,
}

impl LSTM {
    /// `num_layers` layers of hidden size `hidden` over inputs of `input` features.
    pub fn new(input: usize, hidden: usize, num_layers: usize, rng: &mut Generator) -> Result<LSTM> {
        let bound = if hidden == 0 { 0.0 } else { 1.0 / (hidden as f64).sqrt() };
        let mut u = |shape: &[usize]| -> Result<Var> {
            Ok(Var::parameter(init::uniform(shape, -bound, bound, DType::F32, rng)?))
        };
        let gates = hidden.checked_mul(4).ok_or(TensorError::ShapeOverflow { op: "LSTM", shape: vec![4, hidden] })?;
        // Grown layer by layer: `num_layers` is the caller's, unchecked.
        let mut layers = Vec::new();
        for l in 0..num_layers {
            let i = if l == 0 { input } else { hidden };
            layers.push(LstmParams {
                w_ih: u(&[gates, i])?,
                w_hh: u(&[gates, hidden])?,
                b_ih: Some(u(&[gates])?),
                b_hh: Some(u(&[gates])?),
            });
        }
        Ok(LSTM { layers })
    }

    /// The outputs `[T, B, H]` and final `(h, c)` (`[L, B, H]` each) from
    /// the initial state (zeros if `None`).
    pub fn forward_with_state(&self, x: &Var, state: Option<(&Var, &Var)>) -> Result<(Var, Var, Var)> {
        lstm(x, state, &self.layers)
    }
}

impl Module for LSTM {
    fn forward(&self, x: &Var) -> Result<Var> {
        Ok(lstm(x, None, &self.layers)?.0)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (l, p) in self.layers.iter().enumerate() {
            out.push((format!("weight_ih_l{l}"), p.w_ih.clone()));
            out.push((format!("weight_hh_l{l}"), p.w_hh.clone()));
            if let Some(b) = &p.b_ih {
                out.push((format!("bias_ih_l{l}"), b.clone()));
            }
            if let Some(b) = &p.b_hh {
                out.push((format!("bias_hh_l{l}"), b.clone()));
            }
        }
        out
    }
}
