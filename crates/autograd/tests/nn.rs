//! nn: Linear (PyTorch's layout and init), Sequential (names, scopes, the
//! Linear+ReLU fusion is invisible), init bounds, determinism.

use mixprec_autograd::nn::{Linear, LinearOptions, Module, Relu, Sequential, Tanh, init};
use mixprec_autograd::{Var, scan};
use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, Tensor};

#[test]
fn linear_uses_pytorch_layout_and_default_init() {
    let l = Linear::new(100, 7, &mut Generator::new(3)).unwrap();
    assert_eq!((l.weight.shape(), l.bias.as_ref().unwrap().shape()), (&[7usize, 100][..], &[7usize][..]));
    assert_eq!((l.in_features(), l.out_features()), (100, 7));
    let bound = 1.0 / 10.0;
    let w = l.weight.value().to_vec_f64().unwrap();
    assert!(w.iter().all(|v| v.abs() <= bound));
    assert!(w.iter().any(|v| v.abs() > 0.9 * bound), "the samples should fill the range");
    // Same seed, same bits; another seed, other values.
    let again = Linear::new(100, 7, &mut Generator::new(3)).unwrap();
    assert_eq!(w, again.weight.value().to_vec_f64().unwrap());
    let other = Linear::new(100, 7, &mut Generator::new(4)).unwrap();
    assert_ne!(w, other.weight.value().to_vec_f64().unwrap());
    let h =
        Linear::with_options(4, 3, LinearOptions { bias: false, dtype: DType::BF16 }, &mut Generator::new(1)).unwrap();
    assert!(h.bias.is_none() && h.weight.dtype() == DType::BF16);
    assert_eq!(h.named_parameters().len(), 1);
    assert!(Linear::from_tensors(Tensor::zeros(&[3], DType::F32).unwrap(), None).is_err());
}

#[test]
fn init_statistics() {
    let mut rng = Generator::new(11);
    let n = 200_000;
    let var = |t: &Tensor| {
        let v = t.to_vec_f64().unwrap();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
    };
    // Kaiming: variance gain²/fan_in; Xavier: gain²·2/(fan_in + fan_out).
    let ku = init::kaiming_uniform(&[n], 50, init::RELU_GAIN, DType::F32, &mut rng).unwrap();
    let kn = init::kaiming_normal(&[n], 50, init::RELU_GAIN, DType::F32, &mut rng).unwrap();
    let xu = init::xavier_uniform(&[n], 30, 70, 1.0, DType::F32, &mut rng).unwrap();
    let xn = init::xavier_normal(&[n], 30, 70, 1.0, DType::F32, &mut rng).unwrap();
    for (t, want) in [(&ku, 2.0 / 50.0), (&kn, 2.0 / 50.0), (&xu, 0.02), (&xn, 0.02)] {
        assert!((var(t) / want - 1.0).abs() < 0.02, "variance {} vs {want}", var(t));
    }
    let b = (3.0f64 * 2.0 / 50.0).sqrt();
    assert!(ku.to_vec_f64().unwrap().iter().all(|v| v.abs() <= b));
}

fn mlp(rng: &mut Generator, fuse: bool) -> Sequential {
    Sequential::new()
        .push_named("fc1", Linear::new(6, 5, rng).unwrap())
        .push_named("act1", Relu)
        .push_named("fc2", Linear::new(5, 4, rng).unwrap())
        .push_named("act2", Tanh)
        .push_named("fc3", Linear::new(4, 3, rng).unwrap())
        .fuse_relu(fuse)
}

#[test]
fn sequential_names_parameters_like_pytorch() {
    let m = Sequential::new().push(Linear::new(2, 3, &mut Generator::new(0)).unwrap()).push(Relu);
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["0.weight", "0.bias"]);
    let m = mlp(&mut Generator::new(0), true);
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]);
    // The handles share the module's cells.
    let p = m.parameters();
    p[0].param().unwrap().update(|v, _| v.fill_(0.25));
    assert_eq!(m.named_parameters()[0].1.value().to_vec_f32().unwrap()[0], 0.25);
}

#[test]
fn fusing_linear_and_relu_changes_nothing_but_the_node_count() {
    let x = Var::new(Tensor::randn(&[8, 6], DType::F32, &mut Generator::new(9)).unwrap());
    let run = |fuse: bool| {
        let m = mlp(&mut Generator::new(5), fuse);
        let y = m.forward(&x).unwrap();
        y.cross_entropy(&[0, 1, 2, 0, 1, 2, 0, 1], Default::default()).unwrap().backward().unwrap();
        let grads: Vec<Vec<f32>> = m.parameters().iter().map(|p| p.grad().unwrap().to_vec_f32().unwrap()).collect();
        (y.value().to_vec_f32().unwrap(), grads)
    };
    let (y1, g1) = run(true);
    let (y0, g0) = run(false);
    assert_eq!(y1, y0);
    assert_eq!(g1, g0);
    let m = mlp(&mut Generator::new(5), true);
    let h = Sequential::new().push(Linear::new(6, 5, &mut Generator::new(1)).unwrap()).push(Relu).forward(&x).unwrap();
    assert_eq!(h.op(), Some("linear_relu"));
    assert_eq!(m.forward(&x).unwrap().op(), Some("linear"));
}

#[test]
fn sequential_scopes_name_the_failing_layer() {
    let m = mlp(&mut Generator::new(5), true);
    // fc1 gives 4 everywhere; fc2's weights are huge: 5·4·1e38 overflows f32.
    let p = m.named_parameters();
    p[0].1.param().unwrap().update(|w, _| w.fill_(0.5));
    p[1].1.param().unwrap().update(|b, _| b.fill_(1.0));
    p[2].1.param().unwrap().update(|w, _| w.fill_(1e38));
    let x = Var::new(Tensor::ones(&[2, 6], DType::F32).unwrap());
    scan::clear_nonfinite();
    {
        let _s = scan::scan_nonfinite();
        let _top = scan::name_scope("mlp");
        let _ = m.forward(&x).unwrap();
    }
    let first = scan::first_nonfinite().expect("fc2 overflows");
    assert_eq!((first.op, first.scope.as_str()), ("linear", "mlp.fc2"));
}
