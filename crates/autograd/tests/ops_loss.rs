//! cross_entropy, nll_loss and mse_loss: literal cases derived by hand,
//! agreement with the unfused composition, and gradchecks.

mod common;

use common::*;
use mixprec_autograd::{AutogradError, CrossEntropy, Reduction, Var};
use mixprec_tensor::DType;
use proptest::prelude::*;

#[test]
fn cross_entropy_literals() {
    // logits [0, ln 3]: p = [1/4, 3/4]; target 1: ℓ = −ln 3/4, dx = p − onehot.
    let x = param(&[0.0, 3f64.ln()], &[1, 2], DType::F64);
    let l = x.cross_entropy(&[1], CrossEntropy::default()).unwrap();
    close(&val64(&l), &[-(0.75f64.ln())], 1e-15);
    l.backward().unwrap();
    close(&grad64(&x), &[0.25, -0.25], 1e-15);

    // Smoothing 0.2 over 2 classes: q = [0.1, 0.9].
    let x = param(&[0.0, 3f64.ln()], &[1, 2], DType::F64);
    let opts = CrossEntropy { label_smoothing: 0.2, ..CrossEntropy::default() };
    let l = x.cross_entropy(&[1], opts).unwrap();
    close(&val64(&l), &[-(0.1 * 0.25f64.ln() + 0.9 * 0.75f64.ln())], 1e-15);
    l.backward().unwrap();
    close(&grad64(&x), &[0.15, -0.15], 1e-15);

    // Mean over the non-ignored rows; the ignored row gets no gradient.
    let x = param(&[0.0, 3f64.ln(), 5.0, 1.0, 0.0, 0.0], &[3, 2], DType::F64);
    let opts = CrossEntropy { ignore_index: Some(7), ..CrossEntropy::default() };
    let l = x.cross_entropy(&[1, 7, 0], opts).unwrap();
    close(&val64(&l), &[(-(0.75f64.ln()) + 2f64.ln()) / 2.0], 1e-15);
    l.backward().unwrap();
    close(&grad64(&x), &[0.125, -0.125, 0.0, 0.0, -0.25, 0.25], 1e-15);

    // No reduction: one loss per position, class axis 1 of [N, C, d].
    let x = param(&[0.0, 0.0, 0.0, 3f64.ln()], &[1, 2, 2], DType::F64);
    let opts = CrossEntropy { reduction: Reduction::None, ..CrossEntropy::default() };
    let l = x.cross_entropy(&[0, 1], opts).unwrap();
    assert_eq!(l.shape(), &[1, 2]);
    close(&val64(&l), &[2f64.ln(), -(0.75f64.ln())], 1e-15);
}

#[test]
fn cross_entropy_errors_are_typed() {
    let x = param(&[0.0, 1.0], &[1, 2], DType::F32);
    assert_eq!(
        x.cross_entropy(&[2], CrossEntropy::default()).unwrap_err(),
        AutogradError::BadTarget { op: "cross_entropy", position: 0, target: 2, classes: 2 }
    );
    assert!(matches!(x.cross_entropy(&[0, 1], CrossEntropy::default()), Err(AutogradError::BadArgument { .. })));
    let bad = CrossEntropy { label_smoothing: 1.5, ..CrossEntropy::default() };
    assert!(matches!(x.cross_entropy(&[0], bad), Err(AutogradError::BadArgument { .. })));
}

#[test]
fn cross_entropy_on_half_logits_computes_in_fp32() {
    // 64 classes with logits around 10: log-softmax in f16 would lose the
    // loss's low bits; computed in FP32 the f16 result is the f64 loss rounded once.
    let x = uniform(&[3, 64], 9.0, 11.0, 5).to_dtype(DType::F16).unwrap();
    let want = Var::new(x.to_dtype(DType::F64).unwrap()).cross_entropy(&[1, 5, 63], CrossEntropy::default()).unwrap();
    let got = Var::new(x).cross_entropy(&[1, 5, 63], CrossEntropy::default()).unwrap();
    assert_eq!(got.dtype(), DType::F16);
    assert_eq!(val64(&got)[0], DType::F16.round(val64(&want)[0]));
}

#[test]
fn nll_and_mse_literals() {
    let x = param(&[-1.0, -2.0, -3.0, -4.0], &[2, 2], DType::F32);
    let l = x.nll_loss(&[1, 0], CrossEntropy::default()).unwrap();
    assert_eq!(val64(&l), vec![2.5]);
    l.backward().unwrap();
    assert_eq!(grad64(&x), vec![0.0, -0.5, -0.5, 0.0]);

    // mean((a − b)²) with a − b = [−2, −3]: 6.5; da = (a − b), db = −da.
    let (a, b) = (param(&[1.0, 2.0], &[2], DType::F32), param(&[3.0, 5.0], &[2], DType::F32));
    let l = a.mse_loss(&b, Reduction::Mean).unwrap();
    assert_eq!(val64(&l), vec![6.5]);
    l.backward().unwrap();
    assert_eq!((grad64(&a), grad64(&b)), (vec![-2.0, -3.0], vec![2.0, 3.0]));
    let l = Var::new(a.value()).mse_loss(&Var::new(b.value()), Reduction::Sum).unwrap();
    assert_eq!(val64(&l), vec![13.0]);
}

fn reduction() -> impl Strategy<Value = Reduction> {
    prop::sample::select(vec![Reduction::Mean, Reduction::Sum, Reduction::None])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_cross_entropy(n in 1usize..5, c in 1usize..6, d in 0usize..3, eps in 0.0f64..0.5, red in reduction(), seed in any::<u64>(), ignore in any::<bool>()) {
        let shape = if d == 0 { vec![n, c] } else { vec![n, c, d] };
        let positions = n * d.max(1);
        let mut rng = mixprec_tensor::random::Generator::new(seed);
        let mut targets: Vec<usize> = (0..positions).map(|_| rng.below(c as u64) as usize).collect();
        // Ignore the first position when another one is left (all ignored
        // under the mean is 0/0, NaN, as in PyTorch).
        let ignore = ignore && positions > 1;
        let opts = CrossEntropy { reduction: red, label_smoothing: eps, ignore_index: ignore.then_some(c) };
        if ignore { targets[0] = c; }
        let x = uniform(&shape, -3.0, 3.0, seed ^ 1);
        check(|v| v[0].cross_entropy(&targets, opts), std::slice::from_ref(&x));
        check(|v| v[0].log_softmax(1)?.nll_loss(&targets, opts), std::slice::from_ref(&x));
        // Fused equals composed when there is no smoothing.
        if eps == 0.0 || d > 0 {
            let o = CrossEntropy { label_smoothing: 0.0, ..opts };
            let fused = Var::new(x.clone()).cross_entropy(&targets, o).unwrap();
            let composed = Var::new(x).log_softmax(1).unwrap().nll_loss(&targets, o).unwrap();
            close(&val64(&fused), &val64(&composed), 1e-12);
        }
    }

    #[test]
    fn gradcheck_mse(shape in prop::collection::vec(1usize..5, 1..3), red in reduction(), seed in any::<u64>()) {
        let (a, b) = (uniform(&shape, -2.0, 2.0, seed), uniform(&shape, -2.0, 2.0, seed ^ 1));
        check(|v| v[0].mse_loss(&v[1], red), &[a, b]);
    }
}
