//! The paper's comparisons on real MNIST in one run (Micikevicius et al.,
//! "Mixed Precision Training", ICLR 2018): FP32, pure FP16, master weights
//! without loss scaling, with a static, dynamic and statistics-driven
//! scale, and BF16; a table, one JSON record per configuration, and the
//! figures.
//!
//! ```text
//! cargo run --release --example reproduce                # 3 seeds × 2 epochs, ≈ 2 min on 2 cores
//! cargo run --release --example reproduce -- --full      # 3 seeds × 10 epochs
//! ```
//!
//! Writes into `--out` (default `reproduce-out/`): `loss_curves.{png,svg}`,
//! `activation_gradients.{png,svg}` and `weight_gradients.{png,svg}`
//! (log2 histograms of the FP32 model's gradients with f16's smallest
//! normal 2^-14 and smallest subnormal 2^-24 marked, as the paper's
//! Figures 2b and 3), and `loss_scale_sweep.{png,svg}` (the fraction of
//! activation gradients an f16 cast flushes to zero at scales 1 to 2^16,
//! with the dynamic scaler's final scale marked).

use std::path::PathBuf;

use clap::Parser;
use mixprec::amp::{F16Underflow, Precision};
use mixprec::data::{Mnist, Normalize, load_mnist};
use mixprec::tensor::DType;
use mixprec_train::plot::{Chart, Log2Histogram, Series};
use mixprec_train::record::finite;
use mixprec_train::tasks::MnistMlp;
use mixprec_train::{BytesByDtype, ExampleError, LossScale, OptimizerKind, Record, Resolved, Result};

/// Reproduces the paper's comparisons on MNIST (DESIGN.md's MLP).
///
/// Every configuration uses the same recipe: SGD with momentum 0.9, lr 0.004
/// with a cosine decay to 0, batch 128. The learning rate is small so that
/// updates are small against their weights: one below half an f16 ulp of
/// its weight (2^-12 to 2^-11 of it) rounds away in pure FP16, the paper's
/// case for FP32 master weights; with this recipe pure FP16 falls behind
/// FP32 and the master-weight modes track it (docs/results.md). Defaults:
/// 2 epochs per run, seeds 1,2,3 (about 2 minutes on 2 cores); --full: 10
/// epochs per run.
#[derive(Parser, Debug)]
#[command(name = "reproduce")]
struct Cli {
    /// Epochs per run [default: 2, or 10 with --full]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: Option<u64>,
    /// The full recipe: 10 epochs per run
    #[arg(long)]
    full: bool,
    /// Seeds, comma separated
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Peak learning rate
    #[arg(long, default_value_t = 0.004)]
    lr: f64,
    /// Examples per step
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Stop each run after this many steps (quick checks, tests)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    steps: Option<u64>,
    /// Worker threads [default: all cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// MNIST directory (the four IDX files, .gz or not) [default: the shipped copy]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where the figures go
    #[arg(long, default_value = "reproduce-out")]
    out: PathBuf,
    /// One JSON record per configuration as the last lines of stdout
    /// (accuracy and loss: means over the seeds; steps, seconds, skipped
    /// steps: totals; peaks: maxima; seed and final scale: the first seed's)
    #[arg(long)]
    json: bool,
}

/// The configurations compared, in the paper's order.
const ROWS: [(&str, Precision, LossScale); 7] = [
    ("FP32", Precision::F32, LossScale::None),
    ("pure FP16", Precision::PureF16, LossScale::None),
    ("mixed, no scaling", Precision::MasterWeights, LossScale::None),
    ("mixed, static 1024", Precision::MasterWeights, LossScale::Static(1024.0)),
    ("mixed, dynamic", Precision::MasterWeights, LossScale::Dynamic),
    ("mixed, stats", Precision::MasterWeights, LossScale::Stats),
    ("BF16 mixed", Precision::MasterWeightsBf16, LossScale::None),
];

/// The static scales of the sweep.
const SWEEP: [f32; 5] = [1.0, 8.0, 128.0, 1024.0, 65536.0];

fn main() -> std::process::ExitCode {
    mixprec_train::exit_with(run(&Cli::parse()))
}

struct RowResult {
    label: &'static str,
    records: Vec<Record>,
    /// Seed 1's loss per step.
    losses: Vec<f64>,
}

fn run(cli: &Cli) -> Result<()> {
    if cli.seeds.is_empty() {
        return Err(ExampleError::InvalidFlag { flag: "--seeds", value: String::new(), reason: "no seed".into() });
    }
    if !(cli.lr.is_finite() && cli.lr > 0.0) {
        return Err(ExampleError::InvalidFlag {
            flag: "--lr",
            value: cli.lr.to_string(),
            reason: "must be finite and positive".into(),
        });
    }
    let threads =
        cli.threads.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |t| t as usize);
    mixprec_train::args::init_threads(threads)?;
    let mnist = match &cli.data {
        Some(dir) => load_mnist(dir)?,
        None => Mnist::shipped()?,
    };
    std::fs::create_dir_all(&cli.out)
        .map_err(|e| ExampleError::Output { path: cli.out.clone(), reason: e.to_string() })?;
    let epochs = cli.epochs.unwrap_or(if cli.full { 10 } else { 2 }) as usize;
    let start = std::time::Instant::now();
    let mut rows = Vec::new();
    let mut gradients = None;
    for (label, precision, loss_scale) in ROWS {
        let mut row = RowResult { label, records: Vec::new(), losses: Vec::new() };
        for (i, &seed) in cli.seeds.iter().enumerate() {
            let opts = Resolved {
                precision,
                loss_scale,
                epochs,
                batch_size: cli.batch_size as usize,
                lr: cli.lr,
                optimizer: OptimizerKind::Sgd,
                threads,
                seed,
                data: cli.data.clone(),
                max_steps: cli.steps.map(|s| s as usize),
                warmup_steps: 0,
                clip_grad_norm: None,
                json: true,
            };
            let mut task = MnistMlp::new(&mnist, seed)?;
            let outcome = mixprec_train::run(&mut task, &opts)?;
            if !cli.json {
                eprintln!(
                    "{label:20} seed {seed}: test accuracy {:.2}%, {:.1} s",
                    outcome.record.test_accuracy.unwrap_or(f64::NAN) * 100.0,
                    outcome.record.seconds
                );
            }
            if i == 0 {
                row.losses = outcome.losses;
                if precision == Precision::F32 {
                    gradients = Some(fp32_gradients(&task, &mnist)?);
                }
            }
            row.records.push(outcome.record);
        }
        rows.push(row);
    }
    let (activation, weight) = gradients.unwrap_or_default();
    let dynamic_scale = rows
        .iter()
        .find(|r| r.label == "mixed, dynamic")
        .and_then(|r| r.records[0].final_loss_scale)
        .unwrap_or(65536.0);
    let sweep = write_figures(cli, &rows, &activation, &weight, dynamic_scale as f32)?;
    print_table(&rows);
    println!();
    println!("Activation gradients of the FP32 model (seed {}, 4 batches) cast to f16:", cli.seeds[0]);
    for (scale, c) in &sweep {
        println!(
            "  scale {:>9}: {:6.3}% of the nonzero values flush to zero, {:6.3}% become subnormal",
            scale,
            c.zero_fraction() * 100.0,
            c.subnormal as f64 / c.nonzero.max(1) as f64 * 100.0
        );
    }
    let w = F16Underflow::count(&weight, 1.0);
    println!(
        "Weight gradients at scale 1: {:.3}% flush to zero, {:.3}% subnormal.",
        w.zero_fraction() * 100.0,
        w.subnormal as f64 / w.nonzero.max(1) as f64 * 100.0
    );
    println!("Figures in {} ({:.0} s in all).", cli.out.display(), start.elapsed().as_secs_f64());
    if cli.json {
        for r in &rows {
            println!("{}", row_record(&r.records).to_json());
        }
    }
    Ok(())
}

/// Activation and weight gradients of the trained FP32 model on 4 test
/// batches of 128.
fn fp32_gradients(task: &MnistMlp<'_>, mnist: &Mnist) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut activation, mut weight) = (Vec::new(), Vec::new());
    for b in 0..4 {
        let indices: Vec<usize> = (b * 128..(b + 1) * 128).collect();
        let batch = mnist.test.batch(&indices, DType::F32, Normalize::MNIST)?;
        let x = batch.inputs.reshape(&[indices.len(), 784])?;
        let (a, w) = task.model.gradients(&x, &batch.targets)?;
        activation.extend(a);
        weight.extend(w);
    }
    Ok((activation, weight))
}

fn f16_limits() -> Vec<(f64, String)> {
    vec![
        (-24.0, "f16 smallest subnormal 2^-24".to_string()),
        (-14.0, "f16 smallest normal 2^-14".to_string()),
        (15.999, "f16 largest 65504".to_string()),
    ]
}

fn histogram_chart(title: &str, values: &[f32], scales: &[(f32, &str)]) -> Chart {
    let series = scales
        .iter()
        .map(|&(s, name)| {
            let mut h = Log2Histogram::new(-40, 17);
            h.add(values, f64::from(s));
            Series { name: name.to_string(), points: h.points() }
        })
        .collect();
    Chart {
        title: title.to_string(),
        x_label: "log2 |gradient|".to_string(),
        y_label: "fraction of values".to_string(),
        log_y: true,
        series,
        markers: f16_limits(),
    }
}

fn write_figures(
    cli: &Cli,
    rows: &[RowResult],
    activation: &[f32],
    weight: &[f32],
    dynamic_scale: f32,
) -> Result<Vec<(String, F16Underflow)>> {
    let window = 20;
    let curves = rows
        .iter()
        .map(|r| Series {
            name: r.label.to_string(),
            points: r
                .losses
                .chunks(window)
                .enumerate()
                .map(|(i, c)| ((i * window + c.len() / 2) as f64, c.iter().sum::<f64>() / c.len() as f64))
                .collect(),
        })
        .collect();
    Chart {
        title: "Training loss on MNIST (MLP 784-512-512-10)".to_string(),
        x_label: format!("step (mean over {window} steps)"),
        y_label: "cross-entropy loss".to_string(),
        log_y: true,
        series: curves,
        markers: Vec::new(),
    }
    .write(&cli.out.join("loss_curves"))?;
    histogram_chart(
        "Activation gradients of the FP32 model",
        activation,
        &[(1.0, "scale 1"), (dynamic_scale, "dynamic scale")],
    )
    .write(&cli.out.join("activation_gradients"))?;
    histogram_chart("Weight gradients of the FP32 model", weight, &[(1.0, "scale 1")])
        .write(&cli.out.join("weight_gradients"))?;
    let mut sweep: Vec<(String, F16Underflow)> =
        SWEEP.iter().map(|&s| (format!("{s}"), F16Underflow::count(activation, s))).collect();
    sweep.push((format!("dynamic ({dynamic_scale})"), F16Underflow::count(activation, dynamic_scale)));
    let frac = |f: &dyn Fn(&F16Underflow) -> f64| {
        SWEEP.iter().zip(&sweep).map(|(&s, (_, c))| (f64::from(s).log2(), f(c))).collect::<Vec<_>>()
    };
    Chart {
        title: "Loss-scale sweep: activation gradients lost in f16".to_string(),
        x_label: "log2 loss scale".to_string(),
        y_label: "fraction of nonzero gradients".to_string(),
        log_y: false,
        series: vec![
            Series { name: "flushed to zero".to_string(), points: frac(&|c| c.zero_fraction()) },
            Series { name: "subnormal".to_string(), points: frac(&|c| c.subnormal as f64 / c.nonzero.max(1) as f64) },
        ],
        markers: vec![(f64::from(dynamic_scale).log2(), format!("dynamic scaler's final scale {dynamic_scale}"))],
    }
    .write(&cli.out.join("loss_scale_sweep"))?;
    Ok(sweep)
}

/// One configuration's record (same schema as a run's) from its runs, one
/// per seed: `seed` and `final_loss_scale` are the first run's; `steps`,
/// `seconds` and `skipped_steps` are totals over the runs (so
/// `steps_per_second` stays their ratio); `final_train_loss` and
/// `test_accuracy` are means; the peaks are maxima.
fn row_record(records: &[Record]) -> Record {
    let mut row = records[0].clone();
    let mean = |f: &dyn Fn(&Record) -> Option<f64>| {
        let v: Vec<f64> = records.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| mean_sd(&v).0)
    };
    row.final_train_loss = mean(&|r| r.final_train_loss);
    row.test_accuracy = mean(&|r| r.test_accuracy);
    row.val_loss_nats = mean(&|r| r.val_loss_nats);
    row.perplexity = row.val_loss_nats.map(f64::exp);
    row.steps = records.iter().map(|r| r.steps).sum();
    row.seconds = records.iter().map(|r| r.seconds).sum();
    row.steps_per_second = finite(row.steps as f64 / row.seconds);
    row.skipped_steps = records.iter().map(|r| r.skipped_steps).sum();
    row.peak_tensor_bytes = records.iter().map(|r| r.peak_tensor_bytes).max().unwrap_or(0);
    row.peak_activation_bytes = records.iter().map(|r| r.peak_activation_bytes).max().unwrap_or(0);
    let by = |f: &dyn Fn(&Record) -> u64| records.iter().map(f).max().unwrap_or(0);
    row.peak_tensor_bytes_by_dtype = BytesByDtype {
        f32: by(&|r| r.peak_tensor_bytes_by_dtype.f32),
        f16: by(&|r| r.peak_tensor_bytes_by_dtype.f16),
        bf16: by(&|r| r.peak_tensor_bytes_by_dtype.bf16),
    };
    row
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (m, var.sqrt())
}

fn print_table(rows: &[RowResult]) {
    println!(
        "| configuration | precision | loss scale | test accuracy (mean ± sd over seeds) | final loss | skipped steps | final scale | ms/step | peak tensor MiB | peak activation MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let get = |f: &dyn Fn(&Record) -> Option<f64>| r.records.iter().filter_map(f).collect::<Vec<_>>();
        let (acc, acc_sd) = mean_sd(&get(&|x| x.test_accuracy));
        let (loss, _) = mean_sd(&get(&|x| x.final_train_loss));
        let skipped: u64 = r.records.iter().map(|x| x.skipped_steps).sum();
        let scale = r.records[0].final_loss_scale.map_or_else(|| "-".to_string(), |s| format!("{s}"));
        let (ms, _) = mean_sd(&get(&|x| x.steps_per_second.map(|s| 1000.0 / s)));
        let (mib, _) = mean_sd(&get(&|x| Some(x.peak_tensor_bytes as f64 / 1048576.0)));
        let (act, _) = mean_sd(&get(&|x| Some(x.peak_activation_bytes as f64 / 1048576.0)));
        println!(
            "| {} | {} | {} | {:.2}% ± {:.2} | {:.4} | {} | {} | {:.2} | {:.1} | {:.1} |",
            r.label,
            r.records[0].precision,
            r.records[0].loss_scale,
            acc * 100.0,
            acc_sd * 100.0,
            loss,
            skipped,
            scale,
            ms,
            mib,
            act
        );
    }
}
