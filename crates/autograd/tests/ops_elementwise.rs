//! Elementwise ops: literal cases derived by hand, and finite-difference
//! gradchecks on random shapes (f64), away from kinks.

mod common;

use common::*;
use mixprec_autograd::Var;
use mixprec_autograd::gradcheck::Tolerance;
use mixprec_tensor::{DType, Tensor};
use proptest::prelude::*;

fn loss_backward(y: &Var) {
    y.sum_all().unwrap().backward().unwrap();
}

#[test]
fn binary_literals() {
    let a = param(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], DType::F32);
    let b = param(&[10.0, 20.0, 30.0], &[3], DType::F32);
    let y = a.add(&b).unwrap();
    assert_eq!(val64(&y), vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    loss_backward(&y);
    assert_eq!(grad64(&a), vec![1.0; 6]);
    assert_eq!(grad64(&b), vec![2.0; 3]);

    let (a, b) = (param(&[5.0], &[1], DType::F32), param(&[1.0, 2.0], &[2, 1], DType::F32));
    let y = a.sub(&b).unwrap();
    assert_eq!((y.shape(), val64(&y)), (&[2usize, 1][..], vec![4.0, 3.0]));
    loss_backward(&y);
    assert_eq!((grad64(&a), grad64(&b)), (vec![2.0], vec![-1.0, -1.0]));

    let (a, b) = (param(&[1.0, 2.0, 3.0], &[3], DType::F32), param(&[4.0, 5.0, 6.0], &[3], DType::F32));
    let y = a.mul(&b).unwrap();
    assert_eq!(val64(&y), vec![4.0, 10.0, 18.0]);
    loss_backward(&y);
    assert_eq!((grad64(&a), grad64(&b)), (vec![4.0, 5.0, 6.0], vec![1.0, 2.0, 3.0]));

    // y = a/b: da = 1/b, db = −a/b²
    let (a, b) = (param(&[1.0, 2.0], &[2], DType::F32), param(&[4.0, 8.0], &[2], DType::F32));
    let y = a.div(&b).unwrap();
    assert_eq!(val64(&y), vec![0.25, 0.25]);
    loss_backward(&y);
    assert_eq!((grad64(&a), grad64(&b)), (vec![0.25, 0.125], vec![-1.0 / 16.0, -1.0 / 32.0]));
}

#[test]
fn scalar_and_neg_literals() {
    type Case = (&'static str, fn(&Var) -> Var, [f64; 2], f64);
    let cases: [Case; 6] = [
        ("add_scalar", |x| x.add_scalar(3.0).unwrap(), [4.0, 5.0], 1.0),
        ("sub_scalar", |x| x.sub_scalar(3.0).unwrap(), [-2.0, -1.0], 1.0),
        ("rsub_scalar", |x| x.rsub_scalar(3.0).unwrap(), [2.0, 1.0], -1.0),
        ("mul_scalar", |x| x.mul_scalar(3.0).unwrap(), [3.0, 6.0], 3.0),
        ("div_scalar", |x| x.div_scalar(4.0).unwrap(), [0.25, 0.5], 0.25),
        ("neg", |x| x.neg().unwrap(), [-1.0, -2.0], -1.0),
    ];
    for (name, f, want, slope) in cases {
        let x = param(&[1.0, 2.0], &[2], DType::F32);
        let y = f(&x);
        assert_eq!(val64(&y), want.to_vec(), "{name}");
        loss_backward(&y);
        assert_eq!(grad64(&x), vec![slope; 2], "{name}");
    }
}

#[test]
fn unary_literals() {
    let ln2 = std::f64::consts::LN_2;
    // (op, x, y, dy/dx), all exact or within 1 ulp of f64
    type Case = (&'static str, fn(&Var) -> Var, Vec<f64>, Vec<f64>, Vec<f64>);
    let cases: Vec<Case> = vec![
        ("exp", |x| x.exp().unwrap(), vec![0.0, ln2], vec![1.0, 2.0], vec![1.0, 2.0]),
        ("log", |x| x.log().unwrap(), vec![1.0, 2.0], vec![0.0, ln2], vec![1.0, 0.5]),
        ("sqrt", |x| x.sqrt().unwrap(), vec![4.0, 9.0], vec![2.0, 3.0], vec![0.25, 1.0 / 6.0]),
        ("tanh", |x| x.tanh().unwrap(), vec![0.0], vec![0.0], vec![1.0]),
        ("sigmoid", |x| x.sigmoid().unwrap(), vec![0.0], vec![0.5], vec![0.25]),
        ("relu", |x| x.relu().unwrap(), vec![-1.0, 0.0, 2.0], vec![0.0, 0.0, 2.0], vec![0.0, 0.0, 1.0]),
        ("gelu", |x| x.gelu().unwrap(), vec![0.0], vec![0.0], vec![0.5]),
        ("gelu_tanh", |x| x.gelu_tanh().unwrap(), vec![0.0], vec![0.0], vec![0.5]),
        ("pow_scalar", |x| x.pow_scalar(2.0).unwrap(), vec![2.0, -3.0], vec![4.0, 9.0], vec![4.0, -6.0]),
    ];
    for (name, f, x, y, d) in cases {
        let xv = param(&x, &[x.len()], DType::F64);
        let yv = f(&xv);
        assert_eq!(yv.op(), Some(name));
        close(&val64(&yv), &y, 1e-15);
        loss_backward(&yv);
        close(&grad64(&xv), &d, 1e-15);
    }
    // tanh(1) = 0.7615941559557649, 1 − tanh² = 0.41997434161402614
    let x = param(&[1.0], &[1], DType::F64);
    loss_backward(&x.tanh().unwrap());
    close(&grad64(&x), &[0.419_974_341_614_026_14], 1e-15);
}

#[test]
fn pow_literals() {
    // a^b: da = b·a^(b−1), db = a^b·ln a
    let (a, b) = (param(&[2.0, 3.0], &[2], DType::F64), param(&[3.0, 2.0], &[2], DType::F64));
    let y = a.pow(&b).unwrap();
    close(&val64(&y), &[8.0, 9.0], 1e-14);
    loss_backward(&y);
    close(&grad64(&a), &[12.0, 6.0], 1e-13);
    close(&grad64(&b), &[8.0 * 2f64.ln(), 9.0 * 3f64.ln()], 1e-13);
}

#[test]
fn select_literals() {
    let cond = t32(&[1.0, 0.0, 1.0], &[3]);
    let a = param(&[1.0, 2.0, 3.0], &[3], DType::F32);
    let b = param(&[7.0], &[], DType::F32);
    let y = Var::select(&cond, &a, &b).unwrap();
    assert_eq!(val64(&y), vec![1.0, 7.0, 3.0]);
    loss_backward(&y);
    assert_eq!((grad64(&a), grad64(&b)), (vec![1.0, 0.0, 1.0], vec![1.0]));
}

#[test]
fn cast_literals() {
    let x = param(&[1.5, 2.5], &[2], DType::F32);
    let h = x.to_dtype(DType::F16).unwrap();
    assert_eq!((h.dtype(), h.op()), (DType::F16, Some("cast")));
    loss_backward(&h.mul_scalar(2.0).unwrap());
    let g = x.grad().unwrap();
    assert_eq!((g.dtype(), g.to_vec_f64().unwrap()), (DType::F32, vec![2.0, 2.0]));
    // The same dtype is no op at all.
    assert!(x.to_dtype(DType::F32).unwrap().is_param());
}

#[test]
fn half_inputs_compute_in_fp32_and_round_once() {
    // 2049 is not an f16; 2048 + 1 in FP32 then rounded to f16 ties to 2048.
    let x = param(&[2048.0], &[1], DType::F16);
    let y = x.add_scalar(1.0).unwrap();
    assert_eq!((y.dtype(), val64(&y)), (DType::F16, vec![2048.0]));
    let y = x.add_scalar(3.0).unwrap();
    assert_eq!(val64(&y), vec![2052.0]);
}

fn shape2() -> impl Strategy<Value = Vec<usize>> {
    (1usize..5, 1usize..6).prop_map(|(r, c)| vec![r, c])
}

/// A shape `b` broadcasts to `a`'s: full, row, column, one, scalar, extra leading axis.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (shape2(), 0usize..6).prop_map(|(a, k)| {
        let b = match k {
            0 => a.clone(),
            1 => vec![a[1]],
            2 => vec![a[0], 1],
            3 => vec![1],
            4 => vec![],
            _ => vec![2, a[0], a[1]],
        };
        (a, b)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_add_sub_mul_div((sa, sb) in broadcast_pair(), seed in any::<u64>(), swap in any::<bool>()) {
        let (sa, sb) = if swap { (sb, sa) } else { (sa, sb) };
        let a = uniform(&sa, -2.0, 2.0, seed);
        let b = away_from_zero(&sb, 0.5, 2.0, seed ^ 1);
        check(|v| v[0].add(&v[1]), &[a.clone(), b.clone()]);
        check(|v| v[0].sub(&v[1]), &[a.clone(), b.clone()]);
        check(|v| v[0].mul(&v[1]), &[a.clone(), b.clone()]);
        check(|v| v[0].div(&v[1]), &[a, b]);
    }

    #[test]
    fn gradcheck_scalar_ops(shape in shape2(), seed in any::<u64>(), s in 0.5f64..3.0) {
        let x = uniform(&shape, -2.0, 2.0, seed);
        check(|v| v[0].add_scalar(s), std::slice::from_ref(&x));
        check(|v| v[0].sub_scalar(s), std::slice::from_ref(&x));
        check(|v| v[0].rsub_scalar(s), std::slice::from_ref(&x));
        check(|v| v[0].mul_scalar(-s), std::slice::from_ref(&x));
        check(|v| v[0].div_scalar(s), std::slice::from_ref(&x));
        check(|v| v[0].neg(), &[x]);
    }

    #[test]
    fn gradcheck_unary(shape in shape2(), seed in any::<u64>()) {
        let x = uniform(&shape, -2.0, 2.0, seed);
        let pos = uniform(&shape, 0.5, 3.0, seed ^ 2);
        let off_kink = away_from_zero(&shape, 0.05, 2.0, seed ^ 3);
        check(|v| v[0].exp(), std::slice::from_ref(&x));
        check(|v| v[0].log(), std::slice::from_ref(&pos));
        check(|v| v[0].sqrt(), std::slice::from_ref(&pos));
        check(|v| v[0].tanh(), std::slice::from_ref(&x));
        check(|v| v[0].sigmoid(), std::slice::from_ref(&x));
        check(|v| v[0].relu(), &[off_kink]);
        check(|v| v[0].gelu(), std::slice::from_ref(&x));
        check(|v| v[0].gelu_tanh(), &[x]);
    }

    #[test]
    fn gradcheck_pow((sa, sb) in broadcast_pair(), seed in any::<u64>(), p in prop::sample::select(vec![2.0, 3.0, 0.5, -1.5, 1.25])) {
        let a = uniform(&sa, 0.5, 2.0, seed);
        let b = uniform(&sb, -2.0, 2.0, seed ^ 4);
        check(|v| v[0].pow(&v[1]), &[a.clone(), b]);
        check(|v| v[0].pow_scalar(p), &[a]);
    }

    #[test]
    fn gradcheck_select((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let a = uniform(&sa, -2.0, 2.0, seed);
        let b = uniform(&sb, -2.0, 2.0, seed ^ 5);
        let shape = if sa.len() >= sb.len() { sa.clone() } else { sb.clone() };
        let cond = uniform(&shape, -1.0, 1.0, seed ^ 6).gt(&Tensor::zeros(&[], DType::F64).unwrap()).unwrap();
        check(|v| Var::select(&cond, &v[0], &v[1]), &[a, b]);
    }

    #[test]
    fn gradcheck_cast_round_trip(shape in shape2(), seed in any::<u64>()) {
        // Through f32 and back: the rounding to f32 (relative 6e-8) is a step
        // function, so the difference quotient needs a wide step (numerics.md).
        let x = uniform(&shape, -2.0, 2.0, seed);
        let tol = Tolerance { step: 1e-3, atol: 1e-6, rtol: 1e-3 };
        check_tol(|v| v[0].to_dtype(DType::F32)?.mul_scalar(3.0)?.to_dtype(DType::F64), &[x], tol);
    }
}
