//! Reductions, softmax, and shape ops: literal cases derived by hand and
//! gradchecks on random shapes (f64).

mod common;

use common::*;
use mixprec_autograd::{BackwardOptions, Var};
use mixprec_tensor::DType;
use proptest::prelude::*;

fn seeded_backward(y: &Var, seed: &[f64]) {
    let g = t64(seed, y.shape()).to_dtype(y.dtype()).unwrap();
    y.backward_with(BackwardOptions { grad: Some(g), retain_graph: false }).unwrap();
}

#[test]
fn sum_mean_max_literals() {
    let x = param(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], DType::F32);
    let s = x.sum(&[1], false).unwrap();
    assert_eq!((s.shape(), val64(&s)), (&[2usize][..], vec![6.0, 15.0]));
    seeded_backward(&s, &[1.0, 2.0]);
    assert_eq!(grad64(&x), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);

    let x = param(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], DType::F32);
    let m = x.mean(&[0], true).unwrap();
    assert_eq!((m.shape(), val64(&m)), (&[1usize, 3][..], vec![2.5, 3.5, 4.5]));
    m.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&x), vec![0.5; 6]);

    let x = param(&[1.0, 2.0, 3.0, 4.0], &[2, 2], DType::F32);
    let m = x.mean_all().unwrap();
    assert_eq!((m.shape(), val64(&m)), (&[][..], vec![2.5]));
    m.backward().unwrap();
    assert_eq!(grad64(&x), vec![0.25; 4]);

    // Ties share the gradient.
    let x = param(&[1.0, 5.0, 3.0, 4.0, 2.0, 4.0], &[2, 3], DType::F32);
    let m = x.max(1, false).unwrap();
    assert_eq!(val64(&m), vec![5.0, 4.0]);
    m.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&x), vec![0.0, 1.0, 0.0, 0.5, 0.0, 0.5]);
}

#[test]
fn softmax_literals() {
    // x = [0, ln 3]: softmax = [1/4, 3/4]; with g = [1, 0],
    // dx = y·(g − Σ g·y) = [1/4·3/4, 3/4·(−1/4)].
    let x = param(&[0.0, 3f64.ln()], &[2], DType::F64);
    let y = x.softmax(0).unwrap();
    close(&val64(&y), &[0.25, 0.75], 1e-15);
    seeded_backward(&y, &[1.0, 0.0]);
    close(&grad64(&x), &[0.1875, -0.1875], 1e-15);
    // log_softmax: dx = g − softmax·Σ g = [1 − 1/4, −3/4]
    let x = param(&[0.0, 3f64.ln()], &[2], DType::F64);
    let y = x.log_softmax(-1).unwrap();
    close(&val64(&y), &[0.25f64.ln(), 0.75f64.ln()], 1e-15);
    seeded_backward(&y, &[1.0, 0.0]);
    close(&grad64(&x), &[0.75, -0.75], 1e-15);
}

#[test]
fn shape_literals() {
    let x = param(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[2, 3], DType::F32);
    let y = x.transpose(0, 1).unwrap();
    assert_eq!((y.shape(), val64(&y)), (&[3usize, 2][..], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]));
    seeded_backward(&y, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(grad64(&x), vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);

    let x = param(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[2, 3], DType::F32);
    let y = x.reshape(&[3, 2]).unwrap();
    seeded_backward(&y, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(grad64(&x), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

    let x = param(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[1, 2, 3], DType::F32);
    let y = x.permute(&[2, 0, 1]).unwrap();
    assert_eq!((y.shape(), val64(&y)), (&[3usize, 1, 2][..], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]));
    seeded_backward(&y, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(grad64(&x), vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);

    let x = param(&[0.0, 1.0, 2.0, 3.0, 4.0], &[5], DType::F32);
    let y = x.narrow(0, 1, 2).unwrap();
    assert_eq!(val64(&y), vec![1.0, 2.0]);
    seeded_backward(&y, &[7.0, 8.0]);
    assert_eq!(grad64(&x), vec![0.0, 7.0, 8.0, 0.0, 0.0]);

    let (a, b) = (param(&[1.0, 2.0], &[2], DType::F32), param(&[3.0, 4.0, 5.0], &[3], DType::F32));
    let y = Var::cat(&[&a, &b], 0).unwrap();
    assert_eq!(val64(&y), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    seeded_backward(&y, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!((grad64(&a), grad64(&b)), (vec![1.0, 2.0], vec![3.0, 4.0, 5.0]));

    let (a, b) = (param(&[1.0, 2.0], &[2], DType::F32), param(&[3.0, 4.0], &[2], DType::F32));
    let y = Var::stack(&[&a, &b], 1).unwrap();
    assert_eq!((y.shape(), val64(&y)), (&[2usize, 2][..], vec![1.0, 3.0, 2.0, 4.0]));
    seeded_backward(&y, &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!((grad64(&a), grad64(&b)), (vec![1.0, 3.0], vec![2.0, 4.0]));

    let x = param(&[1.0, 2.0], &[2], DType::F32);
    let y = x.unsqueeze(0).unwrap().flatten(0, 1).unwrap().unsqueeze(1).unwrap().squeeze(1).unwrap();
    assert_eq!(y.shape(), &[2]);
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad64(&x), vec![1.0, 1.0]);
}

fn shape_nd() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..5, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_sum_mean(shape in shape_nd(), mask in any::<u8>(), keep in any::<bool>(), seed in any::<u64>()) {
        let axes: Vec<isize> = (0..shape.len()).filter(|i| mask >> i & 1 == 1).map(|i| i as isize).collect();
        let x = uniform(&shape, -2.0, 2.0, seed);
        check(|v| v[0].sum(&axes, keep), std::slice::from_ref(&x));
        check(|v| v[0].mean(&axes, keep), std::slice::from_ref(&x));
        check(|v| v[0].sum_all(), std::slice::from_ref(&x));
        check(|v| v[0].mean_all(), &[x]);
    }

    #[test]
    fn gradcheck_max(shape in shape_nd(), axis in 0usize..3, keep in any::<bool>(), seed in any::<u64>()) {
        let axis = (axis % shape.len()) as isize;
        check(|v| v[0].max(axis, keep), &[distinct(&shape, seed)]);
    }

    #[test]
    fn gradcheck_softmax(shape in shape_nd(), axis in 0usize..3, seed in any::<u64>()) {
        let axis = (axis % shape.len()) as isize;
        let x = uniform(&shape, -3.0, 3.0, seed);
        check(|v| v[0].softmax(axis), std::slice::from_ref(&x));
        check(|v| v[0].log_softmax(axis), &[x]);
    }

    #[test]
    fn gradcheck_views(shape in prop::collection::vec(1usize..5, 2..4), seed in any::<u64>(), pick in any::<u64>()) {
        let x = uniform(&shape, -2.0, 2.0, seed);
        let rank = shape.len();
        let n: usize = shape.iter().product();
        check(|v| v[0].reshape(&[n]), std::slice::from_ref(&x));
        check(|v| v[0].flatten(0, -1)?.unsqueeze(0), std::slice::from_ref(&x));
        let (a, b) = ((pick % rank as u64) as isize, ((pick / 7) % rank as u64) as isize);
        check(|v| v[0].transpose(a, b), std::slice::from_ref(&x));
        let mut perm: Vec<usize> = (0..rank).collect();
        perm.rotate_left((pick % rank as u64) as usize);
        check(|v| v[0].permute(&perm), std::slice::from_ref(&x));
        // A transposed view reshaped: the reshape has to copy.
        check(|v| v[0].transpose(0, -1)?.reshape(&[n]), std::slice::from_ref(&x));
        let ax = (pick % rank as u64) as usize;
        let start = (pick / 3) as usize % shape[ax];
        let len = 1 + (pick / 11) as usize % (shape[ax] - start);
        check(|v| v[0].narrow(ax as isize, start, len), &[x]);
    }

    #[test]
    fn gradcheck_cat_stack(shape in prop::collection::vec(1usize..4, 1..4), axis in 0usize..3, extra in 1usize..4, seed in any::<u64>()) {
        let ax = axis % shape.len();
        let mut other = shape.clone();
        other[ax] = extra;
        let (a, b, c) = (uniform(&shape, -1.0, 1.0, seed), uniform(&other, -1.0, 1.0, seed ^ 1), uniform(&shape, -1.0, 1.0, seed ^ 2));
        check(|v| Var::cat(&[&v[0], &v[1], &v[2]], ax as isize), &[a.clone(), b, c.clone()]);
        let sax = (axis % (shape.len() + 1)) as isize;
        check(|v| Var::stack(&[&v[0], &v[1]], sax), &[a, c]);
    }
}
