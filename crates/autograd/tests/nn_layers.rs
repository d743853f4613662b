//! The layer modules: shapes, parameters, training/eval switches, and that
//! each forwards to its op (same values as the op called directly).

use mixprec_autograd::Var;
use mixprec_autograd::nn::{
    AvgPool2d, BatchNorm2d, Conv2d, Dropout, Embedding, LSTM, LayerNorm, MaxPool2d, Module, Relu, Sequential,
};
use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, Tensor};

fn input(shape: &[usize], seed: u64) -> Var {
    Var::constant(Tensor::randn(shape, DType::F32, &mut Generator::new(seed)).unwrap())
}

fn vals(v: &Var) -> Vec<f32> {
    v.value().to_vec_f32().unwrap()
}

#[test]
fn conv_and_pool_modules() {
    let mut rng = Generator::new(1);
    let conv = Conv2d::new(3, 5, [3, 3], [1, 1], &mut rng).unwrap();
    assert_eq!(conv.parameters().len(), 2);
    assert_eq!(conv.weight.shape(), &[5, 3, 3, 3]);
    // PyTorch's bound for this fan-in: 1/√27.
    let bound = 1.0 / 27f32.sqrt();
    assert!(vals(&conv.weight).iter().all(|v| v.abs() <= bound));
    let x = input(&[2, 3, 8, 8], 2);
    let y = conv.forward(&x).unwrap();
    assert_eq!(y.shape(), &[2, 5, 8, 8]);
    assert_eq!(vals(&y), vals(&x.conv2d(&conv.weight, conv.bias.as_ref(), [1, 1], [1, 1], [1, 1]).unwrap()));
    let p = MaxPool2d::new([2, 2]).forward(&y).unwrap();
    assert_eq!(p.shape(), &[2, 5, 4, 4]);
    let a = AvgPool2d::new([2, 2]).forward(&y).unwrap();
    assert_eq!(vals(&a), vals(&y.avg_pool2d([2, 2], [2, 2], [0, 0]).unwrap()));
}

#[test]
fn batch_norm_module_trains_then_evaluates_on_running_statistics() {
    let mut bn = BatchNorm2d::new(4).unwrap();
    let x = input(&[8, 4, 3, 3], 3);
    let y = bn.forward(&x).unwrap();
    // Training: each channel of the output has mean ≈ 0.
    let v = vals(&y);
    let m: Vec<f32> = (0..4)
        .map(|c| (0..8).flat_map(|n| (0..9).map(move |s| (n * 4 + c) * 9 + s)).map(|i| v[i]).sum::<f32>() / 72.0)
        .collect();
    assert!(m.iter().all(|v| v.abs() < 1e-5), "{m:?}");
    let stats = bn.running_stats();
    assert_ne!(stats.mean.to_vec_f64().unwrap(), vec![0.0; 4]);
    bn.eval();
    let ye = bn.forward(&x).unwrap();
    let mut r = stats.clone();
    let want = x.batch_norm(Some(&bn.weight), Some(&bn.bias), Some(&mut r), false, 0.1, 1e-5).unwrap();
    assert_eq!(vals(&ye), vals(&want));
    // Eval leaves the running statistics alone.
    assert_eq!(bn.running_stats().mean.to_vec_f64().unwrap(), stats.mean.to_vec_f64().unwrap());
}

#[test]
fn sequential_fuses_batch_norm_and_relu_without_changing_values() {
    let x = input(&[4, 3, 5, 5], 4);
    let seq = Sequential::new().push(BatchNorm2d::new(3).unwrap()).push(Relu);
    let y = seq.forward(&x).unwrap();
    assert_eq!(y.op(), Some("batch_norm_relu"));
    let bn = BatchNorm2d::new(3).unwrap();
    let want = bn.forward(&x).unwrap().relu().unwrap();
    assert_eq!(vals(&y), vals(&want));
}

#[test]
fn batch_norm_buffers_are_listed_by_path_and_restored_exactly() {
    let net = || Sequential::new().push_named("bn", BatchNorm2d::new(4).unwrap()).push(Relu);
    let (a, b) = (net(), net());
    a.forward(&input(&[8, 4, 3, 3], 5)).unwrap();
    let bufs = a.named_buffers();
    let names: Vec<&str> = bufs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["bn.running_mean", "bn.running_var"]);
    assert_ne!(b.named_buffers()[0].1.to_vec_f32().unwrap(), bufs[0].1.to_vec_f32().unwrap());
    for (n, t) in &bufs {
        b.set_buffer(n, t.clone()).unwrap();
    }
    for ((_, x), (_, y)) in b.named_buffers().iter().zip(&bufs) {
        assert_eq!(x.to_vec_f32().unwrap(), y.to_vec_f32().unwrap());
    }
    // Restored statistics give the same evaluation output.
    let (mut a, mut b) = (a, b);
    a.eval();
    b.eval();
    let x = input(&[2, 4, 3, 3], 6);
    assert_eq!(vals(&a.forward(&x).unwrap()), vals(&b.forward(&x).unwrap()));
    // Unknown paths and mismatched values are errors naming the buffer.
    let err = b.set_buffer("bn.running_mu", bufs[0].1.clone()).unwrap_err().to_string();
    assert!(err.contains("bn.running_mu"), "{err}");
    let err = b.set_buffer("bn.running_mean", Tensor::zeros(&[5], DType::F32).unwrap()).unwrap_err().to_string();
    assert!(err.contains("running_mean") && err.contains("[5]"), "{err}");
    let err = b.set_buffer("bn.running_var", Tensor::ones(&[4], DType::F16).unwrap()).unwrap_err().to_string();
    assert!(err.contains("running_var") && err.contains("f16"), "{err}");
    assert!(Relu.set_buffer("x", bufs[0].1.clone()).is_err());
}

#[test]
fn layer_norm_embedding_dropout_lstm_modules() {
    let ln = LayerNorm::new(&[6]).unwrap();
    let x = input(&[3, 6], 4);
    assert_eq!(vals(&ln.forward(&x).unwrap()), vals(&x.layer_norm(&[6], None, None, 1e-5).unwrap()));

    let emb = Embedding::new(10, 4, &mut Generator::new(5)).unwrap();
    let ids = Var::constant(Tensor::from_vec(vec![3.0f32, 9.0, 0.0], &[3]).unwrap());
    let e = emb.forward(&ids).unwrap();
    assert_eq!(e.shape(), &[3, 4]);
    assert_eq!(vals(&e)[..4], vals(&emb.weight)[12..16]);
    assert!(emb.forward(&Var::constant(Tensor::from_vec(vec![10.0f32], &[1]).unwrap())).is_err());
    assert!(emb.forward(&Var::constant(Tensor::from_vec(vec![1.5f32], &[1]).unwrap())).is_err());

    let mut d = Dropout::new(0.5, 9);
    let x = input(&[1000], 6);
    let y1 = vals(&d.forward(&x).unwrap());
    let y2 = vals(&d.forward(&x).unwrap());
    assert_ne!(y1, y2, "each call draws a new mask");
    assert_eq!(y1, vals(&Dropout::new(0.5, 9).forward(&x).unwrap()), "a seed gives the same masks");
    d.eval();
    assert_eq!(vals(&d.forward(&x).unwrap()), vals(&x));

    let lstm = LSTM::new(3, 5, 2, &mut Generator::new(7)).unwrap();
    assert_eq!(lstm.named_parameters().len(), 8);
    assert_eq!(lstm.named_parameters()[0].0, "weight_ih_l0");
    let y = lstm.forward(&input(&[4, 2, 3], 8)).unwrap();
    assert_eq!(y.shape(), &[4, 2, 5]);
}
