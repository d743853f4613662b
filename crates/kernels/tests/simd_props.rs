//! The cross-ISA property suite of the elementwise, reduction and softmax
//! kernels: on every path the host can run (masked variants included), on
//! random inputs drawn with special values (±0, f32 and f16 subnormals,
//! values near 65504, ±Inf, NaN), lengths 0..5000 including primes, the
//! vector widths ±1, the staging block (256) ±1 and the softmax row buffer
//! (4096) ±1, and random start offsets. Each result is compared with the
//! scalar reference (bit for bit where the op is one IEEE operation or a
//! selection) and with an f64 oracle under the bounds of docs/numerics.md;
//! the elements around every destination must stay untouched.

mod common;

use common::{Buf, SplitMix, paths, round_to, ulp_at, within_ulps};
use mixprec_kernels::Kernels;
use mixprec_kernels::ew::{BinaryOp, GradOp, Operand, UnaryOp};
use mixprec_kernels::reduce::{ArgOp, ReduceOp, SoftmaxOp};
use mixprec_kernels::scalar::ew::{grad_f64, unary_f64};
use mixprec_kernels::slice::{Dst, Elem, Src};
use mixprec_kernels::{Isa, table};
use proptest::prelude::*;

const U: f64 = 1.0 / (1u64 << 24) as f64;
/// Exactly representable in every element type.
const SENTINEL: f64 = 12288.0;

fn reference() -> &'static Kernels {
    table(Isa::Scalar).unwrap()
}

/// Lengths that stress SIMD bodies and tails: primes, widths ±1, block ±1.
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..70,
        prop::sample::select(vec![
            7usize, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 97, 255, 256, 257, 511, 512, 513, 997, 1021, 2039, 4093,
            4095, 4096, 4097, 4999,
        ]),
        0usize..5000,
    ]
}

fn elem() -> impl Strategy<Value = Elem> {
    prop::sample::select(vec![Elem::F32, Elem::F16, Elem::Bf16])
}

/// Random values with specials mixed in (one in `special_every`).
fn values(rng: &mut SplitMix, n: usize, special_every: u32, scale: f64) -> Vec<f64> {
    const SPECIAL: [f64; 16] = [
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        65504.0,
        -65504.0,
        65519.0,
        6.0e-8,
        -3.0e-5,
        1e-40,
        -1.2e-38,
        1.0,
        -1.0,
        0.5,
        3.0e38,
    ];
    (0..n)
        .map(|_| {
            let r = rng.next_u32();
            if special_every > 0 && r.is_multiple_of(special_every) {
                SPECIAL[(r >> 8) as usize % SPECIAL.len()]
            } else {
                rng.next_f32() as f64 * scale * 2f64.powi((r >> 12) as i32 % 8 - 4)
            }
        })
        .collect()
}

/// `vals` in `e`, placed at `off` in a buffer padded with sentinels on both sides.
struct Padded {
    buf: Buf,
    off: usize,
    len: usize,
}

impl Padded {
    fn new(e: Elem, vals: &[f64], off: usize) -> Padded {
        let mut all = vec![SENTINEL; off];
        all.extend_from_slice(vals);
        all.extend(std::iter::repeat_n(SENTINEL, 9));
        Padded { buf: Buf::from_f64(e, &all), off, len: vals.len() }
    }
    fn zeros(e: Elem, len: usize, off: usize) -> Padded {
        Padded::new(e, &vec![0.0; len], off)
    }
    fn src(&self) -> Src<'_> {
        self.buf.src().slice(self.off, self.off + self.len)
    }
    fn dst(&mut self) -> Dst<'_> {
        let (a, b) = (self.off, self.off + self.len);
        match &mut self.buf {
            Buf::F64(v) => Dst::F64(&mut v[a..b]),
            Buf::F32(v) => Dst::F32(&mut v[a..b]),
            Buf::F16(v) => Dst::F16(&mut v[a..b]),
            Buf::Bf16(v) => Dst::Bf16(&mut v[a..b]),
        }
    }
    fn get(&self, i: usize) -> f64 {
        self.buf.get(self.off + i)
    }
    fn untouched_outside(&self) -> bool {
        (0..self.off).chain(self.off + self.len..self.buf.len()).all(|i| self.buf.get(i) == SENTINEL)
    }
    fn same(&self, o: &Padded) -> bool {
        (0..self.len).all(|i| {
            let (a, b) = (self.get(i), o.get(i));
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Full,
    Row,
    Col,
    Scalar,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop::sample::select(vec![Shape::Full, Shape::Row, Shape::Col, Shape::Scalar])
}

fn shape_len(s: Shape, rows: usize, n: usize) -> usize {
    match s {
        Shape::Full => rows * n,
        Shape::Row => n,
        Shape::Col => rows,
        Shape::Scalar => 0,
    }
}

fn operand(s: Shape, p: &Padded, scalar: f64) -> Operand<'_> {
    match s {
        Shape::Full => Operand::Full(p.src()),
        Shape::Row => Operand::Row(p.src()),
        Shape::Col => Operand::Col(p.src()),
        Shape::Scalar => Operand::Scalar(scalar),
    }
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(BinaryOp::ALL.to_vec())
}

fn unary_op() -> impl Strategy<Value = UnaryOp> {
    prop::sample::select(UnaryOp::ALL.to_vec())
}

fn grad_op() -> impl Strategy<Value = GradOp> {
    prop::sample::select(GradOp::ALL.to_vec())
}

/// The transcendental bound: 4 ulp of an f32 result, 1 ulp of f16/bf16.
fn math_ulps(out: Elem) -> f64 {
    if out == Elem::F32 { 4.0 } else { 1.0 }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Binary ops with every broadcast shape and type mix: bit-identical to
    /// the reference (one FP32 operation, one rounding).
    #[test]
    fn binary_is_bit_identical_to_the_reference(op in binary_op(), ea in elem(), eb in elem(), eo in elem(),
            sa in shape(), sb in shape(), rows in 1usize..4, n in length(), off in 0usize..17, seed: u64, scalar in -3.0f64..3.0) {
        let mut rng = SplitMix(seed);
        let a = Padded::new(ea, &values(&mut rng, shape_len(sa, rows, n), 9, 100.0), off);
        let b = Padded::new(eb, &values(&mut rng, shape_len(sb, rows, n), 9, 100.0), off / 2);
        let mut want = Padded::zeros(eo, rows * n, 3);
        (reference().ew.binary.f)(op, rows, n, operand(sa, &a, scalar), operand(sb, &b, -scalar), want.dst());
        for k in paths() {
            let mut got = Padded::zeros(eo, rows * n, off);
            (k.ew.binary.f)(op, rows, n, operand(sa, &a, scalar), operand(sb, &b, -scalar), got.dst());
            prop_assert!(got.same(&want), "{}: {op:?} {sa:?}/{sb:?} {ea:?},{eb:?}->{eo:?} {rows}x{n}", k.label());
            prop_assert!(got.untouched_outside(), "{}: wrote outside the destination", k.label());
            // The in-place form equals the out-of-place one.
            if let (Shape::Full, true) = (sa, ea == eo) {
                let mut acc = Padded::new(eo, &(0..rows * n).map(|i| a.get(i)).collect::<Vec<_>>(), off);
                (k.ew.binary_assign.f)(op, rows, n, acc.dst(), operand(sb, &b, -scalar));
                prop_assert!(acc.same(&want), "{}: {op:?} assign", k.label());
                prop_assert!(acc.untouched_outside());
            }
        }
    }

    /// Unary ops: exact ones bit-identical to the reference, transcendental
    /// ones within 4 ulp (f32) / 1 ulp (f16, bf16) of the f64 oracle.
    #[test]
    fn unary_is_exact_or_within_its_bound(op in unary_op(), ei in elem(), eo in elem(), n in length(), off in 0usize..17, seed: u64) {
        let mut rng = SplitMix(seed);
        let x = Padded::new(ei, &values(&mut rng, n, 7, 20.0), off);
        let mut want = Padded::zeros(eo, n, 0);
        (reference().ew.unary.f)(op, x.src(), want.dst());
        for k in paths() {
            let mut got = Padded::zeros(eo, n, (off * 7) % 17);
            (k.ew.unary.f)(op, x.src(), got.dst());
            prop_assert!(got.untouched_outside(), "{}: wrote outside the destination", k.label());
            if op.is_exact() {
                prop_assert!(got.same(&want), "{}: {op:?} {ei:?}->{eo:?}", k.label());
                continue;
            }
            for i in 0..n {
                let exact = unary_f64(op, x.get(i));
                prop_assert!(within_ulps(eo, got.get(i), exact, math_ulps(eo)),
                    "{}: {op:?}({:e}) {ei:?}->{eo:?} = {:e}, exact {exact:e}", k.label(), x.get(i), got.get(i));
            }
        }
    }

    /// Derivatives: within 4 ulp (f32) / 1 ulp (f16, bf16) of the oracle.
    #[test]
    fn unary_grad_is_within_its_bound(op in grad_op(), eg in elem(), es in elem(), eo in elem(), n in length(), off in 0usize..17, seed: u64) {
        let mut rng = SplitMix(seed);
        let g = Padded::new(eg, &values(&mut rng, n, 11, 4.0), off);
        let sv = values(&mut rng, n, 11, 8.0);
        // Derivatives from an output take a value the forward op can produce.
        let saved: Vec<f64> = sv.iter().map(|&x| match op {
            GradOp::Tanh => unary_f64(UnaryOp::Tanh, x),
            GradOp::Sigmoid => unary_f64(UnaryOp::Sigmoid, x),
            GradOp::Exp => unary_f64(UnaryOp::Exp, x.min(80.0)),
            GradOp::Sqrt => x.abs().sqrt(),
            GradOp::Rsqrt => 1.0 / x.abs().sqrt(),
            GradOp::Recip => 1.0 / x,
            _ => x,
        }).collect();
        let s = Padded::new(es, &saved, (off * 3) % 17);
        for k in paths() {
            let mut got = Padded::zeros(eo, n, off);
            (k.ew.unary_grad.f)(op, g.src(), s.src(), got.dst());
            prop_assert!(got.untouched_outside(), "{}: wrote outside the destination", k.label());
            for i in 0..n {
                let exact = grad_f64(op, g.get(i), s.get(i));
                // An infinite g times a derivative that underflows f32: ∓Inf
                // (the f64 oracle may give NaN once its own exp underflows).
                let underflow = g.get(i).is_infinite() && grad_f64(op, 1.0, s.get(i)).abs() < 1e-45;
                if underflow && (got.get(i).is_nan() || got.get(i).is_infinite()) {
                    continue;
                }
                prop_assert!(within_ulps(eo, got.get(i), exact, math_ulps(eo)),
                    "{}: {op:?}' g {:e} saved {:e} {eg:?},{es:?}->{eo:?} = {:e}, exact {exact:e}", k.label(), g.get(i), s.get(i), got.get(i));
            }
        }
    }

    /// `axpy`: bit-identical to the reference (one FP32 fused multiply-add,
    /// rounded to `y`'s type) for every `x`/`y` type mix, and within one f32
    /// rounding plus one of `y`'s type of the f64 oracle.
    #[test]
    fn axpy_is_one_fused_multiply_add(ex in elem(), ey in elem(), n in length(), off in 0usize..17, seed: u64,
                                      alpha in prop_oneof![Just(0.0f32), Just(-1.0f32), Just(f32::INFINITY), -4.0f32..4.0]) {
        let mut rng = SplitMix(seed);
        let x = Padded::new(ex, &values(&mut rng, n, 9, 100.0), off);
        let y0 = values(&mut rng, n, 9, 100.0);
        let mut want = Padded::new(ey, &y0, 3);
        let before: Vec<f64> = (0..n).map(|i| want.get(i)).collect();
        (reference().ew.axpy.f)(alpha, x.src(), want.dst());
        for k in paths() {
            let mut got = Padded::new(ey, &y0, (off * 3) % 17);
            (k.ew.axpy.f)(alpha, x.src(), got.dst());
            prop_assert!(got.same(&want), "{}: axpy {ex:?}->{ey:?} n {n}", k.label());
            prop_assert!(got.untouched_outside(), "{}: wrote outside y", k.label());
        }
        for (i, &yi) in before.iter().enumerate() {
            let exact = alpha as f64 * x.get(i) + yi;
            let w = want.get(i);
            if exact.is_nan() {
                prop_assert!(w.is_nan(), "axpy NaN at {i}");
                continue;
            }
            let b = ulp_at(Elem::F32, exact) / 2.0 + ulp_at(ey, exact) / 2.0;
            let over = w.is_infinite() && round_to(ey, round_to(Elem::F32, exact)) == w;
            prop_assert!(w == exact || over || (w - exact).abs() <= b, "axpy {ex:?}->{ey:?}: {alpha}·{:e} + {yi:e} = {w:e}, exact {exact:e}", x.get(i));
        }
    }

    /// `select` picks exactly.
    #[test]
    fn select_is_bit_identical(ec in elem(), ea in elem(), eo in elem(), sc in shape(), sb in shape(), rows in 1usize..4, n in length(), off in 0usize..17, seed: u64) {
        let mut rng = SplitMix(seed);
        let cond: Vec<f64> = (0..shape_len(sc, rows, n)).map(|_| [0.0, -0.0, 1.0, f64::NAN, 2.0][rng.next_u32() as usize % 5]).collect();
        let c = Padded::new(ec, &cond, off);
        let a = Padded::new(ea, &values(&mut rng, rows * n, 7, 10.0), 1);
        let b = Padded::new(Elem::F32, &values(&mut rng, shape_len(sb, rows, n), 7, 10.0), 2);
        let mut want = Padded::zeros(eo, rows * n, 0);
        (reference().ew.select.f)(rows, n, operand(sc, &c, 0.0), Operand::Full(a.src()), operand(sb, &b, 0.5), want.dst());
        for k in paths() {
            let mut got = Padded::zeros(eo, rows * n, off);
            (k.ew.select.f)(rows, n, operand(sc, &c, 0.0), Operand::Full(a.src()), operand(sb, &b, 0.5), got.dst());
            prop_assert!(got.same(&want) && got.untouched_outside(), "{}: select", k.label());
        }
    }
}

/// `2·n·u·Σ|terms|` plus one rounding of the output.
fn sum_bound(n: usize, abs: f64, eo: Elem, want: f64) -> f64 {
    2.0 * n as f64 * U * abs + ulp_at(eo, want)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Row and column reductions: sums within `2·n·u·Σ|x|`, max/min and
    /// arg-reductions bit-identical to the reference (NaN and ±0 rules).
    #[test]
    fn reductions_are_within_their_bounds(ei in elem(), eo in elem(), rows in 1usize..5, n in length(), off in 0usize..17, seed: u64, specials: bool) {
        let mut rng = SplitMix(seed);
        let xs = values(&mut rng, rows * n, if specials { 13 } else { 0 }, 50.0);
        let x = Padded::new(ei, &xs, off);
        let xv: Vec<f64> = (0..rows * n).map(|i| x.get(i)).collect();
        for op in ReduceOp::ALL {
            for (by_rows, len, count) in [(true, rows, n), (false, n, rows)] {
                let f = |k: &Kernels| if by_rows { k.reduce.rows.f } else { k.reduce.cols.f };
                let mut want = Padded::zeros(eo, len, 0);
                f(reference())(op, x.src(), rows, n, want.dst());
                for k in paths() {
                    let mut got = Padded::zeros(eo, len, off % 5);
                    f(k)(op, x.src(), rows, n, got.dst());
                    prop_assert!(got.untouched_outside());
                    if matches!(op, ReduceOp::Max | ReduceOp::Min) {
                        prop_assert!(got.same(&want), "{}: {op:?} rows={by_rows}", k.label());
                        continue;
                    }
                    for o in 0..len {
                        let line: Vec<f64> = (0..count).map(|q| if by_rows { xv[o * n + q] } else { xv[q * n + o] }).collect();
                        let (exact, abs): (f64, f64) = match op {
                            ReduceOp::SumSq => { let s = line.iter().map(|v| v * v).sum(); (s, s) }
                            _ => (line.iter().sum(), line.iter().map(|v| v.abs()).sum()),
                        };
                        let (exact, abs) = if op == ReduceOp::Mean { (exact / count as f64, abs / count as f64) } else { (exact, abs) };
                        let g = got.get(o);
                        let finite_abs: f64 = line.iter().filter(|v| v.is_finite()).map(|v| v.abs()).sum();
                        let ok = if finite_abs >= f32::MAX as f64 && !g.is_finite() {
                            // FP32 partial sums can overflow in any order: the
                            // bound is vacuous and ±Inf or NaN is a valid answer.
                            true
                        } else if exact.is_nan() || !abs.is_finite() {
                            let w = want.get(o);
                            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan())
                        } else {
                            let b = sum_bound(count, abs, eo, exact);
                            (g - exact).abs() <= b || (g.is_infinite() && round_to(eo, exact + exact.signum() * b).is_infinite())
                        };
                        prop_assert!(ok, "{}: {op:?} rows={by_rows} {ei:?}->{eo:?} line {o} of {count}: {g:e} vs {exact:e}", k.label());
                    }
                }
            }
        }
        for op in [ArgOp::Max, ArgOp::Min] {
            let mut want = vec![0usize; rows];
            (reference().reduce.arg_rows.f)(op, x.src(), rows, n, &mut want);
            let mut want_c = vec![0usize; n];
            (reference().reduce.arg_cols.f)(op, x.src(), rows, n, &mut want_c);
            for k in paths() {
                let mut got = vec![0usize; rows];
                (k.reduce.arg_rows.f)(op, x.src(), rows, n, &mut got);
                prop_assert_eq!(&got, &want, "{}: arg_rows {:?}", k.label(), op);
                let mut got = vec![0usize; n];
                (k.reduce.arg_cols.f)(op, x.src(), rows, n, &mut got);
                prop_assert_eq!(&got, &want_c, "{}: arg_cols {:?}", k.label(), op);
            }
        }
    }

    /// `dot`: `|err| ≤ 2·n·2^-24·Σ|x_i·y_i|` against the f64 oracle.
    #[test]
    fn dot_is_within_its_bound(ea in elem(), eb in elem(), n in length(), off in 0usize..17, seed: u64, scale in -40i32..40) {
        let mut rng = SplitMix(seed);
        let a = Padded::new(ea, &values(&mut rng, n, 0, 2f64.powi(scale)), off);
        let b = Padded::new(eb, &values(&mut rng, n, 0, 1.0), (off + 5) % 17);
        let (exact, abs) = (0..n).fold((0.0, 0.0), |(s, t), i| (s + a.get(i) * b.get(i), t + (a.get(i) * b.get(i)).abs()));
        let want = (reference().reduce.dot.f)(a.src(), b.src());
        for k in paths() {
            let got = (k.reduce.dot.f)(a.src(), b.src());
            if !abs.is_finite() {
                // Inputs beyond f16's range became ±Inf: the reference decides.
                prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{}: dot", k.label());
                continue;
            }
            prop_assert!((got - exact).abs() <= 2.0 * n as f64 * U * abs, "{}: dot n {n}: {got:e} vs {exact:e}", k.label());
        }
    }

    /// Softmax and log-softmax rows and columns within the bounds of
    /// docs/numerics.md; rows with NaN or ±Inf agree with the reference.
    #[test]
    fn softmax_is_within_its_bound(ei in elem(), eo in elem(), rows in 1usize..4, n in length(), off in 0usize..17, seed: u64, specials: bool, nan: bool) {
        let mut rng = SplitMix(seed);
        let mut xs = values(&mut rng, rows * n, if specials { 97 } else { 0 }, 30.0);
        if !nan {
            // Specials but no NaN: the rows f16/bf16 log-softmax takes without widening first.
            xs.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = -0.0);
        }
        let x = Padded::new(ei, &xs, off);
        let xv: Vec<f64> = (0..rows * n).map(|i| x.get(i)).collect();
        for op in [SoftmaxOp::Softmax, SoftmaxOp::LogSoftmax] {
            for by_rows in [true, false] {
                let f = |k: &Kernels| if by_rows { k.reduce.softmax_rows.f } else { k.reduce.softmax_cols.f };
                let mut want = Padded::zeros(eo, rows * n, 0);
                f(reference())(op, x.src(), rows, n, want.dst());
                let (lines, len) = if by_rows { (rows, n) } else { (n, rows) };
                let at = |l: usize, q: usize| if by_rows { l * n + q } else { q * n + l };
                for k in paths() {
                    let mut got = Padded::zeros(eo, rows * n, off);
                    f(k)(op, x.src(), rows, n, got.dst());
                    prop_assert!(got.untouched_outside());
                    for l in 0..lines {
                        let line: Vec<f64> = (0..len).map(|q| xv[at(l, q)]).collect();
                        if line.iter().any(|v| v.is_nan() || *v == f64::INFINITY) || line.iter().all(|v| *v == f64::NEG_INFINITY) {
                            // NaN, +Inf or nothing but −Inf: NaN lines, exactly as the reference.
                            for q in 0..len {
                                let (g, w) = (got.get(at(l, q)), want.get(at(l, q)));
                                prop_assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                                    "{}: {op:?} special line {l}: {g:e} vs {w:e}", k.label());
                            }
                            continue;
                        }
                        let m = line.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let s: f64 = line.iter().map(|v| (v - m).exp()).sum();
                        for (q, &xq) in line.iter().enumerate() {
                            if xq == f64::NEG_INFINITY {
                                // Probability 0: softmax 0, log-softmax −Inf, exactly.
                                let (g, w) = (got.get(at(l, q)), if op == SoftmaxOp::Softmax { 0.0 } else { f64::NEG_INFINITY });
                                prop_assert!(g == w, "{}: {op:?} of −Inf: {g:e}", k.label());
                                continue;
                            }
                            let d = xq - m;
                            let (y, b) = match op {
                                SoftmaxOp::Softmax => { let y = d.exp() / s; (y, (2.0 * len as f64 + 6.0 + d.abs()) * U * y) }
                                SoftmaxOp::LogSoftmax => (d - s.ln(), (2.0 * len as f64 + 6.0) * U + 2.0 * U * (d.abs() + s.ln().abs())),
                            };
                            let g = got.get(at(l, q));
                            let overflow = g.is_infinite() && round_to(eo, y - b).is_infinite() && g.signum() == y.signum();
                            prop_assert!(overflow || (g - y).abs() <= b + ulp_at(eo, y), "{}: {op:?} rows={by_rows} {ei:?}->{eo:?} ({l},{q}) of {len}: {g:e} vs {y:e}", k.label());
                        }
                    }
                }
            }
        }
    }

    /// Two-pass moments: the mean within the sum bound, the variance within
    /// `(2n + 4)·u·var + 2·e² + 1 ulp`, `e` the mean's bound.
    #[test]
    fn moments_are_within_their_bounds(ei in elem(), eo in elem(), rows in 1usize..4, n in 1usize..3000, seed: u64, shift in -1000.0f64..1000.0) {
        let mut rng = SplitMix(seed);
        let xs: Vec<f64> = values(&mut rng, rows * n, 0, 10.0).into_iter().map(|v| v + shift).collect();
        let x = Padded::new(ei, &xs, 3);
        let xv: Vec<f64> = (0..rows * n).map(|i| x.get(i)).collect();
        for by_rows in [true, false] {
            let (lines, len) = if by_rows { (rows, n) } else { (n, rows) };
            for k in paths() {
                let (mut mean, mut var) = (Padded::zeros(eo, lines, 1), Padded::zeros(eo, lines, 2));
                let f = if by_rows { k.reduce.moments_rows.f } else { k.reduce.moments_cols.f };
                f(x.src(), rows, n, mean.dst(), var.dst());
                prop_assert!(mean.untouched_outside() && var.untouched_outside());
                for l in 0..lines {
                    let line: Vec<f64> = (0..len).map(|q| if by_rows { xv[l * n + q] } else { xv[q * n + l] }).collect();
                    let mu = line.iter().sum::<f64>() / len as f64;
                    let v = line.iter().map(|a| (a - mu) * (a - mu)).sum::<f64>() / len as f64;
                    let e = 2.0 * len as f64 * U * line.iter().map(|a| a.abs()).sum::<f64>() / len as f64;
                    prop_assert!((mean.get(l) - mu).abs() <= e + ulp_at(eo, mu), "{}: mean {ei:?}->{eo:?}", k.label());
                    let bv = (2.0 * len as f64 + 4.0) * U * v + 2.0 * e * e + ulp_at(eo, v);
                    prop_assert!((var.get(l) - v).abs() <= bv, "{}: var {ei:?}->{eo:?} of {len}: {:e} vs {v:e} ± {bv:e}", k.label(), var.get(l));
                }
            }
        }
    }
}

/// NaN meets NaN, anything else must match bit for bit.
fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `dot` with special values: a NaN product, `Inf·0` or `+Inf + −Inf`
    /// gives NaN, an infinite product of one sign that infinity (the f64
    /// oracle decides, whatever the summation order); a finite oracle is
    /// within `2·n·u·Σ|x_i·y_i| + n·2^-149` unless FP32 partial sums can
    /// overflow (the absolute term: products that underflow FP32).
    #[test]
    fn dot_handles_special_values(ea in elem(), eb in elem(), n in length(), off in 0usize..17, seed: u64, every in 3u32..40) {
        let mut rng = SplitMix(seed);
        let a = Padded::new(ea, &values(&mut rng, n, every, 10.0), off);
        let b = Padded::new(eb, &values(&mut rng, n, every, 10.0), (off + 3) % 17);
        let prods: Vec<f64> = (0..n).map(|i| a.get(i) * b.get(i)).collect();
        let exact: f64 = prods.iter().sum();
        let abs: f64 = prods.iter().map(|p| p.abs()).sum();
        let finite_abs: f64 = prods.iter().filter(|p| p.is_finite()).map(|p| p.abs()).sum();
        for k in paths() {
            let got = (k.reduce.dot.f)(a.src(), b.src());
            let ok = if finite_abs >= f32::MAX as f64 {
                true // FP32 products or partial sums may overflow, in any order.
            } else if !exact.is_finite() {
                same_value(got, exact)
            } else {
                // Each FP32 product below 2^-126 rounds with an absolute error of up to 2^-150.
                (got - exact).abs() <= 2.0 * n as f64 * U * abs + n as f64 * 2f64.powi(-149)
            };
            prop_assert!(ok, "{}: dot {ea:?}·{eb:?} n {n}: {got:e} vs {exact:e}", k.label());
        }
    }

    /// Moments at random offsets, every length, with special values: finite
    /// lines within the bounds of `moments_are_within_their_bounds`, lines
    /// with NaN or ±Inf (and empty lines) exactly as the reference.
    #[test]
    fn moments_handle_tails_offsets_and_specials(ei in elem(), eo in elem(), rows in 1usize..4, n in length(), off in 0usize..17,
                                                 seed: u64, specials: bool) {
        let mut rng = SplitMix(seed);
        let x = Padded::new(ei, &values(&mut rng, rows * n, if specials { 61 } else { 0 }, 10.0), off);
        let xv: Vec<f64> = (0..rows * n).map(|i| x.get(i)).collect();
        for by_rows in [true, false] {
            let (lines, len) = if by_rows { (rows, n) } else { (n, rows) };
            let f = |k: &Kernels| if by_rows { k.reduce.moments_rows.f } else { k.reduce.moments_cols.f };
            let (mut wm, mut wv) = (Padded::zeros(eo, lines, 0), Padded::zeros(eo, lines, 0));
            f(reference())(x.src(), rows, n, wm.dst(), wv.dst());
            for k in paths() {
                let (mut mean, mut var) = (Padded::zeros(eo, lines, off % 7), Padded::zeros(eo, lines, (off + 4) % 7));
                f(k)(x.src(), rows, n, mean.dst(), var.dst());
                prop_assert!(mean.untouched_outside() && var.untouched_outside());
                for l in 0..lines {
                    let line: Vec<f64> = (0..len).map(|q| if by_rows { xv[l * n + q] } else { xv[q * n + l] }).collect();
                    let abs: f64 = line.iter().map(|a| a.abs()).sum();
                    let finite_abs: f64 = line.iter().filter(|a| a.is_finite()).map(|a| a.abs()).sum();
                    if finite_abs >= f32::MAX as f64 {
                        continue; // FP32 partial sums may overflow, in any order.
                    }
                    if len == 0 || !abs.is_finite() {
                        prop_assert!(same_value(mean.get(l), wm.get(l)) && same_value(var.get(l), wv.get(l)),
                            "{}: special line {l}: ({:e}, {:e}) vs ({:e}, {:e})", k.label(), mean.get(l), var.get(l), wm.get(l), wv.get(l));
                        continue;
                    }
                    let mu = line.iter().sum::<f64>() / len as f64;
                    let v = line.iter().map(|a| (a - mu) * (a - mu)).sum::<f64>() / len as f64;
                    let e = 2.0 * len as f64 * U * abs / len as f64;
                    let (gm, bm) = (mean.get(l), e + ulp_at(eo, mu));
                    let over = gm.is_infinite() && round_to(eo, mu + mu.signum() * bm) == gm;
                    prop_assert!(over || (gm - mu).abs() <= bm, "{}: mean {ei:?}->{eo:?} of {len}: {gm:e} vs {mu:e} ± {bm:e}", k.label());
                    let bv = (2.0 * len as f64 + 4.0) * U * v + 2.0 * e * e + ulp_at(eo, v);
                    let over = var.get(l).is_infinite() && round_to(eo, v + bv).is_infinite();
                    prop_assert!(over || (var.get(l) - v).abs() <= bv, "{}: var {ei:?}->{eo:?} of {len}: {:e} vs {v:e} ± {bv:e}", k.label(), var.get(l));
                }
            }
        }
    }

    /// Softmax and log-softmax backward on random rows (y from the forward of
    /// logits with special values, g with special values), every type mix
    /// and offset: within the bounds of docs/numerics.md against the f64
    /// formula on the same inputs; a NaN or infinite f64 result is matched.
    #[test]
    fn softmax_grad_is_within_its_bound(eg in elem(), ey in elem(), eo in elem(), rows in 1usize..4, n in length(), off in 0usize..17,
                                        seed: u64, specials: bool) {
        let mut rng = SplitMix(seed);
        let every = if specials { 53 } else { 0 };
        let xs = Padded::new(Elem::F32, &values(&mut rng, rows * n, every, 8.0), 0);
        let g = Padded::new(eg, &values(&mut rng, rows * n, every, 2.0), off);
        for op in [SoftmaxOp::Softmax, SoftmaxOp::LogSoftmax] {
            let mut y = Padded::zeros(ey, rows * n, (off + 2) % 17);
            (reference().reduce.softmax_rows.f)(op, xs.src(), rows, n, y.dst());
            let mut want_ref = Padded::zeros(eo, rows * n, 0);
            (reference().reduce.softmax_grad_rows.f)(op, g.src(), y.src(), rows, n, want_ref.dst());
            for k in paths() {
                let mut got = Padded::zeros(eo, rows * n, (off * 5) % 17);
                (k.reduce.softmax_grad_rows.f)(op, g.src(), y.src(), rows, n, got.dst());
                prop_assert!(got.untouched_outside(), "{}: wrote outside the destination", k.label());
                for i in 0..rows {
                    let gr: Vec<f64> = (0..n).map(|j| g.get(i * n + j)).collect();
                    let yr: Vec<f64> = (0..n).map(|j| y.get(i * n + j)).collect();
                    let special = gr.iter().chain(&yr).any(|v| !v.is_finite());
                    let (s, sabs): (f64, f64) = match op {
                        SoftmaxOp::Softmax => (gr.iter().zip(&yr).map(|(a, b)| a * b).sum(), gr.iter().zip(&yr).map(|(a, b)| (a * b).abs()).sum()),
                        SoftmaxOp::LogSoftmax => (gr.iter().sum(), gr.iter().map(|a| a.abs()).sum()),
                    };
                    let finite_sabs: f64 = match op {
                        SoftmaxOp::Softmax => gr.iter().zip(&yr).map(|(a, b)| a * b).filter(|p| p.is_finite()).map(f64::abs).sum(),
                        SoftmaxOp::LogSoftmax => gr.iter().filter(|a| a.is_finite()).map(|a| a.abs()).sum(),
                    };
                    for j in 0..n {
                        let (a, b) = (gr[j], yr[j]);
                        // `e^y` times the sums, 0 when `e^y` is (y = −∞).
                        let e_y = b.exp();
                        let (want, scale) = match op {
                            SoftmaxOp::Softmax => (b * (a - s), b.abs() * (a.abs() + 2.0 * n as f64 * sabs)),
                            SoftmaxOp::LogSoftmax => (a - e_y * s, a.abs() + if e_y == 0.0 { 0.0 } else { e_y * (2.0 * n as f64 * sabs + 2.0 * s.abs() * (1.0 + b.abs())) }),
                        };
                        let v = got.get(i * n + j);
                        let r = want_ref.get(i * n + j);
                        let ok = if finite_sabs >= f32::MAX as f64 || (scale.is_finite() && scale >= f32::MAX as f64) {
                            true // FP32 intermediate results may overflow, in any order: no bound.
                        } else if special || !want.is_finite() {
                            // Non-finite inputs: the IEEE rules of the FP32 formula, as the reference.
                            same_value(v, r) || (v.is_finite() && r.is_finite() && scale.is_finite() && (v - r).abs() <= 4.0 * U * scale + 2.0 * ulp_at(eo, r))
                        } else {
                            // `e^y` below 2^-126 is an FP32 subnormal: its rounding is absolute
                            // (2^-150), times `Σg` (docs/numerics.md).
                            let sub = if op == SoftmaxOp::LogSoftmax { 2f64.powi(-149) * s.abs() } else { 0.0 };
                            let b = 2.0 * U * scale + sub + ulp_at(eo, want);
                            (v - want).abs() <= b || (v.is_infinite() && round_to(eo, want + want.signum() * b).is_infinite())
                        };
                        prop_assert!(ok, "{}: {op:?}' {eg:?},{ey:?}->{eo:?} ({i},{j}) of {n}: {v:e} vs {want:e} (reference {r:e})", k.label());
                    }
                }
            }
        }
    }
}
