//! [`Embedding`] (rows of a `[V, D]` table, `N(0, 1)` initial values as
//! PyTorch's) and [`Dropout`] (a counter-based mask per call, drawn from
//! the layer's own seeded generator; identity in evaluation mode).

use std::sync::Mutex;

use mixprec_tensor::DType;
use mixprec_tensor::random::{Generator, GeneratorState};

use crate::error::Result;
use crate::nn::{Module, init};
use crate::var::Var;

/// A lookup table `[num_embeddings, dim]`.
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `[num_embeddings, dim]`.
    pub weight: Var,
}

impl Embedding {
    /// `N(0, 1)` rows, as PyTorch's `nn.Embedding`.
    pub fn new(num_embeddings: usize, dim: usize, rng: &mut Generator) -> Result<Embedding> {
        Ok(Embedding { weight: Var::parameter(init::normal(&[num_embeddings, dim], 0.0, 1.0, DType::F32, rng)?) })
    }

    /// The rows at `indices`, shaped `index_shape + [dim]`.
    pub fn lookup(&self, indices: &[usize], index_shape: &[usize]) -> Result<Var> {
        self.weight.embedding(indices, index_shape)
    }
}

impl Module for Embedding {
    /// `x` holds the indices as (integral) floats.
    fn forward(&self, x: &Var) -> Result<Var> {
        let v = x.value().to_vec_f64()?;
        let indices: Vec<usize> =
            v.iter().map(|&i| if i >= 0.0 && i.fract() == 0.0 { i as usize } else { usize::MAX }).collect();
        self.lookup(&indices, x.shape())
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}

/// Inverted dropout with probability `p` in training, the identity in
/// evaluation. Each training call takes a fresh counter-based stream from
/// the layer's generator, so a seed gives the same masks on any thread count.
#[derive(Debug)]
pub struct Dropout {
    /// Drop probability.
    pub p: f64,
    rng: Mutex<Generator>,
    training: bool,
}

impl Dropout {
    /// Drop probability `p`, masks from a generator seeded with `seed`.
    pub fn new(p: f64, seed: u64) -> Dropout {
        Dropout { p, rng: Mutex::new(Generator::new(seed)), training: true }
    }

    /// The state of the mask generator (for checkpoints: a resumed run
    /// draws the masks the uninterrupted one would have).
    pub fn generator_state(&self) -> GeneratorState {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).state()
    }

    /// Continues the mask generator from a state saved by
    /// [`Dropout::generator_state`].
    pub fn set_generator_state(&self, state: &GeneratorState) {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = Generator::from_state(state);
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Var) -> Result<Var> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        let stream = self.rng.lock().unwrap_or_else(|e| e.into_inner()).counter_stream();
        x.dropout(self.p, &stream)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}
