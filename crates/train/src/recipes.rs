//! The examples' default recipes, in one place so that the tests and
//! comparisons that must train exactly as an example does (the scaler
//! comparison on the char-LM, for one) read them instead of copying numbers.

use crate::args::{Defaults, OptimizerKind};

/// `char_lm`'s defaults: Adam, learning rate rising linearly from 0 to
/// 0.004 over 100 steps, then decayed to 0 by a cosine; gradients clipped to
/// global norm 1; 32 streams of the training text walked by truncated
/// backpropagation through time (state carried between steps); a budget of
/// 2200 steps (4.5M characters: the training text once).
pub const CHAR_LM: Defaults = Defaults {
    epochs: 1,
    batch_size: 32,
    lr: 0.004,
    optimizer: OptimizerKind::Adam,
    steps: Some(2200),
    warmup_steps: 100,
    clip_grad_norm: Some(1.0),
};

/// `char_lm`'s characters per training window (the truncation length).
pub const CHAR_LM_SEQ_LEN: usize = 64;

/// `char_lm`'s default `--valid-chars`: all of the held-out 10%.
pub const CHAR_LM_VALID_CHARS: Option<u64> = None;

/// `mnist_cnn`'s defaults: SGD with momentum 0.9, learning rate rising
/// linearly from 0 to 0.05 over 200 steps, then decayed to 0 by a cosine;
/// batch 128, 3 epochs. Without the warm-up, 0.05 from the first step
/// throws the head (3136 → 10, no normalisation after it; its gradient
/// norm is ~10 at initialisation) into a loss spike of ~5 nats within 50
/// steps, PyTorch likewise with the same weights, and the run ends near
/// 94%.
pub const MNIST_CNN: Defaults = Defaults {
    epochs: 3,
    batch_size: 128,
    lr: 0.05,
    optimizer: OptimizerKind::Sgd,
    steps: None,
    warmup_steps: 200,
    clip_grad_norm: None,
};

/// `mnist_mlp`'s defaults: SGD with momentum 0.9, learning rate 0.1 decayed
/// to 0 by a cosine over the run, batch 128, 10 epochs.
pub const MNIST_MLP: Defaults = Defaults::new(10, 128, 0.1, OptimizerKind::Sgd, None);
