//! The 4-ulp bound of the vectorised FP32 transcendentals (docs/numerics.md),
//! measured densely: for every path the host can run, every approximated
//! unary op and derivative on ~2^22 inputs spread over every binade (both
//! signs), dense grids where the functions are delicate (around GELU's
//! derivative zero near −0.752, the subnormal-result tails of exp, sigmoid
//! and GELU), against the f64 reference rounded once. Prints the largest
//! error found per op and path. Under emulation (not x86-64) the sample is
//! 8× sparser, the same spread.

mod common;

use common::{SplitMix, paths};
use mixprec_kernels::ew::{GradOp, UnaryOp};
use mixprec_kernels::scalar::ew::{grad_f64, unary_f64};
use mixprec_kernels::slice::{Dst, Src};
use rayon::prelude::*;

const BOUND: f64 = 4.0;

/// The spacing of f32 at `x` (2^-149 in the subnormal range).
fn ulp32(x: f64) -> f64 {
    let a = x.abs();
    if a < f32::MIN_POSITIVE as f64 {
        return 2f64.powi(-149);
    }
    2f64.powi(a.log2().floor() as i32 - 23)
}

/// Error of `got` against `exact` in f32 ulps; `None` when both agree on a
/// special value (NaN, ±Inf, or an exact result beyond f32's range that
/// rounded to Inf).
fn ulps(got: f32, exact: f64) -> f64 {
    if got.is_nan() || exact.is_nan() {
        return if got.is_nan() && exact.is_nan() { 0.0 } else { f64::INFINITY };
    }
    let want = exact as f32;
    if want.is_infinite() || got.is_infinite() {
        return if want == got { 0.0 } else { f64::INFINITY };
    }
    (got as f64 - exact).abs() / ulp32(exact)
}

/// Inputs: a spread over every binade of both signs, and dense grids.
fn inputs() -> Vec<f32> {
    let shift = if cfg!(target_arch = "x86_64") { 0 } else { 3 };
    let mut v: Vec<f32> =
        (0..1u32 << (21 - shift)).map(|i| f32::from_bits((i << shift).wrapping_mul(0x9E37_79B1))).collect();
    v.retain(|x| x.is_finite());
    let mut rng = SplitMix(99);
    // Where the functions live: |x| ≤ 32, uniformly.
    v.extend((0..1 << (20 - shift)).map(|_| rng.next_f32() * 32.0));
    // GELU's derivative zero (x ≈ −0.752), exp/sigmoid/GELU subnormal tails.
    let n = 1 << (16 - shift);
    for (lo, hi) in [(-0.80f32, -0.70f32), (-110.0, -80.0), (-14.5, -9.0)] {
        v.extend((0..n).map(|i| lo + (hi - lo) * i as f32 / n as f32));
    }
    v.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE, 1e-45, -1e-45]);
    v
}

/// The largest error and, if it exceeds the bound, a description of it.
fn check(
    label: &str,
    what: &str,
    xs: &[f32],
    got: &[f32],
    exact: impl Fn(usize) -> f64 + Sync,
) -> (f64, Option<String>) {
    let (worst, at) = (0..xs.len())
        .into_par_iter()
        .map(|i| (ulps(got[i], exact(i)), i))
        .reduce(|| (0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
    let fail = (worst > BOUND)
        .then(|| format!("{label}: {what}({:e}) = {:e}, exact {:e}: {worst:.2} ulp", xs[at], got[at], exact(at)));
    (worst, fail)
}

#[test]
fn transcendentals_are_within_4_ulp_on_every_path() {
    let xs = inputs();
    let mut rng = SplitMix(5);
    let gs: Vec<f32> = (0..xs.len()).map(|_| rng.next_f32() * 2.0f32.powi((rng.next_u32() % 40) as i32 - 20)).collect();
    let ones = vec![1.0f32; xs.len()];
    let unary = [UnaryOp::Exp, UnaryOp::Log, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::GeluTanh, UnaryOp::GeluErf];
    let grads = [GradOp::GeluTanh, GradOp::GeluErf, GradOp::Tanh, GradOp::Sigmoid, GradOp::Rsqrt, GradOp::Recip];
    let tables = paths();
    let mut reports = vec![Vec::new(); tables.len()];
    let mut failures = Vec::new();
    let mut out = vec![0.0f32; xs.len()];
    for op in unary {
        // The oracle once per op, every path against it.
        let exact: Vec<f64> = xs.par_iter().map(|&x| unary_f64(op, x as f64)).collect();
        for (k, report) in tables.iter().zip(&mut reports) {
            (k.ew.unary.f)(op, Src::F32(&xs), Dst::F32(&mut out));
            let (w, fail) = check(&k.label(), op.name(), &xs, &out, |i| exact[i]);
            failures.extend(fail);
            report.push(format!("{} {w:.2}", op.name()));
        }
    }
    for op in grads {
        // Derivatives from the output take the forward op's output.
        let saved: Vec<f32> = match op {
            GradOp::Tanh => xs.iter().map(|&x| x.tanh()).collect(),
            GradOp::Sigmoid => xs.iter().map(|&x| (1.0 / (1.0 + (-x as f64).exp())) as f32).collect(),
            GradOp::Rsqrt => xs.iter().map(|&x| (1.0 / (x.abs() as f64).sqrt()) as f32).collect(),
            _ => xs.clone(),
        };
        for (gname, g) in [("g=1", &ones), ("g random", &gs)] {
            let exact: Vec<f64> =
                (0..xs.len()).into_par_iter().map(|i| grad_f64(op, g[i] as f64, saved[i] as f64)).collect();
            for (k, report) in tables.iter().zip(&mut reports) {
                (k.ew.unary_grad.f)(op, Src::F32(g), Src::F32(&saved), Dst::F32(&mut out));
                let what = format!("{op:?}' ({gname})");
                let (w, fail) = check(&k.label(), &what, &saved, &out, |i| exact[i]);
                failures.extend(fail);
                report.push(format!("{what} {w:.2}"));
            }
        }
    }
    for (k, report) in tables.iter().zip(&reports) {
        eprintln!("{}: max ulp over {} inputs: {}", k.label(), xs.len(), report.join(", "));
    }
    assert!(failures.is_empty(), "beyond {BOUND} ulp:\n{}", failures.join("\n"));
}
