//! This machine's f32 FMA peak and AVX-512-BF16 dot-product peak, measured
//! with register-resident loops; the detected caches and the block sizes GEMM
//! chooses; and, with `--compare`, GEMM throughput beside the peers with
//! interleaved repetitions and medians, as fractions of the peak measured in
//! the same run.
//!
//! ```text
//! cargo run --release --example gemm_peak -- [--compare sgemm|hgemm|bgemm]
//!     [--shapes squares|mlp|all|S|MxKxN[:TT]] [--threads N] [--reps R] [--min-ms T]
//! ```
//! `MxKxN:NT` means op(A) = A, op(B) = Bᵀ. With `--features peer-gemm-x86-v4`
//! the `gemm` crate peer is built with its AVX-512 kernels.

#[path = "../benches/gemm_peers/mod.rs"]
mod peers;

use std::time::Instant;

use mixprec::kernels::gemm::{self, Blocking, peak};
use mixprec::kernels::{Isa, table};
use peers::{Imp, MLP, Problem, SQUARES, Shape};

struct Opts {
    compare: Option<String>,
    shapes: Vec<Shape>,
    threads: usize,
    reps: usize,
    min_ms: f64,
}

fn parse_shapes(spec: &str) -> Vec<Shape> {
    let t = |c: u8| if c == b'T' { gemm::Transpose::Yes } else { gemm::Transpose::No };
    spec.split(',')
        .flat_map(|item| match item {
            "squares" => SQUARES.to_vec(),
            "mlp" => MLP.to_vec(),
            "all" => SQUARES.iter().chain(MLP.iter()).copied().collect(),
            _ => {
                let (dims, tt) = item.split_once(':').unwrap_or((item, "NN"));
                let d: Vec<usize> = dims.split('x').map(|x| x.parse().expect("shape: MxKxN")).collect();
                let (m, k, n) = match d[..] {
                    [s] => (s, s, s),
                    [m, k, n] => (m, k, n),
                    _ => panic!("shape `{item}`: expected S or MxKxN[:TT]"),
                };
                let tt = tt.as_bytes();
                vec![Shape { name: "custom", ta: t(tt[0]), tb: t(tt[1]), m, k, n }]
            }
        })
        .collect()
}

fn opts() -> Opts {
    let mut o = Opts { compare: None, shapes: vec![SQUARES[4]], threads: 1, reps: 7, min_ms: 30.0 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--compare" => o.compare = Some(val()),
            "--shapes" => o.shapes = parse_shapes(&val()),
            "--threads" => o.threads = val().parse().expect("--threads N"),
            "--reps" => o.reps = val().parse().expect("--reps R"),
            "--min-ms" => o.min_ms = val().parse().expect("--min-ms T"),
            other => panic!("unknown argument `{other}`"),
        }
    }
    o
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let o = opts();
    // matrixmultiply reads its thread count once per process from the
    // environment: run again with it set.
    if o.compare.is_some() && std::env::var("MATMUL_NUM_THREADS").ok() != Some(o.threads.to_string()) {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .env("MATMUL_NUM_THREADS", o.threads.to_string())
            .status()
            .expect("re-run");
        std::process::exit(status.code().unwrap_or(1));
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(o.threads).build().unwrap();
    pool.install(|| report(&o));
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
    let Some(op) = o.compare.as_deref() else { return };
    let mut imps: Vec<Imp> = match op {
        "sgemm" => vec![Imp::Sgemm, Imp::PeerGemm, Imp::MatrixMultiply, Imp::Faer],
        "hgemm" => vec![Imp::Hgemm, Imp::Sgemm, Imp::PeerGemmF16],
        "bgemm" => vec![Imp::Bgemm, Imp::Sgemm],
        other => panic!("--compare {other}: expected sgemm, hgemm or bgemm"),
    };
    // On AVX-512-FP16 CPUs, the in-register f16 kernel the table does not install.
    if op == "hgemm"
        && let Some((name, _)) = peers::alternative()
    {
        println!("alternative hgemm path measured as mixprec_hgemm_f16panels: {name}");
        imps.push(Imp::HgemmAlt);
    }
    let peak_ref = if op == "bgemm" { dot.unwrap_or(fma) } else { fma } * o.threads as f64;
    println!(
        "\n{op}, {} thread(s), median of {} interleaved repetitions (GFLOP/s; ratio = {} / other; peak = {peak_ref:.1})",
        o.threads,
        o.reps,
        imps[0].name()
    );
    for &s in &o.shapes {
        let mut p = Problem::new(s);
        // Calibrate: calls per timed sample so each takes at least min_ms.
        let calls: Vec<usize> = imps
            .iter()
            .map(|&imp| {
                peers::run(imp, &mut p, o.threads);
                let t = Instant::now();
                peers::run(imp, &mut p, o.threads);
                let one = t.elapsed().as_secs_f64().max(1e-7);
                ((o.min_ms / 1e3 / one).ceil() as usize).max(1)
            })
            .collect();
        let mut samples = vec![Vec::new(); imps.len()];
        for _ in 0..o.reps {
            for (i, &imp) in imps.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..calls[i] {
                    peers::run(imp, &mut p, o.threads);
                }
                samples[i].push(t.elapsed().as_secs_f64() / calls[i] as f64);
            }
        }
        let gf: Vec<f64> = samples.iter_mut().map(|v| s.flops() / median(v) / 1e9).collect();
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
