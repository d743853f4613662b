//! Optimizer state in checkpoints: [`CheckpointOptimizer`] exports and
//! imports it for the library optimizers (through their `state` and
//! `load_state`) and for [`MasterWeights`] (whose state lives on the FP32
//! masters but is named by the model's parameters).

use mixprec_autograd::Var;
use mixprec_autograd::optim::{Adam, AdamConfig, AdamState, AdamW, Optimizer, Sgd, SgdConfig, SgdState};

use super::error::CheckpointError;
use crate::grad_scaler::AmpOptimizer;
use crate::master::MasterWeights;

/// An optimizer's hyper-parameters and state.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerState {
    /// [`Sgd`].
    Sgd {
        /// Hyper-parameters (the learning rate is the current one).
        config: SgdConfig,
        /// Momentum buffers.
        state: SgdState,
    },
    /// [`Adam`].
    Adam {
        /// Hyper-parameters.
        config: AdamConfig,
        /// Step counts and moments.
        state: AdamState,
    },
    /// [`AdamW`].
    AdamW {
        /// Hyper-parameters.
        config: AdamConfig,
        /// Step counts and moments.
        state: AdamState,
    },
}

impl OptimizerState {
    /// `sgd`, `adam` or `adamw` (the `optimizer` metadata value).
    pub fn kind(&self) -> &'static str {
        match self {
            OptimizerState::Sgd { .. } => "sgd",
            OptimizerState::Adam { .. } => "adam",
            OptimizerState::AdamW { .. } => "adamw",
        }
    }

    /// How many parameters the state covers.
    pub(crate) fn len(&self) -> usize {
        match self {
            OptimizerState::Sgd { state, .. } => state.momentum.len(),
            OptimizerState::Adam { state, .. } | OptimizerState::AdamW { state, .. } => state.steps.len(),
        }
    }
}

/// [`OptimizerState`] with the path of the parameter each slot belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerSnapshot {
    /// The model's parameter paths, in the optimizer's order.
    pub params: Vec<String>,
    /// The state, slot `i` for `params[i]`.
    pub state: OptimizerState,
}

impl OptimizerSnapshot {
    /// The state rearranged into the order of `names` (a live optimizer's
    /// parameters, with `numels` elements each): every name must be there
    /// and every buffer must have the parameter's size.
    pub(crate) fn reordered(&self, names: &[String], numels: &[usize]) -> Result<OptimizerState, CheckpointError> {
        let mut order = Vec::with_capacity(names.len());
        for name in names {
            let i = self.params.iter().position(|p| p == name).ok_or_else(|| CheckpointError::Missing {
                tensor: format!("optimizer state of `{name}` (metadata optimizer.params)"),
            })?;
            order.push(i);
        }
        if let Some(extra) = self.params.iter().find(|p| !names.contains(p)) {
            return Err(CheckpointError::Unexpected { tensor: format!("optimizer state of `{extra}`") });
        }
        // Checked here, before `restore` writes anything.
        checked_lr(match &self.state {
            OptimizerState::Sgd { config, .. } => config.lr,
            OptimizerState::Adam { config, .. } | OptimizerState::AdamW { config, .. } => config.lr,
        })?;
        if self.state.len() != self.params.len() {
            return Err(CheckpointError::Invalid {
                what: "the optimizer state".into(),
                reason: format!("{} slots for {} parameters", self.state.len(), self.params.len()),
            });
        }
        let pick = |bufs: &[Option<Vec<f32>>], slot: &str| -> Result<Vec<Option<Vec<f32>>>, CheckpointError> {
            order
                .iter()
                .zip(numels)
                .map(|(&i, &n)| {
                    let b = bufs[i].clone();
                    match &b {
                        Some(v) if v.len() != n => Err(CheckpointError::Shape {
                            tensor: super::format::optim_key(slot, &self.params[i]),
                            expected: vec![n],
                            found: vec![v.len()],
                        }),
                        _ => Ok(b),
                    }
                })
                .collect()
        };
        Ok(match &self.state {
            OptimizerState::Sgd { config, state } => OptimizerState::Sgd {
                config: *config,
                state: SgdState { momentum: pick(&state.momentum, "momentum")? },
            },
            OptimizerState::Adam { config, state } | OptimizerState::AdamW { config, state } => {
                let state = AdamState {
                    steps: order.iter().map(|&i| state.steps[i]).collect(),
                    exp_avg: pick(&state.exp_avg, "exp_avg")?,
                    exp_avg_sq: pick(&state.exp_avg_sq, "exp_avg_sq")?,
                };
                match &self.state {
                    OptimizerState::Adam { .. } => OptimizerState::Adam { config: *config, state },
                    _ => OptimizerState::AdamW { config: *config, state },
                }
            }
        })
    }
}

/// An optimizer whose state a checkpoint saves and restores.
pub trait CheckpointOptimizer {
    /// The model parameters the state belongs to, in the state's order
    /// (for master weights: the working copies).
    fn state_params(&self) -> &[Var];

    /// The FP32 masters, aligned with [`state_params`](Self::state_params)
    /// (a parameter kept in FP32 is its own master); `None` without masters.
    fn master_params(&self) -> Option<&[Var]> {
        None
    }

    /// The hyper-parameters and state.
    fn export_state(&self) -> OptimizerState;

    /// Restores a state of the same kind and size (and its learning rate).
    fn import_state(&mut self, state: OptimizerState) -> Result<(), CheckpointError>;
}

fn mismatch(expected: &str, found: &OptimizerState) -> CheckpointError {
    CheckpointError::Optimizer { expected: expected.to_string(), found: found.kind().to_string() }
}

fn invalid(e: mixprec_autograd::AutogradError) -> CheckpointError {
    CheckpointError::Invalid { what: "the optimizer state".into(), reason: e.to_string() }
}

/// The learning rate a file holds, refused unless the optimizer's
/// constructor would accept it (`set_lr` takes any value).
fn checked_lr(lr: f64) -> Result<f64, CheckpointError> {
    if lr >= 0.0 {
        Ok(lr)
    } else {
        Err(CheckpointError::metadata("optimizer.lr", format!("{lr} is not a non-negative number")))
    }
}

impl CheckpointOptimizer for Sgd {
    fn state_params(&self) -> &[Var] {
        self.params()
    }

    fn export_state(&self) -> OptimizerState {
        OptimizerState::Sgd { config: *self.config(), state: self.state().clone() }
    }

    fn import_state(&mut self, state: OptimizerState) -> Result<(), CheckpointError> {
        let OptimizerState::Sgd { config, state } = state else { return Err(mismatch("sgd", &state)) };
        let lr = checked_lr(config.lr)?;
        self.load_state(state).map_err(invalid)?;
        self.set_lr(lr).map_err(invalid)?;
        Ok(())
    }
}

macro_rules! adam_checkpoint {
    ($t:ident, $variant:ident, $kind:literal) => {
        impl CheckpointOptimizer for $t {
            fn state_params(&self) -> &[Var] {
                self.params()
            }

            fn export_state(&self) -> OptimizerState {
                OptimizerState::$variant { config: *self.config(), state: self.state().clone() }
            }

            fn import_state(&mut self, state: OptimizerState) -> Result<(), CheckpointError> {
                let OptimizerState::$variant { config, state } = state else { return Err(mismatch($kind, &state)) };
                let lr = checked_lr(config.lr)?;
                self.load_state(state).map_err(invalid)?;
                self.set_lr(lr).map_err(invalid)?;
                Ok(())
            }
        }
    };
}

adam_checkpoint!(Adam, Adam, "adam");
adam_checkpoint!(AdamW, AdamW, "adamw");

impl<O: AmpOptimizer + CheckpointOptimizer> CheckpointOptimizer for MasterWeights<O> {
    fn state_params(&self) -> &[Var] {
        self.working()
    }

    fn master_params(&self) -> Option<&[Var]> {
        Some(self.masters())
    }

    fn export_state(&self) -> OptimizerState {
        self.inner().export_state()
    }

    fn import_state(&mut self, state: OptimizerState) -> Result<(), CheckpointError> {
        self.inner_mut().import_state(state)
    }
}

/// A boxed optimizer (`Box<dyn …>` behind a command-line choice).
impl<T: CheckpointOptimizer + ?Sized> CheckpointOptimizer for Box<T> {
    fn state_params(&self) -> &[Var] {
        (**self).state_params()
    }

    fn master_params(&self) -> Option<&[Var]> {
        (**self).master_params()
    }

    fn export_state(&self) -> OptimizerState {
        (**self).export_state()
    }

    fn import_state(&mut self, state: OptimizerState) -> Result<(), CheckpointError> {
        (**self).import_state(state)
    }
}
