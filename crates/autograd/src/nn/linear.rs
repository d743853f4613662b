//! [`Linear`]: `y = x·Wᵀ + b` with PyTorch's layout (`W` is `[out, in]`)
//! and default initialisation (`W` and `b` uniform in `±1/√in`).

use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, Tensor, TensorError};

use crate::error::Result;
use crate::nn::{Module, init};
use crate::var::Var;

/// Options of [`Linear::with_options`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearOptions {
    /// Whether the layer adds a bias.
    pub bias: bool,
    /// The parameters' dtype.
    pub dtype: DType,
}

impl Default for LinearOptions {
    fn default() -> LinearOptions {
        LinearOptions { bias: true, dtype: DType::F32 }
    }
}

/// A fully connected layer.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Var,
    /// `[out]`, if the layer has one.
    pub bias: Option<Var>,
}

impl Linear {
    /// An f32 layer with a bias, initialised as PyTorch's `nn.Linear`.
    pub fn new(in_features: usize, out_features: usize, rng: &mut Generator) -> Result<Linear> {
        Linear::with_options(in_features, out_features, LinearOptions::default(), rng)
    }

    /// A layer initialised as PyTorch's `nn.Linear` (Kaiming uniform with
    /// gain √(1/3) for `W`, `U(±1/√in)` for `b`), with these options.
    pub fn with_options(
        in_features: usize,
        out_features: usize,
        opts: LinearOptions,
        rng: &mut Generator,
    ) -> Result<Linear> {
        let w = init::kaiming_uniform(
            &[out_features, in_features],
            in_features,
            init::LINEAR_DEFAULT_GAIN,
            opts.dtype,
            rng,
        )?;
        let bound = if in_features == 0 { 0.0 } else { 1.0 / (in_features as f64).sqrt() };
        let b = if opts.bias { Some(init::uniform(&[out_features], -bound, bound, opts.dtype, rng)?) } else { None };
        Linear::from_tensors(w, b)
    }

    /// A layer with these parameters (`weight` `[out, in]`, `bias` `[out]`).
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        if weight.rank() != 2 {
            return Err(TensorError::BadRank {
                op: "Linear",
                expected: "a weight of rank 2",
                shape: weight.shape().to_vec(),
            }
            .into());
        }
        if let Some(b) = &bias
            && b.shape() != [weight.shape()[0]]
        {
            return Err(TensorError::ShapeMismatch {
                op: "Linear",
                lhs: weight.shape().to_vec(),
                rhs: b.shape().to_vec(),
            }
            .into());
        }
        Ok(Linear { weight: Var::parameter(weight), bias: bias.map(Var::parameter) })
    }

    /// Input features. (The weight is rank 2: `from_tensors` checks it and
    /// a parameter's shape never changes.)
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.linear(&self.weight, self.bias.as_ref())
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut out = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            out.push(("bias".to_string(), b.clone()));
        }
        out
    }

    fn forward_relu(&self, x: &Var) -> Option<Result<Var>> {
        Some(x.linear_relu(&self.weight, self.bias.as_ref()))
    }
}
