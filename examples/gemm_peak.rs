//! This machine's f32 FMA peak and AVX-512-BF16 dot-product peak, measured
//! with register-resident loops; the detected caches and the block sizes GEMM
//! chooses; and, with `--compare`, GEMM throughput beside the peers with
//! interleaved repetitions and medians, as fractions of the peak measured in
//! the same run.
//!
//! ```text
//! cargo run --release --example gemm_peak -- [--compare sgemm|hgemm|bgemm]
//!     [--shapes squares|mlp|all|S|MxKxN[:TT]] [--threads N] [--reps R] [--min-ms T] [--best]
//! ```
//! `MxKxN:NT` means op(A) = A, op(B) = Bᵀ. With `--features peer-gemm-x86-v4`
//! the `gemm` crate peer is built with its AVX-512 kernels.

#[path = "../benches/gemm_peers/mod.rs"]
mod peers;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};

use mixprec::kernels::gemm::{self, Blocking, peak};
use mixprec::kernels::{Isa, table};
use peers::{Imp, MLP, Problem, SQUARES, Shape};

/// Which product `--compare` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Op {
    Sgemm,
    Hgemm,
    Bgemm,
}

#[derive(Parser, Debug)]
#[command(about = "The FMA and bf16 dot-product peaks, GEMM blocking, and GEMM throughput beside the peers")]
struct Opts {
    /// Time this product beside its peers (interleaved repetitions, medians).
    #[arg(long, value_enum)]
    compare: Option<Op>,
    /// Comma-separated: `squares`, `mlp`, `all`, a size `S` (S×S×S) or `MxKxN[:TT]` (TT in N/T: op(A), op(B)).
    #[arg(long, value_parser = parse_shapes, default_value = "1024")]
    shapes: ShapeList,
    /// Threads of the rayon pool the products run on.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
    /// Interleaved repetitions per implementation (the median is reported).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
    /// Minimum milliseconds per timed sample (calls are repeated to reach it).
    #[arg(long, default_value_t = 30.0, value_parser = positive_ms)]
    min_ms: f64,
    /// Report the fastest sample instead of the median: on a machine shared
    /// with other work, the fastest of many short interleaved samples is the
    /// one least disturbed by it.
    #[arg(long)]
    best: bool,
}

#[derive(Clone, Debug)]
struct ShapeList(Vec<Shape>);

fn positive_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of milliseconds")),
    }
}

fn parse_dim(item: &str, d: &str) -> Result<usize, String> {
    match d.parse::<usize>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("shape `{item}`: `{d}` is not a positive size")),
    }
}

fn parse_shapes(spec: &str) -> Result<ShapeList, String> {
    let mut out = Vec::new();
    for item in spec.split(',') {
        match item {
            "squares" => out.extend(SQUARES),
            "mlp" => out.extend(MLP),
            "all" => out.extend(SQUARES.iter().chain(MLP.iter())),
            _ => {
                let (dims, tt) = item.split_once(':').unwrap_or((item, "NN"));
                let d = dims.split('x').map(|x| parse_dim(item, x)).collect::<Result<Vec<_>, _>>()?;
                let (m, k, n) = match d[..] {
                    [s] => (s, s, s),
                    [m, k, n] => (m, k, n),
                    _ => return Err(format!("shape `{item}`: expected S or MxKxN[:TT]")),
                };
                let t = |c: u8| match c {
                    b'N' => Ok(gemm::Transpose::No),
                    b'T' => Ok(gemm::Transpose::Yes),
                    _ => Err(format!("shape `{item}`: transposes `{tt}` must be two of N and T")),
                };
                let (ta, tb) = match tt.as_bytes() {
                    &[a, b] => (t(a)?, t(b)?),
                    _ => return Err(format!("shape `{item}`: transposes `{tt}` must be two of N and T")),
                };
                out.push(Shape { name: "custom", ta, tb, m, k, n });
            }
        }
    }
    Ok(ShapeList(out))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let o = Opts::parse();
    // matrixmultiply reads its thread count once per process from the
    // environment: run again with it set.
    if o.compare.is_some() && std::env::var("MATMUL_NUM_THREADS").ok() != Some(o.threads.to_string()) {
        let status = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("MATMUL_NUM_THREADS", o.threads.to_string())
                .status()
        });
        return match status {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("gemm_peak: could not re-run itself with MATMUL_NUM_THREADS set: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match rayon::ThreadPoolBuilder::new().num_threads(o.threads as usize).build() {
        Ok(pool) => {
            pool.install(|| report(&o));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gemm_peak: could not start {} threads: {e}", o.threads);
            ExitCode::FAILURE
        }
    }
}

fn report(o: &Opts) {
    let caches = gemm::detected_caches();
    println!("caches: L1d {} KiB, L2 {} KiB, L3 {} KiB", caches.l1d >> 10, caches.l2 >> 10, caches.l3 >> 10);
    for isa in Isa::available() {
        let t = &table(isa).unwrap().gemm;
        for (op, shape) in [("sgemm", t.sgemm.shape()), ("hgemm", t.hgemm.shape()), ("bgemm", t.bgemm.shape())] {
            let b = Blocking::new(shape, caches);
            println!(
                "{isa:>10} {op}: MR {} NR {} KC {} MC {} NC {} (depth per packed element {})",
                b.mr, b.nr, b.kc, b.mc, b.nc, shape.kpack
            );
        }
    }
    let fma = [peak::Loop::FmaYmm, peak::Loop::FmaZmm].iter().filter_map(|&l| peak::gflops(l, 5)).fold(0.0, f64::max);
    let dot = peak::gflops(peak::Loop::DpBf16, 5);
    println!("peak f32 FMA: {fma:.1} GFLOP/s per core");
    match dot {
        Some(d) => println!("peak bf16 dot product (vdpbf16ps): {d:.1} GFLOP/s per core"),
        None => println!("peak bf16 dot product: this CPU has no AVX-512-BF16"),
    }
    let Some(op) = o.compare else { return };
    let mut imps: Vec<Imp> = match op {
        Op::Sgemm => vec![Imp::Sgemm, Imp::PeerGemm, Imp::MatrixMultiply, Imp::Faer],
        Op::Hgemm => vec![Imp::Hgemm, Imp::Sgemm, Imp::PeerGemmF16],
        Op::Bgemm => vec![Imp::Bgemm, Imp::Sgemm],
    };
    // The first hgemm path the table does not install (on AVX-512-FP16 CPUs
    // the in-register f16 kernel, else on AVX-512 the path without the narrow dot kernel).
    if op == Op::Hgemm
        && let Some((name, _)) = peers::alternative()
    {
        println!("alternative hgemm path measured as mixprec_hgemm_alt: {name}");
        imps.push(Imp::HgemmAlt);
    }
    let peak_ref = if op == Op::Bgemm { dot.unwrap_or(fma) } else { fma } * f64::from(o.threads);
    let op = format!("{op:?}").to_lowercase();
    println!(
        "\n{op}, {} thread(s), {} of {} interleaved repetitions (GFLOP/s; ratio = {} / other; peak = {peak_ref:.1})",
        o.threads,
        if o.best { "fastest" } else { "median" },
        o.reps,
        imps[0].name()
    );
    for &s in &o.shapes.0 {
        let mut p = Problem::new(s);
        // Calibrate: calls per timed sample so each takes at least min_ms.
        let calls: Vec<usize> = imps
            .iter()
            .map(|&imp| {
                peers::run(imp, &mut p, o.threads as usize);
                let t = Instant::now();
                peers::run(imp, &mut p, o.threads as usize);
                let one = t.elapsed().as_secs_f64().max(1e-7);
                ((o.min_ms / 1e3 / one).ceil() as usize).max(1)
            })
            .collect();
        let mut samples = vec![Vec::new(); imps.len()];
        for _ in 0..o.reps {
            for (i, &imp) in imps.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..calls[i] {
                    peers::run(imp, &mut p, o.threads as usize);
                }
                samples[i].push(t.elapsed().as_secs_f64() / calls[i] as f64);
            }
        }
        let gf: Vec<f64> = samples
            .iter_mut()
            .map(|v| s.flops() / if o.best { v.iter().copied().fold(f64::INFINITY, f64::min) } else { median(v) } / 1e9)
            .collect();
        let mut line = format!("{:>8} {:<18}", s.name, s.label());
        for (imp, g) in imps.iter().zip(&gf) {
            line += &format!(" {}={g:.1}", imp.name());
        }
        line += &format!(" | of peak {:.3}", gf[0] / peak_ref);
        for (imp, g) in imps.iter().zip(&gf).skip(1) {
            line += &format!(" vs_{}={:.3}", imp.name(), gf[0] / g);
        }
        println!("{line}");
    }
}
