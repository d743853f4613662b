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
/// 64 characters) on Shakespeare: the first 90% for training, validation
/// nats per character (and perplexity) on the last 10%.
///
/// Default recipe, the same for every precision: truncated backpropagation
/// through time over 32 contiguous streams of the training text (the LSTM
/// state carried from one 64-character window to the next, gradients cut
/// at the window); Adam, learning rate rising linearly from 0 to 0.004 over
/// 100 steps, then decayed to 0 by a cosine; gradients clipped to global
/// L2 norm 1 (after unscaling, on the FP32 gradients); a budget of 2200
/// steps (4.5M characters: the training text once). Validation walks the
/// whole held-out text in 64 streams with the state carried.
#[derive(Parser, Debug)]
#[command(name = "char_lm")]
struct Cli {
    #[command(flatten)]
    train: TrainArgs,
    /// Characters of the held-out 10% evaluated (from its start) [default: all]
    #[arg(long, value_parser = clap::value_parser!(u64).range(65..))]
    valid_chars: Option<u64>,
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
    let valid_chars = cli.valid_chars.or(CHAR_LM_VALID_CHARS).map(|v| usize::try_from(v).unwrap_or(usize::MAX));
    let mut task = CharLm::new(&corpus, SEQ_LEN, valid_chars, opts.seed)?;
    let outcome = mixprec_train::run_with(&mut task, &opts, &cli.train.checkpointing())?;
    mixprec_train::report(&outcome.record, opts.json);
    Ok(())
}
