//! matmul, linear and linear_relu: literal cases, gradchecks on random
//! shapes (2-D, batched, broadcast, 1-D), and the f32/f16/bf16 paths
//! against the f64 reference.

mod common;

use common::*;
use mixprec_autograd::Var;
use mixprec_tensor::DType;
use proptest::prelude::*;

#[test]
fn matmul_literal() {
    // C = A·B; L = Σ C: dA = 1·Bᵀ, dB = Aᵀ·1
    let a = param(&[1.0, 2.0, 3.0, 4.0], &[2, 2], DType::F32);
    let b = param(&[5.0, 6.0, 7.0, 8.0], &[2, 2], DType::F32);
    let c = a.matmul(&b).unwrap();
    assert_eq!(val64(&c), vec![19.0, 22.0, 43.0, 50.0]);
    c.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&a), vec![11.0, 15.0, 11.0, 15.0]);
    assert_eq!(grad64(&b), vec![4.0, 4.0, 6.0, 6.0]);
    // A second pass accumulates (beta = 1 into the existing buffers).
    a.matmul(&b).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&a), vec![22.0, 30.0, 22.0, 30.0]);
    assert_eq!(grad64(&b), vec![8.0, 8.0, 12.0, 12.0]);
    // A transposed view is read by flag: (Bᵀ)ᵀ·… gives the same numbers.
    let bt = param(&[5.0, 7.0, 6.0, 8.0], &[2, 2], DType::F32);
    let c = a.matmul(&bt.t().unwrap()).unwrap();
    assert_eq!(val64(&c), vec![19.0, 22.0, 43.0, 50.0]);
    c.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&bt), vec![4.0, 6.0, 4.0, 6.0]);
}

#[test]
fn linear_literals() {
    // y = x·Wᵀ + b = [1, 2, −1]
    let x = param(&[1.0, 2.0], &[1, 2], DType::F32);
    let w = param(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2], DType::F32);
    let b = param(&[0.0, 0.0, -4.0], &[3], DType::F32);
    let y = x.linear(&w, Some(&b)).unwrap();
    assert_eq!(val64(&y), vec![1.0, 2.0, -1.0]);
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&w), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    assert_eq!(grad64(&b), vec![1.0, 1.0, 1.0]);
    assert_eq!(grad64(&x), vec![2.0, 2.0]);
    // With ReLU the third output is cut: its row of dW, db and its share of dx vanish.
    for p in [&x, &w, &b] {
        p.zero_grad();
    }
    let y = x.linear_relu(&w, Some(&b)).unwrap();
    assert_eq!((y.op(), val64(&y)), (Some("linear_relu"), vec![1.0, 2.0, 0.0]));
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&w), vec![1.0, 2.0, 1.0, 2.0, 0.0, 0.0]);
    assert_eq!(grad64(&b), vec![1.0, 1.0, 0.0]);
    assert_eq!(grad64(&x), vec![1.0, 1.0]);
}

#[test]
fn linear_validates_shapes() {
    let x = param(&[1.0, 2.0], &[1, 2], DType::F32);
    let w = param(&[1.0; 6], &[2, 3], DType::F32);
    assert!(x.linear(&w, None).is_err());
    let w = param(&[1.0; 6], &[3, 2], DType::F32);
    let b = param(&[1.0; 2], &[2], DType::F32);
    assert!(x.linear(&w, Some(&b)).is_err());
    assert!(x.linear(&b, None).is_err());
}

/// The same product in f64 and in `dtype`: values and gradients agree
/// within the dtype's rounding.
fn low_precision_matches(dtype: DType, tol: f64, relu: bool) {
    let (n, i, o) = (7, 33, 5);
    let x = uniform(&[n, i], -1.0, 1.0, 1);
    let w = uniform(&[o, i], -1.0, 1.0, 2);
    let b = uniform(&[o], -1.0, 1.0, 3);
    let run = |dt: DType| {
        let (xv, wv, bv) = (
            Var::parameter(x.to_dtype(dt).unwrap()),
            Var::parameter(w.to_dtype(dt).unwrap()),
            Var::parameter(b.to_dtype(dt).unwrap()),
        );
        let y = if relu { xv.linear_relu(&wv, Some(&bv)) } else { xv.linear(&wv, Some(&bv)) }.unwrap();
        assert_eq!(y.dtype(), dt);
        let loss =
            y.to_dtype(DType::F64).unwrap().mul(&Var::new(uniform(&[n, o], -1.0, 1.0, 4))).unwrap().sum_all().unwrap();
        loss.backward().unwrap();
        for p in [&xv, &wv, &bv] {
            assert_eq!(p.grad().unwrap().dtype(), dt);
        }
        (val64(&y), grad64(&xv), grad64(&wv), grad64(&bv))
    };
    let want = run(DType::F64);
    let got = run(dtype);
    close(&got.0, &want.0, tol);
    close(&got.1, &want.1, tol);
    close(&got.2, &want.2, tol);
    close(&got.3, &want.3, tol);
}

#[test]
fn f32_f16_bf16_linear_match_f64() {
    for relu in [false, true] {
        low_precision_matches(DType::F32, 1e-5, relu);
        low_precision_matches(DType::F16, 0.05, relu);
        low_precision_matches(DType::BF16, 0.2, relu);
    }
}

/// (a's shape, b's shape) for every form matmul accepts.
fn matmul_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (1usize..5, 1usize..5, 1usize..5, 1usize..4, 0usize..8).prop_map(|(m, k, n, b, form)| match form {
        0 => (vec![m, k], vec![k, n]),
        1 => (vec![b, m, k], vec![b, k, n]),
        2 => (vec![b, m, k], vec![k, n]),
        3 => (vec![m, k], vec![b, k, n]),
        4 => (vec![1, m, k], vec![b, k, n]),
        5 => (vec![k], vec![k, n]),
        6 => (vec![b, m, k], vec![k]),
        _ => (vec![k], vec![k]),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_matmul((sa, sb) in matmul_shapes(), seed in any::<u64>()) {
        let (a, b) = (uniform(&sa, -1.0, 1.0, seed), uniform(&sb, -1.0, 1.0, seed ^ 1));
        check(|v| v[0].matmul(&v[1]), &[a.clone(), b.clone()]);
        // Transposed views as operands.
        if sa.len() == 2 && sb.len() == 2 {
            let (at, bt) = (uniform(&[sa[1], sa[0]], -1.0, 1.0, seed ^ 2), uniform(&[sb[1], sb[0]], -1.0, 1.0, seed ^ 3));
            check(|v| v[0].t()?.matmul(&v[1].t()?), &[at, bt]);
        }
    }

    #[test]
    fn gradcheck_linear(rows in 1usize..5, lead in 0usize..3, i in 1usize..6, o in 1usize..6, bias in any::<bool>(), seed in any::<u64>()) {
        let mut xs = vec![rows];
        if lead > 0 { xs.insert(0, lead); }
        xs.push(i);
        let (x, w, b) = (uniform(&xs, -1.0, 1.0, seed), uniform(&[o, i], -1.0, 1.0, seed ^ 1), uniform(&[o], -1.0, 1.0, seed ^ 2));
        if bias {
            check(|v| v[0].linear(&v[1], Some(&v[2])), &[x, w, b]);
        } else {
            check(|v| v[0].linear(&v[1], None), &[x, w]);
        }
    }

    #[test]
    fn gradcheck_linear_relu(rows in 1usize..5, i in 1usize..6, o in 1usize..6, seed in any::<u64>()) {
        let (x, w, b) = (uniform(&[rows, i], -1.0, 1.0, seed), uniform(&[o, i], -1.0, 1.0, seed ^ 1), uniform(&[o], -1.0, 1.0, seed ^ 2));
        // Away from the kink: every pre-activation at least 1e-3 from 0.
        let pre = Var::new(x.clone()).linear(&Var::new(w.clone()), Some(&Var::new(b.clone()))).unwrap();
        prop_assume!(val64(&pre).iter().all(|v| v.abs() > 1e-3));
        check(|v| v[0].linear_relu(&v[1], Some(&v[2])), &[x, w, b]);
    }
}

/// An f16/bf16 weight gradient is written in place when fresh (the first
/// backward, and again into the buffer `zero_grad` kept) and added through
/// a rounded temporary when one exists: the same bits each fresh time, and
/// exactly twice them after a second backward without `zero_grad`.
#[test]
fn half_weight_gradients_fresh_and_accumulated() {
    for dt in [DType::F16, DType::BF16] {
        let (n, i, o) = (9, 37, 21);
        let x = Var::new(uniform(&[n, i], -1.0, 1.0, 5).to_dtype(dt).unwrap());
        let w = Var::parameter(uniform(&[o, i], -1.0, 1.0, 6).to_dtype(dt).unwrap());
        let u = Var::new(uniform(&[n, o], -1.0, 1.0, 7));
        let backward = || x.linear(&w, None).unwrap().to_dtype(DType::F32).unwrap().mul(&u).unwrap().sum_all().unwrap();
        backward().backward().unwrap();
        let first = grad64(&w);
        assert_eq!(w.grad().unwrap().dtype(), dt);
        assert!(first.iter().any(|&v| v != 0.0));
        w.zero_grad();
        backward().backward().unwrap();
        assert_eq!(grad64(&w), first, "{dt}: the kept buffer, overwritten");
        backward().backward().unwrap();
        let twice: Vec<f64> = first.iter().map(|v| 2.0 * v).collect();
        assert_eq!(grad64(&w), twice, "{dt}: accumulated");
    }
}
