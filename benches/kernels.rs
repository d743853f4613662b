//! Kernel benchmarks: one row per ISA path the host can run (and each path
//! with its sub-features masked, e.g. `avx512[-bf16]`), next to peers built
//! for the default target like us: `half`'s slice conversions, and
//! `copy_nonoverlapping` of as many bytes as the kernel reads and writes (the
//! bandwidth reference). One thread. Throughput is in elements; a row's bytes
//! per second are its elements per second times the bytes it moves per
//! element (docs/kernels.md gives both).
//!
//! `cargo bench --bench kernels -- <filter>`; the sizes span L2 (64K), L3
//! (1M) and DRAM (16M elements).

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use mixprec_kernels::{FeatureMask, Isa, Kernels, features, table, table_masked};

const SIZES: [usize; 3] = [1 << 16, 1 << 20, 1 << 24];

/// Every path the host can run, plus avx512 without BF16 and neon without
/// FP16/FHM where the CPU has those (the paths other CPUs take).
fn paths() -> Vec<&'static Kernels> {
    let f = features();
    let mut out = Vec::new();
    for isa in Isa::available() {
        out.push(table(isa).unwrap());
        let mask = match isa {
            Isa::Avx512 if f.bf16 => FeatureMask { no_bf16: true, ..FeatureMask::NONE },
            Isa::Neon if f.fp16 => FeatureMask { no_fp16: true, no_fhm: true, ..FeatureMask::NONE },
            _ => continue,
        };
        out.extend(table_masked(isa, mask));
    }
    out
}

/// Values a network would hold: spread over many binades, no NaN.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            (u - 0.5) * 2.0f32.powi(((s >> 20) % 24) as i32 - 12)
        })
        .collect()
}

fn config(g: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    g.throughput(Throughput::Elements(n as u64));
    if n >= 1 << 22 {
        g.sample_size(15).warm_up_time(Duration::from_millis(700)).measurement_time(Duration::from_secs(2));
    } else {
        g.sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(1));
    }
}

/// The bandwidth reference: copy `bytes` bytes (read + written = 2·bytes).
fn copy_row(g: &mut BenchmarkGroup<'_, WallTime>, n: usize, bytes: usize) {
    let src = vec![0x5Au8; bytes];
    let mut dst = vec![0u8; bytes];
    g.bench_function(BenchmarkId::new("copy_nonoverlapping", n), |b| {
        b.iter(|| {
            // SAFETY: two distinct allocations of `bytes` bytes each.
            unsafe { std::ptr::copy_nonoverlapping(black_box(src.as_ptr()), dst.as_mut_ptr(), bytes) };
            black_box(&mut dst);
        })
    });
}

fn casts(c: &mut Criterion) {
    for &n in &SIZES {
        let x = values(n, 1);
        let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let bh: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        let mut out32 = vec![0.0f32; n];
        let mut out16 = vec![f16::ZERO; n];
        let mut outb16 = vec![bf16::ZERO; n];

        let mut g = c.benchmark_group("cast_f32_to_f16");
        config(&mut g, n);
        for k in paths() {
            g.bench_function(BenchmarkId::new(k.label(), n), |b| {
                b.iter(|| (k.convert.f32_to_f16.f)(black_box(&x), &mut out16))
            });
        }
        g.bench_function(BenchmarkId::new("half", n), |b| b.iter(|| out16.convert_from_f32_slice(black_box(&x))));
        copy_row(&mut g, n, n * 3);
        g.finish();

        let mut g = c.benchmark_group("cast_f16_to_f32");
        config(&mut g, n);
        for k in paths() {
            g.bench_function(BenchmarkId::new(k.label(), n), |b| {
                b.iter(|| (k.convert.f16_to_f32.f)(black_box(&h), &mut out32))
            });
        }
        g.bench_function(BenchmarkId::new("half", n), |b| b.iter(|| black_box(&h).convert_to_f32_slice(&mut out32)));
        copy_row(&mut g, n, n * 3);
        g.finish();

        let mut g = c.benchmark_group("cast_f32_to_bf16");
        config(&mut g, n);
        for k in paths() {
            g.bench_function(BenchmarkId::new(k.label(), n), |b| {
                b.iter(|| (k.convert.f32_to_bf16.f)(black_box(&x), &mut outb16))
            });
        }
        g.bench_function(BenchmarkId::new("half", n), |b| b.iter(|| outb16.convert_from_f32_slice(black_box(&x))));
        copy_row(&mut g, n, n * 3);
        g.finish();

        let mut g = c.benchmark_group("cast_bf16_to_f32");
        config(&mut g, n);
        for k in paths() {
            g.bench_function(BenchmarkId::new(k.label(), n), |b| {
                b.iter(|| (k.convert.bf16_to_f32.f)(black_box(&bh), &mut out32))
            });
        }
        g.bench_function(BenchmarkId::new("half", n), |b| b.iter(|| black_box(&bh).convert_to_f32_slice(&mut out32)));
        copy_row(&mut g, n, n * 3);
        g.finish();
    }
}

fn amp(c: &mut Criterion) {
    let n = 1 << 20;
    let x = values(n, 2);
    let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let mut g32 = x.clone();
    let mut out32 = vec![0.0f32; n];
    let mut out16 = vec![f16::ZERO; n];
    let mut g = c.benchmark_group("amp");
    config(&mut g, n);
    for k in paths() {
        let l = k.label();
        g.bench_function(BenchmarkId::new(format!("unscale_and_check/{l}"), n), |b| {
            b.iter(|| (k.amp.unscale_and_check.f)(&mut g32, black_box(1.0)))
        });
        g.bench_function(BenchmarkId::new(format!("unscale_and_check_f16/{l}"), n), |b| {
            b.iter(|| (k.amp.unscale_and_check_f16.f)(black_box(&h), 0.5, &mut out32))
        });
        g.bench_function(BenchmarkId::new(format!("has_non_finite/{l}"), n), |b| {
            b.iter(|| (k.amp.has_non_finite.f)(black_box(&x)))
        });
        g.bench_function(BenchmarkId::new(format!("master_to_f16/{l}"), n), |b| {
            b.iter(|| (k.amp.master_to_f16.f)(black_box(&x), &mut out16))
        });
        g.bench_function(BenchmarkId::new(format!("sum_squares/{l}"), n), |b| {
            b.iter(|| (k.amp.sum_squares.f)(black_box(&[&x[..n / 2], &x[n / 2..]])))
        });
    }
    g.finish();
}

criterion_group!(benches, casts, amp);
criterion_main!(benches);
