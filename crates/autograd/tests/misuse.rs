//! Per public API family, the mistakes a caller can make come back as a
//! typed `Err` (never a panic): wrong shapes, mixed or unsupported dtypes
//! where they are not promoted, empty tensors, NaN hyper-parameters and
//! out-of-range indices. NaN *data* is not a mistake: it propagates through
//! forward and backward without a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mixprec_autograd::ops::lstm::LstmParams;
use mixprec_autograd::optim::{AdamConfig, SgdConfig, clip_grad_norm, clip_grad_value};
use mixprec_autograd::tensor::random::CounterStream;
use mixprec_autograd::tensor::{DType, Tensor};
use mixprec_autograd::{AutogradError, CrossEntropy, Reduction, Var};

fn t(shape: &[usize], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect(), shape).unwrap().to_dtype(dtype).unwrap()
}

fn v(shape: &[usize]) -> Var {
    Var::new(t(shape, DType::F32))
}

fn p(shape: &[usize]) -> Var {
    Var::parameter(t(shape, DType::F32))
}

/// Runs `f` and requires a typed error (a panic fails the test with its name).
fn err<T: std::fmt::Debug>(what: &str, f: impl FnOnce() -> Result<T, AutogradError>) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Err(e)) => assert!(!e.to_string().is_empty(), "{what}: empty message"),
        Ok(Ok(v)) => panic!("{what}: accepted, gave {v:?}"),
        Err(_) => panic!("{what}: panicked instead of returning an error"),
    }
}

/// Runs `f` and requires `Ok` (a panic fails the test with its name).
fn ok<T>(what: &str, f: impl FnOnce() -> Result<T, AutogradError>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: panicked"),
    }
}

#[test]
fn elementwise_and_broadcasting() {
    err("add [2,3]+[4]", || v(&[2, 3]).add(&v(&[4])));
    err("mul [2,3]*[3,2]", || v(&[2, 3]).mul(&v(&[3, 2])));
    err("div [0]/[2]", || v(&[0]).div(&v(&[2])));
    err("pow shape", || v(&[3]).pow(&v(&[2])));
    err("select cond shape", || Var::select(&Tensor::zeros(&[5], DType::F32).unwrap(), &v(&[2]), &v(&[2])));
    // Empty tensors are fine where the shapes agree.
    let e = ok("add of empties", || v(&[0, 3]).add(&v(&[0, 3])));
    assert_eq!(e.shape(), &[0, 3]);
    let w = p(&[0]);
    ok("backward through an empty sum", || w.sum_all()?.backward());
    assert_eq!(w.grad().unwrap().shape(), &[0]);
}

#[test]
fn shapes_and_views() {
    let x = v(&[2, 3]);
    err("reshape numel", || x.reshape(&[4]));
    err("reshape overflow", || x.reshape(&[usize::MAX, 2, 0, 3]));
    err("transpose axis", || x.transpose(0, 2));
    err("permute not a permutation", || x.permute(&[0, 0]));
    err("narrow past the end", || x.narrow(1, 2, 2));
    err("narrow start overflow", || x.narrow(1, usize::MAX, 2));
    err("squeeze non-singleton", || x.squeeze(0));
    err("unsqueeze axis", || x.unsqueeze(4));
    err("flatten reversed", || x.flatten(1, 0));
    err("t of rank 3", || v(&[1, 2, 3]).t());
    err("cat shape", || Var::cat(&[&v(&[2, 3]), &v(&[2, 4])], 0));
    err("cat axis", || Var::cat(&[&v(&[2, 3]), &v(&[2, 3])], 2));
    err("cat nothing", || Var::cat(&[], 0));
    err("stack shape", || Var::stack(&[&v(&[2]), &v(&[3])], 0));
}

#[test]
fn reductions_and_softmax() {
    let x = v(&[2, 3]);
    err("sum axis", || x.sum(&[2], false));
    err("sum repeated axis", || x.sum(&[1, -1], false));
    err("mean axis", || x.mean(&[-3], true));
    err("max axis", || x.max(5, false));
    err("max of an empty axis", || v(&[2, 0]).max(1, false));
    err("softmax axis", || x.softmax(2));
    err("log_softmax axis", || x.log_softmax(-3));
    // NaN data propagates: no error, no panic, NaN out.
    let nan = Var::parameter(Tensor::from_vec(vec![f32::NAN, 1.0, 2.0], &[1, 3]).unwrap());
    let s = ok("softmax of NaN", || nan.softmax(1));
    assert!(s.value().to_vec_f32().unwrap().iter().all(|x| x.is_nan()));
    ok("backward of NaN", || s.sum_all()?.backward());
    assert!(nan.grad().unwrap().to_vec_f32().unwrap().iter().any(|x| x.is_nan()));
}

#[test]
fn matmul_and_linear() {
    err("matmul inner", || v(&[2, 3]).matmul(&v(&[4, 2])));
    err("matmul rank 0", || Var::new(Tensor::scalar(1.0, DType::F32)).matmul(&v(&[1])));
    err("matmul batch", || v(&[2, 2, 3]).matmul(&v(&[3, 3, 2])));
    err("linear weight", || v(&[4, 3]).linear(&p(&[5, 4]), None));
    err("linear bias", || v(&[4, 3]).linear(&p(&[5, 3]), Some(&p(&[4]))));
    err("linear_relu bias", || v(&[4, 3]).linear_relu(&p(&[5, 3]), Some(&p(&[5, 1]))));
    let e = ok("empty batch", || v(&[0, 3]).linear(&p(&[5, 3]), Some(&p(&[5]))));
    assert_eq!(e.shape(), &[0, 5]);
    let h = Var::new(t(&[2, 3], DType::F16));
    ok("f16 @ f32 promotes", || h.matmul(&v(&[3, 2])));
}

#[test]
fn losses() {
    let logits = v(&[3, 4]);
    let ce = CrossEntropy::default();
    err("target out of range", || logits.cross_entropy(&[0, 4, 1], ce));
    err("target count", || logits.cross_entropy(&[0, 1], ce));
    err("label smoothing NaN", || logits.cross_entropy(&[0, 1, 2], CrossEntropy { label_smoothing: f64::NAN, ..ce }));
    err("label smoothing > 1", || logits.cross_entropy(&[0, 1, 2], CrossEntropy { label_smoothing: 1.5, ..ce }));
    err("nll target out of range", || logits.log_softmax(1)?.nll_loss(&[9, 0, 0], ce));
    err("cross_entropy rank 0", || Var::new(Tensor::scalar(1.0, DType::F32)).cross_entropy(&[0], ce));
    err("mse shape", || v(&[3]).mse_loss(&v(&[4]), Reduction::Mean));
    let nan = Var::new(Tensor::from_vec(vec![f32::NAN, 0.0, 1.0, 2.0], &[1, 4]).unwrap());
    let l = ok("NaN logits", || nan.cross_entropy(&[1], ce));
    assert!(l.item().unwrap().is_nan());
}

#[test]
fn conv_pool_norm() {
    let x = v(&[1, 2, 5, 5]);
    err("conv2d channels", || x.conv2d(&p(&[3, 4, 3, 3]), None, [1, 1], [0, 0], [1, 1]));
    err("conv2d stride 0", || x.conv2d(&p(&[3, 2, 3, 3]), None, [0, 1], [0, 0], [1, 1]));
    err("conv2d dilation 0", || x.conv2d(&p(&[3, 2, 3, 3]), None, [1, 1], [0, 0], [1, 0]));
    err("conv2d kernel larger than input", || x.conv2d(&p(&[3, 2, 7, 7]), None, [1, 1], [0, 0], [1, 1]));
    err("conv2d bias", || x.conv2d(&p(&[3, 2, 3, 3]), Some(&p(&[2])), [1, 1], [0, 0], [1, 1]));
    err("conv2d rank", || v(&[2, 5, 5]).conv2d(&p(&[3, 2, 3, 3]), None, [1, 1], [0, 0], [1, 1]));
    err("conv2d padding overflow", || x.conv2d(&p(&[3, 2, 3, 3]), None, [1, 1], [usize::MAX, 0], [1, 1]));
    err("conv2d dilation overflow", || x.conv2d(&p(&[3, 2, 3, 3]), None, [1, 1], [0, 0], [usize::MAX / 2, 1]));
    err("max_pool2d kernel 0", || x.max_pool2d([0, 2], [2, 2], [0, 0], [1, 1]));
    err("max_pool2d stride 0", || x.max_pool2d([2, 2], [0, 2], [0, 0], [1, 1]));
    err("max_pool2d padding > half kernel", || x.max_pool2d([2, 2], [2, 2], [2, 0], [1, 1]));
    err("avg_pool2d rank", || v(&[5, 5]).avg_pool2d([2, 2], [2, 2], [0, 0]));
    err("batch_norm weight", || x.batch_norm(Some(&p(&[3])), None, None, true, 0.1, 1e-5));
    err("batch_norm eps NaN", || x.batch_norm(None, None, None, true, 0.1, f64::NAN));
    let mut stats = mixprec_autograd::ops::RunningStats::new(2).unwrap();
    err("batch_norm momentum NaN", || x.batch_norm(None, None, Some(&mut stats), true, f64::NAN, 1e-5));
    err("batch_norm momentum > 1", || x.batch_norm(None, None, Some(&mut stats), true, 1.5, 1e-5));
    err("batch_norm stats channels", || {
        x.batch_norm(None, None, Some(&mut mixprec_autograd::ops::RunningStats::new(3)?), true, 0.1, 1e-5)
    });
    err("layer_norm shape", || x.layer_norm(&[4], None, None, 1e-5));
    err("layer_norm eps negative", || x.layer_norm(&[5], None, None, -1.0));
    err("layer_norm empty normalized shape", || x.layer_norm(&[], None, None, 1e-5));
}

#[test]
fn embedding_dropout_lstm() {
    let table = p(&[4, 3]);
    err("embedding index out of range", || table.embedding(&[0, 4], &[2]));
    err("embedding index shape", || table.embedding(&[0, 1, 2], &[2]));
    err("embedding table rank", || p(&[4]).embedding(&[0], &[1]));
    let s = CounterStream::new(1, 0);
    err("dropout p NaN", || v(&[4]).dropout(f64::NAN, &s));
    err("dropout p > 1", || v(&[4]).dropout(1.5, &s));
    err("dropout p < 0", || v(&[4]).dropout(-0.1, &s));
    let params = LstmParams { w_ih: p(&[8, 3]), w_hh: p(&[8, 2]), b_ih: None, b_hh: None };
    err("lstm input rank", || mixprec_autograd::ops::lstm::lstm(&v(&[2, 3]), None, std::slice::from_ref(&params)));
    err("lstm input size", || mixprec_autograd::ops::lstm::lstm(&v(&[2, 1, 4]), None, std::slice::from_ref(&params)));
    err("lstm no layers", || mixprec_autograd::ops::lstm::lstm(&v(&[2, 1, 3]), None, &[]));
    let bad = LstmParams { w_ih: p(&[7, 3]), w_hh: p(&[8, 2]), b_ih: None, b_hh: None };
    err("lstm 4H", || v(&[1, 3]).lstm_cell(&v(&[1, 2]), &v(&[1, 2]), &bad));
    err("lstm_cell state shape", || v(&[1, 3]).lstm_cell(&v(&[1, 3]), &v(&[1, 2]), &params));
}

#[test]
fn optimizers_and_clipping() {
    use mixprec_autograd::optim::{Adam, AdamW, Optimizer, Sgd};
    let w = p(&[3]);
    for (what, lr) in [("lr NaN", f64::NAN), ("lr negative", -1.0)] {
        err(what, || Sgd::new(vec![w.clone()], SgdConfig { lr, ..SgdConfig::default() }));
        err(what, || Adam::new(vec![w.clone()], AdamConfig { lr, ..AdamConfig::adam() }));
    }
    err("betas >= 1", || AdamW::new(vec![w.clone()], AdamConfig { betas: (0.9, 1.0), ..AdamConfig::adam() }));
    err("eps NaN", || Adam::new(vec![w.clone()], AdamConfig { eps: f64::NAN, ..AdamConfig::adam() }));
    err("not a parameter", || Sgd::new(vec![v(&[3])], SgdConfig::default()));
    err("nesterov without momentum", || {
        Sgd::new(vec![w.clone()], SgdConfig { nesterov: true, ..SgdConfig::default() })
    });
    err("clip_grad_norm NaN", || clip_grad_norm(std::slice::from_ref(&w), f64::NAN));
    err("clip_grad_value negative", || clip_grad_value(std::slice::from_ref(&w), -1.0));
    // NaN gradients are information, not errors: clipping reports a NaN norm.
    w.sum_all().unwrap().mul_scalar(f64::NAN).unwrap().backward().unwrap();
    let norm = ok("clip with NaN gradient", || clip_grad_norm(std::slice::from_ref(&w), 1.0));
    assert!(norm.is_nan());
    let mut sgd = Sgd::new(vec![w.clone()], SgdConfig::default()).unwrap();
    ok("step with NaN gradient", || sgd.step());
    // set_lr refuses what the constructors refuse (and +Inf) and keeps the old rate.
    let mut adam = AdamW::new(vec![w.clone()], AdamConfig::adamw()).unwrap();
    for lr in [f64::NAN, -1e-3, f64::INFINITY] {
        err("Sgd::set_lr", || sgd.set_lr(lr));
        err("AdamW::set_lr", || adam.set_lr(lr));
    }
    assert_eq!(sgd.lr(), SgdConfig::default().lr);
    assert_eq!(adam.lr(), AdamConfig::adamw().lr);
    ok("Sgd::set_lr(0)", || sgd.set_lr(0.0));
    assert_eq!(sgd.lr(), 0.0);
}

#[test]
fn backward_misuse() {
    err("backward of a non-scalar", || v(&[3]).mul_scalar(2.0)?.backward());
    let w = p(&[2]);
    // A product saves its inputs, which the first backward frees.
    let y = w.mul(&w).unwrap().sum_all().unwrap();
    ok("first backward", || y.backward());
    err("second backward of a freed graph", || y.backward());
    err("set_grad wrong shape", || w.param().unwrap().set_grad(Some(t(&[3], DType::F32))));
    err("set_grad wrong dtype", || w.param().unwrap().set_grad(Some(t(&[2], DType::F16))));
}

#[test]
fn initialisers_refuse_overflowing_shapes() {
    use mixprec_autograd::nn::init;
    use mixprec_autograd::tensor::random::Generator;
    let mut rng = Generator::new(3);
    err("uniform overflow", || init::uniform(&[usize::MAX, 2], -1.0, 1.0, DType::F32, &mut rng));
    err("normal overflow", || init::normal(&[1 << 62, 4], 0.0, 1.0, DType::F16, &mut rng));
    let e = ok("uniform of an empty shape", || init::uniform(&[0, usize::MAX], -1.0, 1.0, DType::F32, &mut rng));
    assert_eq!(e.numel(), 0);
}

/// Sizes that only overflow when multiplied: an empty batch whose planes are
/// huge, padding that makes the output uncountable, windows too large to
/// index, index shapes whose product wraps. Each is a typed error or a
/// result computed without allocating for the empty axes.
#[test]
fn sizes_whose_products_overflow() {
    let huge_empty = || Var::parameter(Tensor::zeros(&[0, 1, 1 << 20, 1 << 20], DType::F32).unwrap());
    let x = huge_empty();
    // Columns for 2^40 output positions would be 4 TiB; an empty batch needs none.
    let y =
        ok("conv2d of an empty batch with huge planes", || x.conv2d(&p(&[2, 1, 1, 1]), None, [1, 1], [0, 0], [1, 1]));
    assert_eq!(y.shape(), &[0, 2, 1 << 20, 1 << 20]);
    ok("its backward", || y.sum_all()?.backward());
    assert_eq!(x.grad().unwrap().shape(), x.shape());
    let one = v(&[1, 1, 1, 1]);
    err("conv2d output overflows", || one.conv2d(&p(&[1, 1, 1, 1]), None, [1, 1], [1 << 31, 1 << 31], [1, 1]));
    err("conv2d empty-batch output overflows", || {
        Var::new(Tensor::zeros(&[0, 1, 1 << 40, 1 << 40], DType::F32)?).conv2d(
            &p(&[1, 1, 1, 1]),
            None,
            [1, 1],
            [0, 0],
            [1, 1],
        )
    });
    err("max_pool2d window of 2^34 elements", || {
        one.max_pool2d([1 << 17, 1 << 17], [1, 1], [1 << 16, 1 << 16], [1, 1])
    });
    err("avg_pool2d window overflows", || one.avg_pool2d([1 << 33, 1 << 33], [1, 1], [1 << 32, 1 << 32]));
    let table = p(&[4, 3]);
    err("embedding index shape overflows", || table.embedding(&[], &[1 << 32, 1 << 32]));
    let e = ok("embedding with an empty index shape", || table.embedding(&[], &[0, usize::MAX]));
    assert_eq!(e.shape(), &[0, usize::MAX, 3]);
    let empty_w = |shape: &[usize]| Var::parameter(Tensor::zeros(shape, DType::F32).unwrap());
    let params = LstmParams { w_ih: empty_w(&[0, 3]), w_hh: empty_w(&[0, 1 << 62]), b_ih: None, b_hh: None };
    err("lstm hidden size whose 4H overflows", || v(&[1, 3]).lstm_cell(&v(&[1, 2]), &v(&[1, 2]), &params));
}

#[test]
fn nn_layers() {
    use mixprec_autograd::nn::{
        AvgPool2d, BatchNorm2d, Conv2d, Embedding, LSTM, LayerNorm, Linear, MaxPool2d, Module, Sequential,
    };
    use mixprec_autograd::tensor::random::Generator;
    let mut rng = Generator::new(5);
    // Construction.
    err("Linear overflow", || Linear::new(usize::MAX, 2, &mut rng));
    err("Linear weight rank", || Linear::from_tensors(t(&[3], DType::F32), None));
    err("Linear bias shape", || Linear::from_tensors(t(&[2, 3], DType::F32), Some(t(&[3], DType::F32))));
    err("Conv2d fan-in overflow", || Conv2d::new(usize::MAX, 1, [2, 2], [0, 0], &mut rng));
    err("LSTM 4·hidden overflow", || LSTM::new(3, usize::MAX / 2, 1, &mut rng));
    err("Embedding overflow", || Embedding::new(usize::MAX, 2, &mut rng));
    err("BatchNorm2d overflow", || BatchNorm2d::new(usize::MAX));
    err("LayerNorm overflow", || LayerNorm::new(&[usize::MAX, 2]));
    // Forward with the wrong input.
    let lin = Linear::new(3, 2, &mut rng).unwrap();
    err("Linear in-features", || lin.forward(&v(&[4, 5])));
    err("Linear rank 0", || lin.forward(&Var::new(Tensor::scalar(1.0, DType::F32))));
    let conv = Conv2d::new(2, 3, [3, 3], [1, 1], &mut rng).unwrap();
    err("Conv2d channels", || conv.forward(&v(&[1, 3, 5, 5])));
    err("Conv2d rank", || conv.forward(&v(&[2, 5, 5])));
    err("MaxPool2d larger than the input", || MaxPool2d::new([4, 4]).forward(&v(&[1, 1, 3, 3])));
    err("AvgPool2d kernel 0", || AvgPool2d::new([0, 2]).forward(&v(&[1, 1, 3, 3])));
    let emb = Embedding::new(5, 2, &mut rng).unwrap();
    err("Embedding index out of range", || emb.lookup(&[1, 5], &[2]));
    err("Embedding index usize::MAX", || emb.lookup(&[usize::MAX], &[1]));
    err("BatchNorm2d channels", || BatchNorm2d::new(3)?.forward(&v(&[2, 4, 2, 2])));
    err("BatchNorm2d rank", || BatchNorm2d::new(3)?.forward(&v(&[3])));
    err("LayerNorm shape", || LayerNorm::new(&[4])?.forward(&v(&[2, 5])));
    let lstm = LSTM::new(3, 4, 2, &mut rng).unwrap();
    err("LSTM input size", || lstm.forward(&v(&[2, 1, 5])));
    err("LSTM rank", || lstm.forward(&v(&[2, 3])));
    err("LSTM state shape", || lstm.forward_with_state(&v(&[2, 1, 3]), Some((&v(&[1, 1, 4]), &v(&[1, 1, 4])))));
    let net = Sequential::new().push(Linear::new(3, 4, &mut rng).unwrap()).push(Linear::new(5, 2, &mut rng).unwrap());
    err("Sequential with mismatched layers", || net.forward(&v(&[2, 3])));
    // Empty batches pass through every layer; NaN inputs propagate.
    let out = ok("Linear of an empty batch", || lin.forward(&v(&[0, 3])));
    assert_eq!(out.shape(), &[0, 2]);
    ok("Conv2d of an empty batch", || conv.forward(&v(&[0, 2, 5, 5])));
    ok("LayerNorm of an empty batch", || LayerNorm::new(&[3])?.forward(&v(&[0, 3])));
    let nan = Var::new(Tensor::from_vec(vec![f32::NAN, 1.0, 2.0], &[1, 3]).unwrap());
    let y = ok("Linear of NaN", || lin.forward(&nan));
    assert!(y.value().to_vec_f32().unwrap().iter().all(|x| x.is_nan()));
    // f16 inputs into f32 layers are promoted, not refused.
    ok("Linear of f16", || lin.forward(&Var::new(t(&[2, 3], DType::F16))));
}

#[test]
fn optimizer_state_out_of_range() {
    use mixprec_autograd::optim::{Adam, AdamState, Optimizer, Sgd, SgdState};
    let w = p(&[3]);
    let mut adam = Adam::new(vec![w.clone()], AdamConfig::adam()).unwrap();
    err("Adam state for two parameters", || {
        adam.load_state(AdamState { steps: vec![0, 0], exp_avg: vec![None, None], exp_avg_sq: vec![None, None] })
    });
    err("Adam moment of the wrong length", || {
        adam.load_state(AdamState { steps: vec![1], exp_avg: vec![Some(vec![0.0; 2])], exp_avg_sq: vec![None] })
    });
    // A loaded step count at the end of u64 stops with an error instead of
    // wrapping to a first step (a panic in debug builds before).
    let state =
        AdamState { steps: vec![u64::MAX], exp_avg: vec![Some(vec![0.0; 3])], exp_avg_sq: vec![Some(vec![0.0; 3])] };
    ok("load a step count of u64::MAX", || adam.load_state(state));
    w.sum_all().unwrap().backward().unwrap();
    let before = w.value().to_vec_f32().unwrap();
    err("Adam step past u64::MAX", || adam.step());
    assert_eq!(w.value().to_vec_f32().unwrap(), before, "the parameter is left as it was");
    let mut sgd = Sgd::new(vec![w.clone()], SgdConfig { momentum: 0.9, ..SgdConfig::default() }).unwrap();
    err("Sgd momentum of the wrong length", || sgd.load_state(SgdState { momentum: vec![Some(vec![0.0; 4])] }));
    err("Sgd state for no parameter", || sgd.load_state(SgdState { momentum: vec![] }));
}

/// A backward rule that writes a gradient for an input its op does not
/// have gets an error naming the op, not an index panic.
#[test]
fn backward_rule_for_a_missing_input() {
    use mixprec_autograd::graph::{Backward, Grads, record};
    struct Stray;
    impl Backward for Stray {
        fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<(), AutogradError> {
            grads.accumulate(3, g.clone())
        }
    }
    let w = p(&[2]);
    let y = record("neg", &[&w], w.value().clone(), |_| Stray);
    let e = y.sum_all().unwrap().backward().unwrap_err();
    assert!(e.to_string().contains("input 3"), "{e}");
}
