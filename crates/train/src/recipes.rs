//! The examples' default recipes, in one place so that the tests and
//! comparisons that must train exactly as an example does (the scaler
//! comparison on the char-LM, for one) read them instead of copying numbers.

use crate::args::{Defaults, OptimizerKind};

/// `char_lm`'s defaults: Adam, learning rate 0.002 decayed to 0 by a cosine
/// over the run, batch 32, a budget of 500 steps within one epoch.
pub const CHAR_LM: Defaults =
    Defaults { epochs: 1, batch_size: 32, lr: 0.002, optimizer: OptimizerKind::Adam, steps: Some(500) };

/// `char_lm`'s characters per training window.
pub const CHAR_LM_SEQ_LEN: usize = 64;

/// `char_lm`'s default `--valid-chars`: characters of the held-out 10%
/// evaluated, from its start.
pub const CHAR_LM_VALID_CHARS: u64 = 65536;

/// `mnist_mlp`'s defaults: SGD with momentum 0.9, learning rate 0.1 decayed
/// to 0 by a cosine over the run, batch 128, 10 epochs.
pub const MNIST_MLP: Defaults =
    Defaults { epochs: 10, batch_size: 128, lr: 0.1, optimizer: OptimizerKind::Sgd, steps: None };
