//! The flags every training example takes (DESIGN.md "Example command line
//! and output"), with per-example defaults shown in `--help`.
//!
//! An example's own `clap::Parser` flattens [`TrainArgs`] and adds its own
//! flags; [`parse_args`] fills in that example's [`Defaults`]. Syntax errors
//! and out-of-range values are clap errors that name the flag (exit code 2);
//! [`LossScale`] and the precision parse into typed errors.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, ValueEnum};
use mixprec::amp::Precision;

use crate::error::{ExampleError, Result};

/// How the loss is scaled (`--loss-scale`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossScale {
    /// No scaling (scale 1, no Inf/NaN checks).
    None,
    /// A fixed scale; steps with Inf/NaN gradients are still skipped.
    Static(f32),
    /// PyTorch GradScaler's rule: start at 2^16, halve and skip on Inf/NaN,
    /// double after 2000 clean steps.
    Dynamic,
    /// Chosen each step from the largest gradient magnitude observed (the
    /// paper's §3.2 suggestion; `amp`'s statistics-driven scaler with its
    /// defaults, from 2^16).
    Stats,
}

impl LossScale {
    /// The default for a precision: dynamic for the f16 mixed modes, none
    /// otherwise (FP32, pure f16, bf16).
    pub fn default_for(precision: Precision) -> LossScale {
        if precision.default_loss_scaling() { LossScale::Dynamic } else { LossScale::None }
    }
}

impl fmt::Display for LossScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossScale::None => f.write_str("none"),
            LossScale::Static(s) => write!(f, "static:{s}"),
            LossScale::Dynamic => f.write_str("dynamic"),
            LossScale::Stats => f.write_str("stats"),
        }
    }
}

impl FromStr for LossScale {
    type Err = ExampleError;

    /// `none`, `static:<S>` (S finite and positive, e.g. `static:1024` or
    /// `static:65536`), `dynamic` or `stats`.
    fn from_str(s: &str) -> Result<LossScale> {
        let bad = |reason: &str| ExampleError::InvalidFlag {
            flag: "--loss-scale",
            value: s.to_string(),
            reason: reason.to_string(),
        };
        match s {
            "none" => Ok(LossScale::None),
            "dynamic" => Ok(LossScale::Dynamic),
            "stats" => Ok(LossScale::Stats),
            _ => {
                let Some(v) = s.strip_prefix("static:") else {
                    return Err(bad("expected none, static:<S>, dynamic or stats"));
                };
                let scale: f32 = v.parse().map_err(|_| bad("the static scale must be a number"))?;
                if scale.is_finite() && scale > 0.0 {
                    Ok(LossScale::Static(scale))
                } else {
                    Err(bad("the static scale must be finite and positive"))
                }
            }
        }
    }
}

/// `--optimizer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    /// SGD with momentum 0.9.
    Sgd,
    /// Adam (β = 0.9, 0.999; ε = 1e-8).
    Adam,
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        })
    }
}

fn parse_precision(s: &str) -> std::result::Result<Precision, mixprec::amp::AmpError> {
    s.parse()
}

fn non_negative_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be finite and non-negative".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be finite and positive".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The flags every training example shares. Fields left `None` take the
/// example's [`Defaults`] (which `--help` shows).
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// f32 | autocast | master-weights | pure-f16 | autocast-bf16 | master-weights-bf16 (or O0–O3)
    #[arg(long, value_parser = parse_precision, default_value = "f32")]
    pub precision: Precision,
    /// none | static:<S> | dynamic | stats [default: dynamic for autocast and master-weights, none otherwise]
    #[arg(long, value_parser = LossScale::from_str)]
    pub loss_scale: Option<LossScale>,
    /// Passes over the training set
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: Option<u64>,
    /// Examples per step
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
    /// Peak learning rate (cosine decay to 0 over the run)
    #[arg(long, value_parser = positive_f64)]
    pub lr: Option<f64>,
    /// sgd (momentum 0.9) | adam
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Worker threads [default: all cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
    /// Seed of the initialisation and of the batch order
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Data directory (MNIST: the four IDX files, `.gz` or not) or file (text) [default: the shipped copy in data/]
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Stop after this many optimizer steps (a budget within the epochs; the learning-rate schedule spans the steps run)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Steps of linear learning-rate warm-up from 0 before the cosine decay
    #[arg(long)]
    pub warmup_steps: Option<u64>,
    /// Clip the gradients to this global L2 norm before each update (0: no clipping)
    #[arg(long, value_parser = non_negative_f64)]
    pub clip_grad_norm: Option<f64>,
    /// Print one JSON object as the last line of stdout; no progress bar
    #[arg(long)]
    pub json: bool,
    /// Save a checkpoint (DIR/checkpoint.safetensors, written atomically) at the end of each epoch (or every --save-every steps) and at the end
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// With --save: save every N optimizer steps instead of at each epoch's end
    #[arg(long, value_name = "N", requires = "save", value_parser = clap::value_parser!(u64).range(1..))]
    pub save_every: Option<u64>,
    /// Continue the run saved in DIR (by --save) from its step, bit-exactly: same example, --precision, --loss-scale, --optimizer, --lr, --batch-size, --epochs, --steps and --seed
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Stop once this many steps have run in total (counting those before --resume), without shortening the learning-rate schedule; save with --save and continue later with --resume
    #[arg(long, value_name = "STEP", value_parser = clap::value_parser!(u64).range(1..))]
    pub stop_after: Option<u64>,
}

/// The checkpoint flags of a run (`--save`, `--save-every`, `--resume`,
/// `--stop-after`); [`Checkpointing::default`] is none of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpointing {
    /// `--save`: the directory checkpoints are written to.
    pub save: Option<PathBuf>,
    /// `--save-every` (`None`: at each epoch's end).
    pub save_every: Option<usize>,
    /// `--resume`: the directory of the checkpoint to continue from.
    pub resume: Option<PathBuf>,
    /// `--stop-after`: the step to stop at (the schedule still spans the run).
    pub stop_after: Option<usize>,
}

/// An example's default recipe.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// `--epochs`.
    pub epochs: u64,
    /// `--batch-size`.
    pub batch_size: u64,
    /// `--lr`.
    pub lr: f64,
    /// `--optimizer`.
    pub optimizer: OptimizerKind,
    /// `--steps` (`None`: whole epochs).
    pub steps: Option<u64>,
    /// `--warmup-steps`.
    pub warmup_steps: u64,
    /// `--clip-grad-norm` (`None`: no clipping).
    pub clip_grad_norm: Option<f64>,
}

impl Defaults {
    /// A recipe without warm-up or clipping.
    pub const fn new(epochs: u64, batch_size: u64, lr: f64, optimizer: OptimizerKind, steps: Option<u64>) -> Defaults {
        Defaults { epochs, batch_size, lr, optimizer, steps, warmup_steps: 0, clip_grad_norm: None }
    }
}

/// [`TrainArgs`] with every default filled in and checked.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// `--precision`.
    pub precision: Precision,
    /// `--loss-scale` (or the precision's default).
    pub loss_scale: LossScale,
    /// `--epochs`.
    pub epochs: usize,
    /// `--batch-size`.
    pub batch_size: usize,
    /// `--lr`.
    pub lr: f64,
    /// `--optimizer`.
    pub optimizer: OptimizerKind,
    /// `--threads` (or the cores available).
    pub threads: usize,
    /// `--seed`.
    pub seed: u64,
    /// `--data`, if given.
    pub data: Option<PathBuf>,
    /// `--steps`, if given.
    pub max_steps: Option<usize>,
    /// `--warmup-steps`.
    pub warmup_steps: usize,
    /// `--clip-grad-norm`, if clipping (a positive norm).
    pub clip_grad_norm: Option<f64>,
    /// `--json`.
    pub json: bool,
}

impl TrainArgs {
    /// Fills in `defaults` and the machine's core count. Refuses loss
    /// scaling combined with a mode whose gradients it cannot unscale
    /// (`pure-f16` keeps f16 gradients; scaling them would need an f16
    /// unscale, which underflows).
    pub fn resolve(&self, defaults: &Defaults) -> Result<Resolved> {
        let loss_scale = self.loss_scale.unwrap_or(LossScale::default_for(self.precision));
        if self.precision == Precision::PureF16 && loss_scale != LossScale::None {
            return Err(ExampleError::InvalidFlag {
                flag: "--loss-scale",
                value: loss_scale.to_string(),
                reason: "pure-f16 has f16 gradients and no FP32 copy to unscale them into; use none".to_string(),
            });
        }
        let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(Resolved {
            precision: self.precision,
            loss_scale,
            epochs: to_usize(self.epochs.unwrap_or(defaults.epochs)),
            batch_size: to_usize(self.batch_size.unwrap_or(defaults.batch_size)),
            lr: self.lr.unwrap_or(defaults.lr),
            optimizer: self.optimizer.unwrap_or(defaults.optimizer),
            threads: self
                .threads
                .map(to_usize)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            seed: self.seed,
            data: self.data.clone(),
            max_steps: self.steps.or(defaults.steps).map(to_usize),
            warmup_steps: to_usize(self.warmup_steps.unwrap_or(defaults.warmup_steps)),
            clip_grad_norm: self.clip_grad_norm.or(defaults.clip_grad_norm).filter(|&c| c > 0.0),
            json: self.json,
        })
    }
}

impl TrainArgs {
    /// The checkpoint flags.
    pub fn checkpointing(&self) -> Checkpointing {
        let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Checkpointing {
            save: self.save.clone(),
            save_every: self.save_every.map(to_usize),
            resume: self.resume.clone(),
            stop_after: self.stop_after.map(to_usize),
        }
    }
}

/// Parses `std::env::args` into an example's parser `C` (which flattens
/// [`TrainArgs`]), showing `defaults` in `--help`; prints clap's error (or
/// the help) and exits on a bad flag.
pub fn parse_args<C: Parser>(defaults: &Defaults) -> C {
    try_parse_args_from(defaults, std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// [`parse_args`] from an explicit argument list (the first is the program
/// name), returning clap's error instead of exiting.
pub fn try_parse_args_from<C, I, T>(defaults: &Defaults, args: I) -> std::result::Result<C, clap::Error>
where
    C: Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = C::command();
    if let Some(steps) = defaults.steps {
        cmd = cmd.mut_arg("steps", |a| a.default_value(steps.to_string()));
    }
    let cmd = cmd
        .mut_arg("epochs", |a| a.default_value(defaults.epochs.to_string()))
        .mut_arg("batch_size", |a| a.default_value(defaults.batch_size.to_string()))
        .mut_arg("lr", |a| a.default_value(defaults.lr.to_string()))
        .mut_arg("optimizer", |a| a.default_value(defaults.optimizer.to_string()))
        .mut_arg("warmup_steps", |a| a.default_value(defaults.warmup_steps.to_string()))
        .mut_arg("clip_grad_norm", |a| a.default_value(defaults.clip_grad_norm.unwrap_or(0.0).to_string()));
    let matches = cmd.try_get_matches_from(args)?;
    C::from_arg_matches(&matches)
}

/// Builds the global thread pool with `threads` workers (once per process;
/// a second call with the same count is a no-op).
pub fn init_threads(threads: usize) -> Result<()> {
    // Asking rayon for its thread count would start the default pool, so
    // build first and compare only if a pool exists already.
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build_global() {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == threads => Ok(()),
        Err(e) => Err(ExampleError::Threads { threads, reason: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    const D: Defaults = Defaults::new(3, 64, 0.05, OptimizerKind::Sgd, None);

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        try_parse_args_from(&D, std::iter::once("prog").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_fill_in_and_follow_the_precision() {
        let r = parse(&[]).unwrap().train.resolve(&D).unwrap();
        assert_eq!((r.epochs, r.batch_size, r.lr, r.optimizer), (3, 64, 0.05, OptimizerKind::Sgd));
        assert_eq!((r.precision, r.loss_scale, r.seed, r.json), (Precision::F32, LossScale::None, 1, false));
        let r = parse(&["--precision", "master-weights"]).unwrap().train.resolve(&D).unwrap();
        assert_eq!(r.loss_scale, LossScale::Dynamic);
        let r = parse(&["--precision", "autocast-bf16"]).unwrap().train.resolve(&D).unwrap();
        assert_eq!(r.loss_scale, LossScale::None);
        let r = parse(&["--precision", "O2", "--loss-scale", "static:1024", "--epochs", "7", "--optimizer", "adam"])
            .unwrap()
            .train
            .resolve(&D)
            .unwrap();
        assert_eq!((r.precision, r.loss_scale, r.epochs), (Precision::MasterWeights, LossScale::Static(1024.0), 7));
        assert_eq!(r.optimizer, OptimizerKind::Adam);
        assert_eq!((r.warmup_steps, r.clip_grad_norm), (0, None));
        let r = parse(&["--warmup-steps", "50", "--clip-grad-norm", "0.5"]).unwrap().train.resolve(&D).unwrap();
        assert_eq!((r.warmup_steps, r.clip_grad_norm), (50, Some(0.5)));
        let d = Defaults { clip_grad_norm: Some(1.0), ..D };
        let cli: Cli = try_parse_args_from(&d, ["prog", "--clip-grad-norm", "0"]).unwrap();
        assert_eq!(cli.train.resolve(&d).unwrap().clip_grad_norm, None);
        let cli: Cli = try_parse_args_from(&d, ["prog"]).unwrap();
        assert_eq!(cli.train.resolve(&d).unwrap().clip_grad_norm, Some(1.0));
    }

    #[test]
    fn bad_flags_are_errors_that_name_the_flag() {
        for (args, flag) in [
            (&["--precision", "fp8"][..], "--precision"),
            (&["--loss-scale", "static:0"], "--loss-scale"),
            (&["--loss-scale", "static:abc"], "--loss-scale"),
            (&["--loss-scale", "always"], "--loss-scale"),
            (&["--epochs", "0"], "--epochs"),
            (&["--batch-size", "0"], "--batch-size"),
            (&["--lr", "nan"], "--lr"),
            (&["--lr=-1"], "--lr"),
            (&["--optimizer", "lbfgs"], "--optimizer"),
            (&["--threads", "0"], "--threads"),
            (&["--clip-grad-norm=-1"], "--clip-grad-norm"),
            (&["--clip-grad-norm", "inf"], "--clip-grad-norm"),
            (&["--warmup-steps", "x"], "--warmup-steps"),
            (&["--seed", "x"], "--seed"),
            (&["--save-every", "0", "--save", "d"], "--save-every"),
            (&["--stop-after", "0"], "--stop-after"),
        ] {
            let err = parse(args).unwrap_err();
            use clap::error::ErrorKind;
            assert!(matches!(err.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue), "{args:?}: {err}");
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
        let err = parse(&["--frobnicate"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let err = parse(&["--save-every", "5"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument, "{err}");
        assert!(err.to_string().contains("--save"), "{err}");
    }

    #[test]
    fn checkpoint_flags() {
        assert_eq!(parse(&[]).unwrap().train.checkpointing(), Checkpointing::default());
        let c = parse(&["--save", "a", "--save-every", "50", "--resume", "b", "--stop-after", "7"])
            .unwrap()
            .train
            .checkpointing();
        assert_eq!(
            c,
            Checkpointing {
                save: Some("a".into()),
                save_every: Some(50),
                resume: Some("b".into()),
                stop_after: Some(7)
            }
        );
    }

    #[test]
    fn loss_scale_tokens_round_trip() {
        for s in ["none", "static:1024", "static:0.5", "dynamic", "stats"] {
            assert_eq!(s.parse::<LossScale>().unwrap().to_string(), s);
        }
        let err = "static:inf".parse::<LossScale>().unwrap_err();
        assert!(matches!(err, ExampleError::InvalidFlag { flag: "--loss-scale", .. }), "{err}");
    }

    #[test]
    fn pure_f16_with_loss_scaling_is_refused() {
        let cli = parse(&["--precision", "pure-f16", "--loss-scale", "dynamic"]).unwrap();
        let err = cli.train.resolve(&D).unwrap_err();
        assert!(matches!(err, ExampleError::InvalidFlag { flag: "--loss-scale", .. }), "{err}");
        let r = parse(&["--precision", "pure-f16"]).unwrap().train.resolve(&D).unwrap();
        assert_eq!(r.loss_scale, LossScale::None);
    }
}
