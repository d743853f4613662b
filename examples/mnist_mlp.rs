//! DESIGN.md's MLP (784-512-512-10, ReLU, cross-entropy) on MNIST in any
//! precision mode: the first thing to run.
//!
//! ```text
//! cargo run --release --example mnist_mlp -- --precision master-weights
//! cargo run --release --example mnist_mlp -- --precision autocast-bf16 --epochs 2 --json
//! cargo run --release --example mnist_mlp -- --precision master-weights --save ckpt --stop-after 1000
//! cargo run --release --example mnist_mlp -- --precision master-weights --resume ckpt --save ckpt
//! ```

use clap::Parser;
use mixprec::data::{Mnist, load_mnist};
use mixprec_train::recipes::MNIST_MLP as DEFAULTS;
use mixprec_train::tasks::MnistMlp;
use mixprec_train::{Result, TrainArgs};

/// Trains DESIGN.md's MLP (784-512-512-10, ReLU) on MNIST.
///
/// Default recipe, the same for every precision: SGD with momentum 0.9,
/// learning rate 0.1 decayed to 0 by a cosine over the run, batch 128, 10
/// epochs, PyTorch's nn.Linear initialisation from --seed.
#[derive(Parser, Debug)]
#[command(name = "mnist_mlp")]
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
    let mut task = MnistMlp::new(&mnist, opts.seed)?;
    let outcome = mixprec_train::run_with(&mut task, &opts, &cli.train.checkpointing())?;
    mixprec_train::report(&outcome.record, opts.json);
    Ok(())
}
