//! DESIGN.md's CNN (two conv + batch norm + ReLU + max-pool blocks, a linear
//! head) on MNIST in any precision mode.
//!
//! ```text
//! cargo run --release --example mnist_cnn -- --precision master-weights
//! ```

use clap::Parser;
use mixprec::data::{Mnist, load_mnist};
use mixprec_train::recipes::MNIST_CNN as DEFAULTS;
use mixprec_train::tasks::MnistCnn;
use mixprec_train::{Result, TrainArgs};

/// Trains DESIGN.md's CNN on MNIST: conv 1→32 3×3 + batch norm + ReLU +
/// max-pool 2, conv 32→64 3×3 + batch norm + ReLU + max-pool 2, linear
/// 3136→10.
///
/// Default recipe, the same for every precision: SGD with momentum 0.9,
/// learning rate rising linearly from 0 to 0.05 over 200 steps, then
/// decayed to 0 by a cosine; batch 128, 3 epochs. Batch-norm parameters
/// stay FP32 under master weights; batch norm runs in its input's dtype
/// (f16/bf16 after a low-precision convolution) with FP32 statistics.
#[derive(Parser, Debug)]
#[command(name = "mnist_cnn")]
struct Cli {
    #[command(flatten)]
    train: TrainArgs,
}

fn main() -> std::process::ExitCode {
    let cli: Cli = mixprec_train::parse_args(&DEFAULTS);
    mixprec_train::exit_with(run(&cli))
}

fn run(cli: &Cli) -> Result<()> {
    let opts = cli.train.resolve(&DEFAULTS)?;
    // Before anything else uses rayon's global pool (data loading may).
    mixprec_train::args::init_threads(opts.threads)?;
    let mnist = match &opts.data {
        Some(dir) => load_mnist(dir)?,
        None => Mnist::shipped()?,
    };
    let mut task = MnistCnn::new(&mnist, opts.seed)?;
    let outcome = mixprec_train::run_with(&mut task, &opts, &cli.train.checkpointing())?;
    mixprec_train::report(&outcome.record, opts.json);
    Ok(())
}
