//! DESIGN.md's character LSTM on the shipped Shakespeare text (the paper's
//! language-model experiment in miniature): train on the first 90%,
//! report validation nats per character and perplexity on the last 10%.
//!
//! ```text
//! cargo run --release --example char_lm -- --precision master-weights
//! ```

use clap::Parser;
use mixprec::data::{TextCorpus, shipped_shakespeare};
use mixprec_train::recipes::{CHAR_LM as DEFAULTS, CHAR_LM_SEQ_LEN as SEQ_LEN, CHAR_LM_VALID_CHARS};
use mixprec_train::tasks::CharLm;
use mixprec_train::{Result, TrainArgs};

/// Trains DESIGN.md's char-LM (embedding 64, 2-layer LSTM 256, windows of
/// 64 characters) on Shakespeare.
///
/// Default recipe, the same for every precision: Adam, learning rate 0.002
/// decayed to 0 by a cosine over the run, batch 32, a budget of 500 steps
/// (the first 1M characters of the training text).
#[derive(Parser, Debug)]
#[command(name = "char_lm")]
struct Cli {
    #[command(flatten)]
    train: TrainArgs,
    /// Characters of the held-out 10% evaluated (from its start)
    #[arg(long, default_value_t = CHAR_LM_VALID_CHARS, value_parser = clap::value_parser!(u64).range(65..))]
    valid_chars: u64,
}

fn main() -> std::process::ExitCode {
    let cli: Cli = mixprec_train::parse_args(&DEFAULTS);
    mixprec_train::exit_with(run(&cli))
}

fn run(cli: &Cli) -> Result<()> {
    let opts = cli.train.resolve(&DEFAULTS)?;
    // Before anything else uses rayon's global pool (data loading may).
    mixprec_train::args::init_threads(opts.threads)?;
    let path = opts.data.clone().unwrap_or_else(shipped_shakespeare);
    let corpus = TextCorpus::load(&path)?;
    let mut task = CharLm::new(&corpus, SEQ_LEN, cli.valid_chars as usize, opts.seed)?;
    let outcome = mixprec_train::run_with(&mut task, &opts, &cli.train.checkpointing())?;
    mixprec_train::report(&outcome.record, opts.json);
    Ok(())
}
