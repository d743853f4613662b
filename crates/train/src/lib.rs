//! The harness mixprec's training examples share, so each example holds
//! only its model and data: command-line flags ([`args`]), the JSON record
//! every run prints ([`record`]), progress bars ([`progress`]), the training
//! loop over any precision mode ([`trainer`]), plots ([`plot`]) and the
//! examples' default recipes ([`recipes`]).
//!
//! An example implements [`Task`] (parameters, an epoch of batches, the
//! loss of a batch, an evaluation) and calls [`run`] (`reproduce` calls it
//! once per configuration and seed); [`run_observed`] is [`run`] with
//! another loss scaler and a look at every step (the scaler comparisons use
//! it); [`run_with`] adds checkpoints (`--save`, `--resume`,
//! [`Checkpointing`]).

pub mod args;
pub mod error;
pub mod plot;
pub mod progress;
pub mod recipes;
pub mod record;
pub mod tasks;
pub mod trainer;

pub use args::{
    Checkpointing, Defaults, LossScale, OptimizerKind, Resolved, TrainArgs, parse_args, try_parse_args_from,
};
pub use error::{ExampleError, Result};
pub use progress::Progress;
pub use record::{BytesByDtype, Record};
pub use trainer::{
    Eval, Outcome, RunOptions, StepReport, Task, Trainer, TrainerConfig, accuracy, exit_with, report, run,
    run_observed, run_with,
};
