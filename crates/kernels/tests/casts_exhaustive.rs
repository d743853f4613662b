//! f32 → f16 and f32 → bf16 on every one of the 2^32 f32 bit patterns, on
//! every path the host can run (masked variants included), bit-identical to
//! `half` 2.x for every non-NaN input and NaN for every NaN.
//!
//! The whole space is covered in release builds on x86-64. Other
//! architectures (aarch64 runs under qemu) check a large sample instead: a
//! 2^26-element permutation-spread subset of the bit patterns plus every f16
//! and bf16 rounding tie and its neighbours (2^20 spread patterns in debug
//! builds). The test prints which it did and how long it took.

mod common;

use std::time::Instant;

use common::paths;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use mixprec_kernels::Kernels;
use rayon::prelude::*;

const CHUNK: usize = 1 << 20;

/// Reused per worker: allocating 14 MB per chunk costs more in page faults
/// than the conversions themselves.
#[derive(Default)]
struct Buffers {
    xs: Vec<f32>,
    want_h: Vec<u16>,
    want_b: Vec<u16>,
    got_h: Vec<f16>,
    got_b: Vec<bf16>,
}

/// Checks `buf.xs` on every path against `half`'s answers.
fn check_chunk(tables: &[&Kernels], buf: &mut Buffers) {
    let Buffers { xs, want_h, want_b, got_h, got_b } = buf;
    let n = xs.len();
    want_h.clear();
    want_h.extend(xs.iter().map(|&x| f16::from_f32(x).to_bits()));
    want_b.clear();
    want_b.extend(xs.iter().map(|&x| bf16::from_f32(x).to_bits()));
    got_h.resize(n, f16::ZERO);
    got_b.resize(n, bf16::ZERO);
    for k in tables {
        (k.convert.f32_to_f16.f)(xs, got_h);
        (k.convert.f32_to_bf16.f)(xs, got_b);
        // Fast path: identical bits (NaN payloads included, as they usually are).
        if got_h.reinterpret_cast() != &want_h[..] {
            for i in 0..n {
                let g = got_h[i];
                let ok = g.to_bits() == want_h[i] || (xs[i].is_nan() && g.is_nan());
                assert!(
                    ok,
                    "{}: f32_to_f16({:#010x}) = {:#06x}, half gives {:#06x}",
                    k.label(),
                    xs[i].to_bits(),
                    g.to_bits(),
                    want_h[i]
                );
            }
        }
        if got_b.reinterpret_cast() != &want_b[..] {
            for i in 0..n {
                let g = got_b[i];
                let ok = g.to_bits() == want_b[i] || (xs[i].is_nan() && g.is_nan());
                assert!(
                    ok,
                    "{}: f32_to_bf16({:#010x}) = {:#06x}, half gives {:#06x}",
                    k.label(),
                    xs[i].to_bits(),
                    g.to_bits(),
                    want_b[i]
                );
            }
        }
    }
}

/// Runs `check_chunk` over `n_chunks` chunks whose inputs `input(c, xs)` writes.
fn run(n_chunks: usize, input: impl Fn(usize, &mut Vec<f32>) + Sync, what: &str) {
    let tables = paths();
    let labels: Vec<String> = tables.iter().map(|k| k.label()).collect();
    let t0 = Instant::now();
    let total: usize = (0..n_chunks)
        .into_par_iter()
        .map_init(Buffers::default, |buf, c| {
            buf.xs.clear();
            input(c, &mut buf.xs);
            check_chunk(&tables, buf);
            buf.xs.len()
        })
        .sum();
    eprintln!(
        "f32 -> f16/bf16: {what}: {total} inputs on {} in {:.1?} ({} threads)",
        labels.join(", "),
        t0.elapsed(),
        rayon::current_num_threads()
    );
}

#[test]
fn every_f32_narrows_like_half_on_every_path() {
    let full = cfg!(all(target_arch = "x86_64", not(debug_assertions)));
    if full {
        let n_chunks = ((1u64 << 32) / CHUNK as u64) as usize;
        let input = |c: usize, xs: &mut Vec<f32>| {
            let base = (c * CHUNK) as u32;
            xs.extend((0..CHUNK as u32).map(|i| f32::from_bits(base + i)));
        };
        run(n_chunks, input, "all 2^32 bit patterns");
        return;
    }
    // A permutation of u32 (odd multiplier) spreads the sample over every
    // exponent and sign; then every rounding tie of both formats.
    let spread: u32 = if cfg!(debug_assertions) { 1 << 20 } else { 1 << 26 };
    let mut bits: Vec<u32> = (0..spread).map(|i| i.wrapping_mul(0x9E37_79B1)).collect();
    for hi in 0..=u16::MAX as u32 {
        let b = hi << 16;
        bits.extend([b | 0x7FFF, b | 0x8000, b | 0x8001]);
    }
    for h in 0..0x7C00u16 {
        // The tie between the f16 value h (positive, finite) and the next one.
        let x = f16::from_bits(h).to_f32() as f64;
        let y = f16::from_bits(h + 1).to_f32() as f64;
        let mid = ((x + y) / 2.0) as f32;
        for v in [mid, -mid] {
            let t = v.to_bits();
            bits.extend([t.wrapping_sub(1), t, t.wrapping_add(1)]);
        }
    }
    let input = |c: usize, xs: &mut Vec<f32>| {
        xs.extend(bits[c * CHUNK..((c + 1) * CHUNK).min(bits.len())].iter().map(|&b| f32::from_bits(b)))
    };
    let what = format!("a sample of {spread} spread bit patterns and every f16/bf16 tie (debug build, or not x86-64)");
    run(bits.len().div_ceil(CHUNK), input, &what);
}
