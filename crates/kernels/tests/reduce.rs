//! Reductions and softmax on every path the host can run, against an f64
//! oracle, with the bounds of docs/numerics.md: sums within
//! `2·n·u·Σ|x|` plus one rounding to the output (u = 2^-24 for FP32
//! accumulation, 2^-53 for f64), max/min/argmax exact, softmax within
//! `(2n + 6 + |x − m|)·u` relative plus one rounding.

mod common;

use common::{Buf, ELEMS, SplitMix, paths, round_to, ulp_at};
use mixprec_kernels::reduce::{ArgOp, ReduceOp, SoftmaxOp};
use mixprec_kernels::slice::Elem;

fn unit(wide: bool) -> f64 {
    if wide { 2f64.powi(-53) } else { 2f64.powi(-24) }
}

fn values(rng: &mut SplitMix, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.next_f32() as f64 * scale).collect()
}

fn oracle(op: ReduceOp, xs: &[f64]) -> (f64, f64) {
    let abs: f64 = xs.iter().map(|x| x.abs()).sum();
    match op {
        ReduceOp::Sum => (xs.iter().sum(), abs),
        ReduceOp::Mean => (xs.iter().sum::<f64>() / xs.len() as f64, abs / xs.len() as f64),
        ReduceOp::SumSq => (xs.iter().map(|x| x * x).sum(), xs.iter().map(|x| x * x).sum()),
        ReduceOp::Max => (xs.iter().copied().fold(f64::NEG_INFINITY, f64::max), 0.0),
        ReduceOp::Min => (xs.iter().copied().fold(f64::INFINITY, f64::min), 0.0),
    }
}

fn check_reduction(isa: mixprec_kernels::Isa, op: ReduceOp, eo: Elem, wide: bool, xs: &[f64], got: f64, what: &str) {
    let (want, abs) = oracle(op, xs);
    if xs.is_empty() {
        let ok = match op {
            ReduceOp::Sum | ReduceOp::SumSq => got == 0.0,
            ReduceOp::Mean => got.is_nan(),
            ReduceOp::Max => got == f64::NEG_INFINITY,
            ReduceOp::Min => got == f64::INFINITY,
        };
        assert!(ok, "{isa}: {op:?} of nothing gave {got}");
        return;
    }
    let n = xs.len() as f64;
    let bound = 2.0 * n * unit(wide) * abs + ulp_at(eo, want);
    let exact_ok = matches!(op, ReduceOp::Max | ReduceOp::Min) && got == round_to(eo, want);
    // A sum beyond the output's range may round to ±Inf.
    let overflow_ok = got.is_infinite() && round_to(eo, want + want.signum() * bound).is_infinite();
    assert!(
        exact_ok || overflow_ok || (!matches!(op, ReduceOp::Max | ReduceOp::Min) && (got - want).abs() <= bound),
        "{isa}: {op:?} {what} -> {eo:?} over {} values: got {got:e}, want {want:e}, bound {bound:e}",
        xs.len()
    );
}

#[test]
fn row_and_column_reductions_are_within_the_bound() {
    let mut rng = SplitMix(21);
    for k in paths() {
        for &(rows, n) in &[(0, 4), (4, 0), (1, 1), (3, 7), (2, 257), (5, 600), (70, 3)] {
            for ei in ELEMS {
                let xs = values(&mut rng, rows * n, 100.0);
                let x = Buf::from_f64(ei, &xs);
                let xs = x.to_f64();
                for eo in [Elem::F32, ei] {
                    let wide = ei == Elem::F64 || eo == Elem::F64;
                    for op in ReduceOp::ALL {
                        let mut out = Buf::zeros(eo, rows);
                        (k.reduce.rows.f)(op, x.src(), rows, n, out.dst());
                        for i in 0..rows {
                            check_reduction(k.isa, op, eo, wide, &xs[i * n..(i + 1) * n], out.get(i), "row");
                        }
                        let mut out = Buf::zeros(eo, n);
                        (k.reduce.cols.f)(op, x.src(), rows, n, out.dst());
                        for j in 0..n {
                            let col: Vec<f64> = (0..rows).map(|i| xs[i * n + j]).collect();
                            check_reduction(k.isa, op, eo, wide, &col, out.get(j), "col");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn long_f16_sums_accumulate_in_fp32() {
    // 4096 × 1.0 in f16: an f16 accumulator would stall at 2048.
    for k in paths() {
        let x = Buf::from_f64(Elem::F16, &[1.0; 4096]);
        let mut out = Buf::zeros(Elem::F32, 1);
        (k.reduce.rows.f)(ReduceOp::Sum, x.src(), 1, 4096, out.dst());
        assert_eq!(out.get(0), 4096.0, "{}", k.isa);
        let mut out = Buf::zeros(Elem::F16, 1);
        (k.reduce.rows.f)(ReduceOp::Mean, x.src(), 1, 4096, out.dst());
        assert_eq!(out.get(0), 1.0, "{}", k.isa);
    }
}

#[test]
fn special_values_in_reductions() {
    for k in paths() {
        let x = Buf::from_f64(Elem::F32, &[1.0, f64::NAN, 3.0, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, -2.0, 0.0]);
        let mut out = Buf::zeros(Elem::F32, 3);
        (k.reduce.rows.f)(ReduceOp::Max, x.src(), 3, 3, out.dst());
        assert!(out.get(0).is_nan() && out.get(1) == f64::INFINITY && out.get(2).to_bits() == 0, "{}", k.isa);
        (k.reduce.rows.f)(ReduceOp::Sum, x.src(), 3, 3, out.dst());
        assert!(out.get(0).is_nan() && out.get(1) == f64::INFINITY && out.get(2) == f64::NEG_INFINITY);
        let mut idx = [9usize; 3];
        (k.reduce.arg_rows.f)(ArgOp::Max, x.src(), 3, 3, &mut idx);
        assert_eq!(idx, [1, 2, 2], "{}", k.isa);
        (k.reduce.arg_rows.f)(ArgOp::Min, x.src(), 3, 3, &mut idx);
        assert_eq!(idx, [1, 0, 0], "{}", k.isa);
        let x = Buf::from_f64(Elem::F32, &[-0.0, 0.0, -0.0, 0.0]);
        let mut out = Buf::zeros(Elem::F32, 2);
        (k.reduce.cols.f)(ReduceOp::Min, x.src(), 2, 2, out.dst());
        assert!(out.get(0).to_bits() == (-0.0f64).to_bits() && out.get(1).to_bits() == 0);
    }
}

#[test]
fn argmax_takes_the_first_extreme() {
    let mut rng = SplitMix(4);
    for k in paths() {
        for ei in ELEMS {
            let (rows, n) = (6, 300);
            // Few distinct values, so ties are common.
            let xs: Vec<f64> = (0..rows * n).map(|_| (rng.next_u32() % 5) as f64 - 2.0).collect();
            let x = Buf::from_f64(ei, &xs);
            for op in [ArgOp::Max, ArgOp::Min] {
                let pick = |it: &mut dyn Iterator<Item = (usize, f64)>| {
                    let mut best: Option<(usize, f64)> = None;
                    for (i, v) in it {
                        let better = match (best, op) {
                            (None, _) => true,
                            (Some((_, b)), ArgOp::Max) => v > b,
                            (Some((_, b)), ArgOp::Min) => v < b,
                        };
                        if better {
                            best = Some((i, v));
                        }
                    }
                    best.map_or(0, |b| b.0)
                };
                let mut out = vec![0usize; rows];
                (k.reduce.arg_rows.f)(op, x.src(), rows, n, &mut out);
                for (i, &o) in out.iter().enumerate() {
                    assert_eq!(o, pick(&mut (0..n).map(|j| (j, xs[i * n + j]))), "{} row {i}", k.isa);
                }
                let mut out = vec![0usize; n];
                (k.reduce.arg_cols.f)(op, x.src(), rows, n, &mut out);
                for (j, &o) in out.iter().enumerate() {
                    assert_eq!(o, pick(&mut (0..rows).map(|i| (i, xs[i * n + j]))), "{} col {j}", k.isa);
                }
            }
        }
    }
}

/// Oracle softmax of one line in f64, with `|x − m|` and `|ln s|` for the bound.
fn softmax_oracle(op: SoftmaxOp, xs: &[f64]) -> Vec<(f64, f64, f64)> {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = xs.iter().map(|x| (x - m).exp()).sum();
    xs.iter()
        .map(|x| {
            let d = x - m;
            let y = match op {
                SoftmaxOp::Softmax => d.exp() / s,
                SoftmaxOp::LogSoftmax => d - s.ln(),
            };
            (y, d.abs(), s.ln().abs())
        })
        .collect()
}

fn check_softmax(isa: mixprec_kernels::Isa, op: SoftmaxOp, eo: Elem, wide: bool, xs: &[f64], got: &[f64]) {
    let u = unit(wide);
    let n = xs.len() as f64;
    for ((y, d, ls), &g) in softmax_oracle(op, xs).into_iter().zip(got) {
        let bound = match op {
            SoftmaxOp::Softmax => (2.0 * n + 6.0 + d) * u * y,
            SoftmaxOp::LogSoftmax => (2.0 * n + 6.0) * u + 2.0 * u * (d + ls),
        } + ulp_at(eo, y);
        assert!((g - y).abs() <= bound, "{isa}: {op:?} -> {eo:?} n = {n}: got {g:e}, want {y:e}, bound {bound:e}");
    }
}

#[test]
fn softmax_rows_and_cols_are_within_the_bound() {
    let mut rng = SplitMix(8);
    for k in paths() {
        for &(rows, n) in &[(1, 1), (3, 10), (2, 300), (0, 5), (5, 0)] {
            for ei in ELEMS {
                let x = Buf::from_f64(ei, &values(&mut rng, rows * n, 30.0));
                let xs = x.to_f64();
                for eo in [Elem::F32, ei] {
                    let wide = ei == Elem::F64 || eo == Elem::F64;
                    for op in [SoftmaxOp::Softmax, SoftmaxOp::LogSoftmax] {
                        let mut out = Buf::zeros(eo, rows * n);
                        (k.reduce.softmax_rows.f)(op, x.src(), rows, n, out.dst());
                        let got = out.to_f64();
                        for i in 0..rows {
                            check_softmax(k.isa, op, eo, wide, &xs[i * n..(i + 1) * n], &got[i * n..(i + 1) * n]);
                        }
                        (k.reduce.softmax_cols.f)(op, x.src(), rows, n, out.dst());
                        let got = out.to_f64();
                        for j in 0..n {
                            let col: Vec<f64> = (0..rows).map(|i| xs[i * n + j]).collect();
                            let gc: Vec<f64> = (0..rows).map(|i| got[i * n + j]).collect();
                            check_softmax(k.isa, op, eo, wide, &col, &gc);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn softmax_survives_large_inputs_and_handles_infinities() {
    for k in paths() {
        let x = Buf::from_f64(Elem::F32, &[1000.0, 1000.0, f64::NEG_INFINITY, 0.0, f64::NAN, 1.0, f64::INFINITY, 0.0]);
        let mut out = Buf::zeros(Elem::F32, 8);
        (k.reduce.softmax_rows.f)(SoftmaxOp::Softmax, x.src(), 2, 4, out.dst());
        let o = out.to_f64();
        assert_eq!(&o[..4], &[0.5, 0.5, 0.0, 0.0], "{}", k.isa);
        assert!(o[4..].iter().all(|v| v.is_nan()), "{}: {o:?}", k.isa);
        (k.reduce.softmax_rows.f)(SoftmaxOp::LogSoftmax, x.src(), 2, 4, out.dst());
        let o = out.to_f64();
        assert_eq!(o[2], f64::NEG_INFINITY);
        assert!((o[0] + std::f64::consts::LN_2).abs() < 1e-6);
    }
}

#[test]
fn softmax_grad_matches_the_oracle() {
    let mut rng = SplitMix(12);
    for k in paths() {
        let (rows, n) = (4, 300);
        for ei in [Elem::F32, Elem::F16, Elem::F64] {
            let xs = values(&mut rng, rows * n, 5.0);
            let gs = values(&mut rng, rows * n, 1.0);
            for op in [SoftmaxOp::Softmax, SoftmaxOp::LogSoftmax] {
                let x = Buf::from_f64(Elem::F64, &xs);
                let mut y = Buf::zeros(Elem::F64, rows * n);
                mixprec_kernels::reduce::softmax_rows(op, x.src(), rows, n, y.dst());
                let y = Buf::from_f64(ei, &y.to_f64());
                let g = Buf::from_f64(ei, &gs);
                let mut out = Buf::zeros(ei, rows * n);
                (k.reduce.softmax_grad_rows.f)(op, g.src(), y.src(), rows, n, out.dst());
                let wide = ei == Elem::F64;
                for i in 0..rows {
                    let (gr, yr) = (&g.to_f64()[i * n..(i + 1) * n], &y.to_f64()[i * n..(i + 1) * n]);
                    let (s, sabs): (f64, f64) = match op {
                        SoftmaxOp::Softmax => (
                            gr.iter().zip(yr).map(|(a, b)| a * b).sum(),
                            gr.iter().zip(yr).map(|(a, b)| (a * b).abs()).sum(),
                        ),
                        SoftmaxOp::LogSoftmax => (gr.iter().sum(), gr.iter().map(|a| a.abs()).sum()),
                    };
                    for j in 0..n {
                        let (a, b) = (gr[j], yr[j]);
                        let (want, scale) = match op {
                            SoftmaxOp::Softmax => (b * (a - s), b.abs() * (a.abs() + 2.0 * n as f64 * sabs)),
                            SoftmaxOp::LogSoftmax => (
                                a - b.exp() * s,
                                a.abs() + b.exp() * (2.0 * n as f64 * sabs + 2.0 * s.abs() * (1.0 + b.abs())),
                            ),
                        };
                        let bound = 2.0 * unit(wide) * scale + ulp_at(ei, want);
                        let got = out.get(i * n + j);
                        assert!(
                            (got - want).abs() <= bound,
                            "{}: {op:?} {ei:?} ({i},{j}): got {got:e} want {want:e}",
                            k.isa
                        );
                    }
                }
            }
        }
    }
}
