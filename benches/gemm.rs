//! GEMM throughput beside the peers, in FLOPs (criterion's "elements" are
//! floating-point operations, 2·m·n·k per product), on one thread and on all.
//!
//! Groups: `sgemm` (mixprec, the `gemm` crate, `matrixmultiply`, `faer`),
//! `hgemm` (mixprec's f16, the `gemm` crate's f16, mixprec's sgemm as the
//! reference row, and the first hgemm path the table does not install: the
//! in-register f16 kernel on AVX-512-FP16 CPUs, else the narrow dot kernel on
//! AVX-512) and `bgemm` (mixprec's bf16 beside its sgemm), each over the
//! square sizes 64…2048 and the 8 GEMMs of the MLP step with their real
//! transposes. Benchmark ids read `<implementation>/<threads>t/<MxKxN_TT>`.
//!
//! ```text
//! cargo bench --bench gemm                          # everything
//! cargo bench --bench gemm -- 'sgemm/.*/1t/1024x'   # a filter
//! cargo bench --features peer-gemm-x86-v4 --bench gemm   # the gemm crate's AVX-512 build
//! ```
//! `matrixmultiply` reads its thread count once per process, so this program
//! runs itself twice: once with one thread and once with all of them
//! (`MIXPREC_BENCH_THREADS=1` or `=all` runs only that half).
//! `examples/gemm_peak.rs` measures the same rows interleaved, with medians,
//! which is faster for comparing two implementations.

#[path = "gemm_peers/mod.rs"]
mod peers;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use peers::{Imp, MLP, Problem, SQUARES, Shape};

const THREADS_VAR: &str = "MIXPREC_BENCH_THREADS";

fn shapes() -> impl Iterator<Item = Shape> {
    SQUARES.into_iter().chain(MLP)
}

fn group(c: &mut Criterion, name: &str, imps: &[Imp], threads: usize) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for s in shapes() {
        let mut p = Problem::new(s);
        g.throughput(Throughput::Elements(s.flops() as u64));
        for &imp in imps {
            let id = BenchmarkId::new(format!("{}/{threads}t", imp.name()), s.label());
            g.bench_function(id, |b| {
                b.iter(|| {
                    peers::run(imp, &mut p, threads);
                    black_box(&p.c);
                })
            });
        }
    }
    g.finish();
}

fn benches(threads: usize) {
    // Each half is its own process, so the global pool can take its size.
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("rayon's global pool");
    let mut c = Criterion::default().configure_from_args();
    group(&mut c, "sgemm", &[Imp::Sgemm, Imp::PeerGemm, Imp::MatrixMultiply, Imp::Faer], threads);
    let mut h = vec![Imp::Hgemm, Imp::PeerGemmF16, Imp::Sgemm];
    if peers::alternative().is_some() {
        h.push(Imp::HgemmAlt);
    }
    group(&mut c, "hgemm", &h, threads);
    group(&mut c, "bgemm", &[Imp::Bgemm, Imp::Sgemm], threads);
    c.final_summary();
}

fn main() {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let halves: Vec<(&str, usize)> = match std::env::var(THREADS_VAR).ok().as_deref() {
        Some("1") => vec![("1", 1)],
        Some("all") => vec![("all", all)],
        Some(other) => panic!("{THREADS_VAR}={other}: expected 1 or all"),
        None if all > 1 => vec![("1", 1), ("all", all)],
        None => vec![("1", 1)],
    };
    if let [(_, threads)] = halves[..]
        && std::env::var("MATMUL_NUM_THREADS").ok() == Some(threads.to_string())
    {
        return benches(threads);
    }
    for (half, threads) in halves {
        let status = std::process::Command::new(std::env::current_exe().expect("this program's path"))
            .args(std::env::args().skip(1))
            .env(THREADS_VAR, half)
            .env("MATMUL_NUM_THREADS", threads.to_string())
            .status()
            .expect("run the benchmark half");
        if !status.success() {
            std::process::exit(status.code().unwrap_or(1));
        }
    }
}
