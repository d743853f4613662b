//! Elementwise kernels on every path the host can run, for every mix of
//! input and output types, against an f64 oracle: `+ − × ÷`, min/max and
//! comparisons bit-exact (FP32 arithmetic rounded once), unary math and
//! `pow` within the bounds of docs/numerics.md. Lengths cover empty blocks
//! and chunk tails; values cover ±0, subnormals, ±Inf, NaN and overflow.

mod common;

use common::{Buf, ELEMS, SplitMix, mixed_values, paths, round_to, within_ulps};
use mixprec_kernels::Isa;
use mixprec_kernels::ew::{self, BinaryOp, GradOp, Operand, UnaryOp};
use mixprec_kernels::scalar::ew::{grad_f64, unary_f64};
use mixprec_kernels::slice::Elem;

/// Unary-math bound in ulps of the output type: 1 for the reference (f64
/// evaluation rounded once), 4 for FP32 SIMD approximations.
fn math_ulps(isa: Isa, out: Elem) -> f64 {
    if isa == Isa::Scalar || matches!(out, Elem::F16 | Elem::Bf16 | Elem::F64) { 1.0 } else { 4.0 }
}

/// The oracle's compute step: FP32 unless something is f64.
fn compute(wide: bool, x: f64) -> f64 {
    if wide { x } else { x as f32 as f64 }
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Full,
    Row,
    Col,
    Scalar,
}

fn operand<'a>(shape: Shape, buf: &'a Buf, scalar: f64) -> Operand<'a> {
    match shape {
        Shape::Full => Operand::Full(buf.src()),
        Shape::Row => Operand::Row(buf.src()),
        Shape::Col => Operand::Col(buf.src()),
        Shape::Scalar => Operand::Scalar(scalar),
    }
}

fn operand_len(shape: Shape, rows: usize, n: usize) -> usize {
    match shape {
        Shape::Full => rows * n,
        Shape::Row => n,
        Shape::Col => rows,
        Shape::Scalar => 0,
    }
}

fn value_at(shape: Shape, buf: &Buf, scalar: f64, wide: bool, i: usize, j: usize, n: usize) -> f64 {
    match shape {
        Shape::Full => buf.get(i * n + j),
        Shape::Row => buf.get(j),
        Shape::Col => buf.get(i),
        Shape::Scalar => compute(wide, scalar),
    }
}

#[test]
fn binary_matches_the_oracle_for_every_type_mix_and_broadcast() {
    let mut rng = SplitMix(7);
    let shapes = [
        (Shape::Full, Shape::Full),
        (Shape::Full, Shape::Row),
        (Shape::Full, Shape::Col),
        (Shape::Full, Shape::Scalar),
        (Shape::Scalar, Shape::Full),
        (Shape::Row, Shape::Full),
        (Shape::Col, Shape::Row),
    ];
    for k in paths() {
        for &(rows, n) in &[(0, 5), (3, 0), (1, 1), (3, 37), (2, 300), (5, 7)] {
            for &(sa, sb) in &shapes {
                for ea in ELEMS {
                    for eb in ELEMS {
                        for eo in ELEMS {
                            let av = mixed_values(&mut rng, operand_len(sa, rows, n));
                            let bv = mixed_values(&mut rng, operand_len(sb, rows, n));
                            let (a, b) = (Buf::from_f64(ea, &av), Buf::from_f64(eb, &bv));
                            let (s1, s2) = (0.1, -3.0e-5);
                            let wide = eo == Elem::F64
                                || (ea == Elem::F64 && !matches!(sa, Shape::Scalar))
                                || (eb == Elem::F64 && !matches!(sb, Shape::Scalar));
                            for op in BinaryOp::ALL {
                                let mut out = Buf::zeros(eo, rows * n);
                                (k.ew.binary.f)(op, rows, n, operand(sa, &a, s1), operand(sb, &b, s2), out.dst());
                                for i in 0..rows {
                                    for j in 0..n {
                                        let x = value_at(sa, &a, s1, wide, i, j, n);
                                        let y = value_at(sb, &b, s2, wide, i, j, n);
                                        let want = round_to(eo, compute(wide, op.apply_f64(x, y)));
                                        let got = out.get(i * n + j);
                                        let ok = if op == BinaryOp::Pow {
                                            within_ulps(eo, got, op.apply_f64(x, y), math_ulps(k.isa, eo) + 0.5)
                                                || within_ulps(eo, got, want, math_ulps(k.isa, eo))
                                        } else {
                                            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
                                        };
                                        assert!(
                                            ok,
                                            "{}: {op:?} {sa:?}/{sb:?} {ea:?},{eb:?}->{eo:?} ({i},{j}) {x:e} {y:e}: got {got:e}, want {want:e}",
                                            k.isa
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn binary_assign_equals_binary() {
    let mut rng = SplitMix(11);
    for k in paths() {
        for (ea, eb) in
            [(Elem::F32, Elem::F32), (Elem::F16, Elem::F32), (Elem::Bf16, Elem::Bf16), (Elem::F64, Elem::F16)]
        {
            for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum] {
                let (rows, n) = (4, 300);
                let a = Buf::from_f64(ea, &mixed_values(&mut rng, rows * n));
                let b = Buf::from_f64(eb, &mixed_values(&mut rng, n));
                let mut want = Buf::zeros(ea, rows * n);
                ew::binary(op, rows, n, Operand::Full(a.src()), Operand::Row(b.src()), want.dst());
                let mut acc = a.clone();
                (k.ew.binary_assign.f)(op, rows, n, acc.dst(), Operand::Row(b.src()));
                assert!(acc.same(&want), "{}: {op:?} {ea:?} {eb:?}", k.isa);
                let mut acc = a.clone();
                (k.ew.binary_assign.f)(op, rows, n, acc.dst(), Operand::Scalar(0.3));
                let mut want = Buf::zeros(ea, rows * n);
                ew::binary(op, rows, n, Operand::Full(a.src()), Operand::Scalar(0.3), want.dst());
                assert!(acc.same(&want), "{}: {op:?} scalar", k.isa);
            }
        }
    }
}

/// Inputs where each unary op is interesting, plus the mixed set.
fn unary_inputs(rng: &mut SplitMix) -> Vec<f64> {
    let mut v = mixed_values(rng, 700);
    for i in -400..=400 {
        v.push(i as f64 * 0.03125);
    }
    v.extend([-20.0, -10.5, -6.0, 6.0, 10.5, 20.0, 88.0, 89.0, -103.0, 11.09, 1e-7, -1e-7]);
    v
}

#[test]
fn unary_is_within_its_bound() {
    let mut rng = SplitMix(3);
    let vals = unary_inputs(&mut rng);
    for k in paths() {
        for ei in ELEMS {
            let x = Buf::from_f64(ei, &vals);
            for eo in ELEMS {
                let wide = ei == Elem::F64 || eo == Elem::F64;
                for op in UnaryOp::ALL {
                    let mut out = Buf::zeros(eo, vals.len());
                    (k.ew.unary.f)(op, x.src(), out.dst());
                    for i in 0..vals.len() {
                        let xi = x.get(i);
                        let exact = unary_f64(op, xi);
                        let got = out.get(i);
                        let ok = if op.is_exact() {
                            let want = round_to(eo, compute(wide, exact));
                            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
                        } else {
                            // An f32 rounding may precede the final one (FP32 compute):
                            // ½ ulp of f32 + ½ ulp of the output stays within 1 ulp.
                            within_ulps(eo, got, exact, math_ulps(k.isa, eo))
                        };
                        assert!(ok, "{}: {op:?} {ei:?}->{eo:?} x = {xi:e}: got {got:e}, exact {exact:e}", k.isa);
                    }
                }
            }
        }
    }
}

#[test]
fn unary_special_values_follow_the_documented_rules() {
    let k = mixprec_kernels::table(Isa::Scalar).unwrap();
    let x = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0];
    let run = |op: UnaryOp| {
        let mut out = [0.0f32; 5];
        let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        (k.ew.unary.f)(op, mixprec_kernels::slice::Src::F32(&xs), mixprec_kernels::slice::Dst::F32(&mut out));
        out
    };
    let e = run(UnaryOp::Exp);
    assert!(e[0].is_nan() && e[1] == f32::INFINITY && e[2] == 0.0 && e[3] == 1.0);
    let l = run(UnaryOp::Log);
    assert!(l[0].is_nan() && l[1] == f32::INFINITY && l[2].is_nan() && l[3] == f32::NEG_INFINITY);
    let r = run(UnaryOp::Relu);
    assert!(r[0].is_nan() && r[1] == f32::INFINITY && r[2] == 0.0 && r[4].to_bits() == 0);
    let s = run(UnaryOp::Sigmoid);
    assert!(s[0].is_nan() && s[1] == 1.0 && s[2] == 0.0 && s[3] == 0.5);
    let g = run(UnaryOp::GeluTanh);
    assert!(g[0].is_nan() && g[1] == f32::INFINITY && g[2] == 0.0 && g[3] == 0.0);
    let g = run(UnaryOp::GeluErf);
    assert!(g[0].is_nan() && g[1] == f32::INFINITY && g[2] == 0.0 && g[4] == 0.0);
    let q = run(UnaryOp::Sqrt);
    assert!(q[0].is_nan() && q[2].is_nan() && q[4].to_bits() == (-0.0f32).to_bits());
}

#[test]
fn gelu_has_no_cancellation_for_negative_inputs() {
    // 0.5·x·(1 + tanh(u)) loses every bit here; the σ form keeps them.
    for x in [-5.0f64, -8.0, -12.0] {
        let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
        let want = x / (1.0 + (-2.0 * u).exp());
        let got = unary_f64(UnaryOp::GeluTanh, x);
        assert!(((got - want) / want).abs() < 1e-14, "{x}: {got:e} vs {want:e}");
    }
    // erf form: Φ(−8)·(−8) ≈ −4.9e-15 must keep its relative accuracy.
    let g = unary_f64(UnaryOp::GeluErf, -8.0);
    assert!((g / -4.976768459417428e-15 - 1.0).abs() < 1e-12, "{g:e}");
}

#[test]
fn derivatives_match_finite_differences_and_the_oracle() {
    // Each derivative against a central difference of its forward op.
    let pairs = [
        (GradOp::Exp, UnaryOp::Exp, true),
        (GradOp::Log, UnaryOp::Log, false),
        (GradOp::Sqrt, UnaryOp::Sqrt, true),
        (GradOp::Rsqrt, UnaryOp::Rsqrt, true),
        (GradOp::Recip, UnaryOp::Recip, true),
        (GradOp::Square, UnaryOp::Square, false),
        (GradOp::Tanh, UnaryOp::Tanh, true),
        (GradOp::Sigmoid, UnaryOp::Sigmoid, true),
        (GradOp::GeluTanh, UnaryOp::GeluTanh, false),
        (GradOp::GeluErf, UnaryOp::GeluErf, false),
        (GradOp::Relu, UnaryOp::Relu, false),
        (GradOp::Abs, UnaryOp::Abs, false),
    ];
    for (gop, fop, from_output) in pairs {
        for x in [0.3f64, 1.7, 2.5, -0.8, -2.2, 4.0] {
            if matches!(fop, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt) && x < 0.0 {
                continue;
            }
            let h = 1e-6;
            let fd = (unary_f64(fop, x + h) - unary_f64(fop, x - h)) / (2.0 * h);
            let saved = if from_output { unary_f64(fop, x) } else { x };
            let d = grad_f64(gop, 1.0, saved);
            assert!((d - fd).abs() <= 1e-6 * (1.0 + fd.abs()), "{gop:?} at {x}: {d} vs {fd}");
        }
    }
    assert_eq!(grad_f64(GradOp::Relu, f64::NAN, -1.0), 0.0);
    assert_eq!(grad_f64(GradOp::Relu, 2.0, 0.0), 0.0);

    let mut rng = SplitMix(5);
    let vals = unary_inputs(&mut rng);
    let gs = mixed_values(&mut rng, vals.len());
    for k in paths() {
        for (eg, es, eo) in [
            (Elem::F32, Elem::F32, Elem::F32),
            (Elem::F16, Elem::F16, Elem::F16),
            (Elem::Bf16, Elem::F32, Elem::Bf16),
            (Elem::F64, Elem::F64, Elem::F64),
        ] {
            let g = Buf::from_f64(eg, &gs);
            let s = Buf::from_f64(es, &vals);
            for op in GradOp::ALL {
                let mut out = Buf::zeros(eo, vals.len());
                (k.ew.unary_grad.f)(op, g.src(), s.src(), out.dst());
                for i in 0..vals.len() {
                    let exact = grad_f64(op, g.get(i), s.get(i));
                    let got = out.get(i);
                    assert!(
                        within_ulps(eo, got, exact, math_ulps(k.isa, eo)),
                        "{}: {op:?} {eg:?} g = {:e}, saved = {:e}: got {got:e}, exact {exact:e}",
                        k.isa,
                        g.get(i),
                        s.get(i)
                    );
                }
            }
        }
    }
}

#[test]
fn select_picks_without_rounding_twice() {
    let mut rng = SplitMix(9);
    for k in paths() {
        let (rows, n) = (3, 290);
        let cond: Vec<f64> = (0..rows * n).map(|i| [0.0, 1.0, -0.0, f64::NAN, 2.0][i % 5]).collect();
        let c = Buf::from_f64(Elem::F16, &cond);
        let a = Buf::from_f64(Elem::F16, &mixed_values(&mut rng, rows * n));
        let b = Buf::from_f64(Elem::F32, &mixed_values(&mut rng, n));
        let mut out = Buf::zeros(Elem::F32, rows * n);
        (k.ew.select.f)(rows, n, Operand::Full(c.src()), Operand::Full(a.src()), Operand::Row(b.src()), out.dst());
        for i in 0..rows {
            for j in 0..n {
                let t = c.get(i * n + j);
                let want = if t != 0.0 { a.get(i * n + j) } else { b.get(j) };
                let got = out.get(i * n + j);
                assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{}: ({i},{j})", k.isa);
            }
        }
    }
}

#[test]
#[should_panic(expected = "operand b holds 3 elements")]
fn wrong_operand_length_panics() {
    let a = [1.0f32; 6];
    let b = [1.0f32; 3];
    let mut o = [0.0f32; 6];
    ew::binary(
        BinaryOp::Add,
        2,
        3,
        Operand::Full(mixprec_kernels::slice::Src::F32(&a)),
        Operand::Col(mixprec_kernels::slice::Src::F32(&b)),
        mixprec_kernels::slice::Dst::F32(&mut o),
    );
}

#[test]
fn cast_rounds_once_between_every_pair_of_types() {
    use mixprec_kernels::convert::cast;
    // Every f16 survives a trip through every type; every bf16 through the
    // types that hold it.
    let halves: Vec<f64> = (0..=u16::MAX).map(|b| half::f16::from_bits(b).to_f64()).collect();
    let h = Buf::from_f64(Elem::F16, &halves);
    for via in [Elem::F64, Elem::F32] {
        let mut mid = Buf::zeros(via, h.len());
        cast(h.src(), mid.dst());
        let mut back = Buf::zeros(Elem::F16, h.len());
        cast(mid.src(), back.dst());
        assert!(back.same(&h), "f16 -> {via:?} -> f16");
    }
    // Random f64 values: the result is the nearest value of the target type.
    let mut rng = SplitMix(17);
    let vals: Vec<f64> = (0..100_000)
        .map(|_| {
            let m = rng.next_f32() as f64 + (rng.next_u64() >> 40) as f64 * 2f64.powi(-50);
            m * 2f64.powi((rng.next_u64() % 40) as i32 - 20)
        })
        .collect();
    let src = Buf::from_f64(Elem::F64, &vals);
    for to in [Elem::F32, Elem::F16, Elem::Bf16] {
        let mut out = Buf::zeros(to, vals.len());
        cast(src.src(), out.dst());
        for (i, &x) in vals.iter().enumerate() {
            assert_eq!(out.get(i), round_to(to, x), "{x:e} -> {to:?}");
            assert!(within_ulps(to, out.get(i), x, 0.5), "{x:e} -> {to:?}");
        }
        // Narrow to narrow goes through an exact f32.
        let mut h2 = Buf::zeros(if to == Elem::F16 { Elem::Bf16 } else { Elem::F16 }, vals.len());
        cast(out.src(), h2.dst());
        for i in 0..vals.len() {
            assert_eq!(h2.get(i), round_to(h2.src().elem(), out.get(i)));
        }
    }
}
