//! Kernel benchmarks: one row per ISA path the host can run (and each path
//! with its sub-features masked, e.g. `avx512[-bf16]`), next to peers built
//! for the default target like us: `half`'s slice conversions, and
//! `copy_nonoverlapping` of as many bytes as the kernel reads and writes (the
//! bandwidth reference). One thread. Throughput is in elements, except the
//! optimizer group (bytes read + written); a cast row's bytes per second are
//! its elements per second times the bytes it moves per element
//! (docs/kernels.md gives both).
//!
//! `cargo bench --bench kernels -- <filter>`; cast sizes span L2 (64K), L3
//! (1M) and DRAM (16M elements). Groups: `cast_*`, `amp`, `ew/*`,
//! `reduce/*`, `max_pool2x2/*`, `log_softmax_rows_1024`, `cross_entropy/*`,
//! `optim/1M`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use mixprec_kernels::ew::{BinaryOp, GradOp, Operand, UnaryOp};
use mixprec_kernels::optim::{Adam, Sgd};
use mixprec_kernels::reduce::{ReduceOp, SoftmaxOp};
use mixprec_kernels::slice::{Dst, Src};
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
        g.bench_function(BenchmarkId::new(format!("max_abs_finite_f16/{l}"), n), |b| {
            b.iter(|| (k.amp.max_abs_finite.f)(Src::F16(black_box(&h))))
        });
    }
    g.finish();
}

/// Elementwise rows: f32 and f16 operands (f16 results for f16), 64K and 1M elements.
fn elementwise(c: &mut Criterion) {
    for &n in &[1usize << 16, 1 << 20] {
        let a = values(n, 3);
        let b = values(n, 4);
        let ah: Vec<f16> = a.iter().map(|&v| f16::from_f32(v)).collect();
        let bh: Vec<f16> = b.iter().map(|&v| f16::from_f32(v)).collect();
        let (mut o32, mut o16) = (vec![0.0f32; n], vec![f16::ZERO; n]);
        let mut g = c.benchmark_group(format!("ew/{}", if n < 1 << 20 { "64K" } else { "1M" }));
        config(&mut g, n);
        for k in paths() {
            let l = k.label();
            g.bench_function(format!("add_f32/{l}"), |bch| {
                bch.iter(|| {
                    (k.ew.binary.f)(
                        BinaryOp::Add,
                        1,
                        n,
                        Operand::Full(Src::F32(&a)),
                        Operand::Full(Src::F32(&b)),
                        Dst::F32(&mut o32),
                    )
                })
            });
            g.bench_function(format!("add_f16/{l}"), |bch| {
                bch.iter(|| {
                    (k.ew.binary.f)(
                        BinaryOp::Add,
                        1,
                        n,
                        Operand::Full(Src::F16(&ah)),
                        Operand::Full(Src::F16(&bh)),
                        Dst::F16(&mut o16),
                    )
                })
            });
            g.bench_function(format!("mul_f16_f32_to_f32/{l}"), |bch| {
                bch.iter(|| {
                    (k.ew.binary.f)(
                        BinaryOp::Mul,
                        1,
                        n,
                        Operand::Full(Src::F16(&ah)),
                        Operand::Full(Src::F32(&b)),
                        Dst::F32(&mut o32),
                    )
                })
            });
            for (name, op) in [
                ("relu", UnaryOp::Relu),
                ("exp", UnaryOp::Exp),
                ("tanh", UnaryOp::Tanh),
                ("gelu", UnaryOp::GeluErf),
                ("gelu_tanh", UnaryOp::GeluTanh),
            ] {
                g.bench_function(format!("{name}_f32/{l}"), |bch| {
                    bch.iter(|| (k.ew.unary.f)(op, Src::F32(&a), Dst::F32(&mut o32)))
                });
                g.bench_function(format!("{name}_f16/{l}"), |bch| {
                    bch.iter(|| (k.ew.unary.f)(op, Src::F16(&ah), Dst::F16(&mut o16)))
                });
            }
            g.bench_function(format!("gelu_grad_f32/{l}"), |bch| {
                bch.iter(|| (k.ew.unary_grad.f)(GradOp::GeluErf, Src::F32(&b), Src::F32(&a), Dst::F32(&mut o32)))
            });
            // y += alpha·x: f32 into f32, an f16 gradient into an f32 accumulator, f16 into f16.
            g.bench_function(format!("axpy_f32/{l}"), |bch| {
                bch.iter(|| (k.ew.axpy.f)(0.5, Src::F32(&a), Dst::F32(&mut o32)))
            });
            g.bench_function(format!("axpy_f16_into_f32/{l}"), |bch| {
                bch.iter(|| (k.ew.axpy.f)(0.5, Src::F16(&ah), Dst::F32(&mut o32)))
            });
            g.bench_function(format!("axpy_f16/{l}"), |bch| {
                bch.iter(|| (k.ew.axpy.f)(0.5, Src::F16(&ah), Dst::F16(&mut o16)))
            });
        }
        g.finish();
    }
}

/// Row reductions, dot and softmax over 1024-element rows (1M elements).
fn reductions(c: &mut Criterion) {
    let (rows, n) = (1024usize, 1024usize);
    let x = values(rows * n, 5);
    let y = values(rows * n, 6);
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let yh: Vec<f16> = y.iter().map(|&v| f16::from_f32(v)).collect();
    let (mut r32, mut o32, mut o16) = (vec![0.0f32; rows], vec![0.0f32; rows * n], vec![f16::ZERO; rows * n]);
    let mut g = c.benchmark_group("reduce/1Kx1K");
    config(&mut g, rows * n);
    for k in paths() {
        let l = k.label();
        g.bench_function(format!("sum_rows_f32/{l}"), |b| {
            b.iter(|| (k.reduce.rows.f)(ReduceOp::Sum, Src::F32(&x), rows, n, Dst::F32(&mut r32)))
        });
        g.bench_function(format!("sum_rows_f16/{l}"), |b| {
            b.iter(|| (k.reduce.rows.f)(ReduceOp::Sum, Src::F16(&xh), rows, n, Dst::F32(&mut r32)))
        });
        g.bench_function(format!("max_rows_f32/{l}"), |b| {
            b.iter(|| (k.reduce.rows.f)(ReduceOp::Max, Src::F32(&x), rows, n, Dst::F32(&mut r32)))
        });
        g.bench_function(format!("dot_f32/{l}"), |b| b.iter(|| (k.reduce.dot.f)(Src::F32(&x), Src::F32(&y))));
        g.bench_function(format!("dot_f16/{l}"), |b| b.iter(|| (k.reduce.dot.f)(Src::F16(&xh), Src::F16(&yh))));
        g.bench_function(format!("softmax_rows_f32/{l}"), |b| {
            b.iter(|| (k.reduce.softmax_rows.f)(SoftmaxOp::Softmax, Src::F32(&x), rows, n, Dst::F32(&mut o32)))
        });
        g.bench_function(format!("softmax_rows_f16/{l}"), |b| {
            b.iter(|| (k.reduce.softmax_rows.f)(SoftmaxOp::Softmax, Src::F16(&xh), rows, n, Dst::F16(&mut o16)))
        });
    }
    g.finish();
}

/// `reduce::max_pool2x2` on a CNN layer's activations (256 planes of 28×28:
/// 32 channels of a batch of 8 MNIST images), throughput in input elements.
fn max_pool(c: &mut Criterion) {
    let (planes, h, w) = (256usize, 28usize, 28usize);
    let (n, m) = (planes * h * w, planes * (h / 2) * (w / 2));
    let x = values(n, 8);
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let (mut y, mut yh, mut yb, mut idx) = (vec![0.0f32; m], vec![f16::ZERO; m], vec![bf16::ZERO; m], vec![0u8; m]);
    let mut g = c.benchmark_group("max_pool2x2/256x28x28");
    config(&mut g, n);
    for k in paths() {
        let l = k.label();
        let f = k.reduce.max_pool2x2.f;
        g.bench_function(format!("f32/{l}"), |b| b.iter(|| f(planes, h, w, Src::F32(&x), Dst::F32(&mut y), &mut idx)));
        g.bench_function(format!("f16/{l}"), |b| {
            b.iter(|| f(planes, h, w, Src::F16(&xh), Dst::F16(&mut yh), &mut idx))
        });
        g.bench_function(format!("bf16/{l}"), |b| {
            b.iter(|| f(planes, h, w, Src::Bf16(&xb), Dst::Bf16(&mut yb), &mut idx))
        });
    }
    g.finish();
}

/// The log-softmax target: rows of 1024 f16 values against the same
/// op on f32 rows (256 rows: both fit in L2, so the kernels, not DRAM, are timed).
fn log_softmax(c: &mut Criterion) {
    let (rows, n) = (256usize, 1024usize);
    let x = values(rows * n, 7);
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let (mut o32, mut o16) = (vec![0.0f32; rows * n], vec![f16::ZERO; rows * n]);
    let mut g = c.benchmark_group("log_softmax_rows_1024");
    config(&mut g, rows * n);
    for k in paths() {
        let l = k.label();
        g.bench_function(format!("f32/{l}"), |b| {
            b.iter(|| (k.reduce.softmax_rows.f)(SoftmaxOp::LogSoftmax, Src::F32(&x), rows, n, Dst::F32(&mut o32)))
        });
        g.bench_function(format!("f16/{l}"), |b| {
            b.iter(|| (k.reduce.softmax_rows.f)(SoftmaxOp::LogSoftmax, Src::F16(&xh), rows, n, Dst::F16(&mut o16)))
        });
    }
    g.finish();
}

/// Cross-entropy forward + backward for the MLP's output (128 × 10) and a
/// character vocabulary (32·64 rows × 65).
fn cross_entropy(c: &mut Criterion) {
    for (rows, n) in [(128usize, 10usize), (2048, 65)] {
        let x = values(rows * n, 8);
        let t: Vec<usize> = (0..rows).map(|i| (i * 7) % n).collect();
        let (mut loss, mut lse, mut grad) = (vec![0.0f32; rows], vec![0.0f32; rows], vec![0.0f32; rows * n]);
        let mut g = c.benchmark_group(format!("cross_entropy/{rows}x{n}"));
        config(&mut g, rows * n);
        for k in paths() {
            g.bench_function(format!("fwd_bwd_f32/{}", k.label()), |b| {
                b.iter(|| {
                    (k.loss.cross_entropy.f)(Src::F32(&x), rows, n, &t, Dst::F32(&mut loss), Dst::F32(&mut lse));
                    let g = [1.0 / rows as f32];
                    (k.loss.cross_entropy_grad.f)(
                        Src::F32(&x),
                        rows,
                        n,
                        &t,
                        Src::F32(&lse),
                        Src::F32(&g),
                        Dst::F32(&mut grad),
                    );
                })
            });
        }
        g.finish();
    }
}

/// Optimizer updates on 1M FP32 parameters. The AdamW row moves 30 bytes per
/// parameter (reads w, g, m, v; writes w, m, v and the f16 copy); its
/// reference is a copy of 15 bytes per parameter (30 read + written). The
/// `*_scaled_f16_grad_*` rows read a loss-scaled f16 gradient and unscale it
/// as they load it, as the amp master step does.
fn optimizers(c: &mut Criterion) {
    let n = 1 << 20;
    let g0 = values(n, 9).iter().map(|v| v * 1e-2).collect::<Vec<f32>>();
    let mut g = c.benchmark_group("optim/1M");
    g.throughput(Throughput::Bytes(30 * n as u64));
    g.sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let a = Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, decoupled: true };
    let st = a.step(10);
    for k in paths() {
        let (mut w, mut m, mut v, mut h) = (values(n, 10), vec![0.0f32; n], vec![0.0f32; n], vec![f16::ZERO; n]);
        g.bench_function(format!("adamw_f16_copy/{}", k.label()), |b| {
            b.iter(|| (k.optim.adam.f)(&st, &mut w, black_box(&g0), &mut m, &mut v, Some(Dst::F16(&mut h))))
        });
    }
    // The loss-scaled f16 gradient the amp master step reads: 28 bytes per parameter.
    g.throughput(Throughput::Bytes(28 * n as u64));
    let g16 = g0.iter().map(|&v| f16::from_f32(v * 1024.0)).collect::<Vec<f16>>();
    for k in paths() {
        let (mut w, mut m, mut v, mut h) = (values(n, 10), vec![0.0f32; n], vec![0.0f32; n], vec![f16::ZERO; n]);
        g.bench_function(format!("adamw_scaled_f16_grad_f16_copy/{}", k.label()), |b| {
            b.iter(|| {
                let src = Src::F16(black_box(&g16));
                (k.optim.adam_scaled.f)(&st, &mut w, src, 1.0 / 1024.0, &mut m, &mut v, Some(Dst::F16(&mut h)))
            })
        });
    }
    let src = vec![0x5Au8; 15 * n];
    let mut dst = vec![0u8; 15 * n];
    g.bench_function("copy_nonoverlapping", |b| {
        b.iter(|| {
            // SAFETY: two distinct allocations of 15n bytes each.
            unsafe { std::ptr::copy_nonoverlapping(black_box(src.as_ptr()), dst.as_mut_ptr(), 15 * n) };
            black_box(&mut dst);
        })
    });
    // SGD with momentum reads w, g, buf and writes w, buf and the f16 copy: 22 bytes per parameter.
    g.throughput(Throughput::Bytes(22 * n as u64));
    let p = Sgd { lr: 0.01, momentum: 0.9, dampening: 0.0, weight_decay: 1e-4, nesterov: true };
    for k in paths() {
        let (mut w, mut buf, mut h) = (values(n, 11), vec![0.0f32; n], vec![f16::ZERO; n]);
        g.bench_function(format!("sgd_nesterov_f16_copy/{}", k.label()), |b| {
            b.iter(|| (k.optim.sgd.f)(&p, &mut w, black_box(&g0), Some(&mut buf), false, Some(Dst::F16(&mut h))))
        });
    }
    g.throughput(Throughput::Bytes(20 * n as u64));
    for k in paths() {
        let (mut w, mut buf, mut h) = (values(n, 11), vec![0.0f32; n], vec![f16::ZERO; n]);
        g.bench_function(format!("sgd_nesterov_scaled_f16_grad_f16_copy/{}", k.label()), |b| {
            b.iter(|| {
                let src = Src::F16(black_box(&g16));
                (k.optim.sgd_scaled.f)(&p, &mut w, src, 1.0 / 1024.0, Some(&mut buf), false, Some(Dst::F16(&mut h)))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, casts, amp, elementwise, reductions, max_pool, log_softmax, cross_entropy, optimizers);
criterion_main!(benches);
