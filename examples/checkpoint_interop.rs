//! Checkpoint interoperability with Python (scripts/checkpoint_interop.py,
//! scripts/checkpoint_torch_mlp.py).
//!
//! ```text
//! checkpoint_interop write PATH        the interop fixture, as mixprec writes it
//! checkpoint_interop check PATH        loads PATH (written by Python) and compares it with the fixture
//! checkpoint_interop mlp DIR [--precision P] [--steps N] [--data DIR]
//!                                      trains the benchmark MLP (784-512-512-10) N steps on MNIST,
//!                                      saves DIR/checkpoint.safetensors and DIR/batch.safetensors
//!                                      (a test batch `x` and mixprec's `logits` for it, FP32)
//! ```
//!
//! The fixture's values are exact in their dtypes (±0, ±Inf, NaN,
//! subnormals, each dtype's largest finite value, then `((37 j) mod 101 −
//! 50) / 8`), so both languages produce the same bits without rounding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mixprec::amp::checkpoint::write_atomic;
use mixprec::amp::scaler::ScalerConfig;
use mixprec::amp::{Checkpoint, GradScaler, MasterWeights, Precision, autocast};
use mixprec::autograd::nn::{Linear, Module, Relu, Sequential};
use mixprec::autograd::optim::{Sgd, SgdConfig};
use mixprec::autograd::{CrossEntropy, Var};
use mixprec::data::{BatchConfig, Normalize, load_mnist};
use mixprec::tensor::DType;
use mixprec::tensor::random::Generator;

#[path = "../crates/amp/tests/common/interop_fixture.rs"]
mod interop_fixture;

use interop_fixture::fixture;

type Error = Box<dyn std::error::Error>;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// The benchmark MLP; its parameter paths (`0.weight`, `0.bias`, `2.weight`,
/// …) are those of the same `torch.nn.Sequential`.
fn mlp(rng: &mut Generator) -> Result<Sequential, Error> {
    Ok(Sequential::new()
        .push(Linear::new(784, 512, rng)?)
        .push(Relu)
        .push(Linear::new(512, 512, rng)?)
        .push(Relu)
        .push(Linear::new(512, 10, rng)?))
}

fn train_mlp(dir: &Path, args: &[String]) -> Result<(), Error> {
    let precision: Precision = flag(args, "--precision").unwrap_or_else(|| "f32".into()).parse()?;
    let steps: u64 = flag(args, "--steps").unwrap_or_else(|| "50".into()).parse()?;
    let data = flag(args, "--data").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("data/mnist"));
    let mnist = load_mnist(&data)?;
    let mut rng = Generator::new(1);
    let model = mlp(&mut rng)?;
    let params = model.named_parameters();
    let sgd = |p: Vec<Var>| -> mixprec::amp::Result<Sgd> {
        Ok(Sgd::new(p, SgdConfig { lr: 0.05, momentum: 0.9, ..SgdConfig::default() })?)
    };
    let mut scaler = if precision.default_loss_scaling() {
        GradScaler::new(ScalerConfig::default())?
    } else {
        GradScaler::disabled()
    };
    let mut data_rng = Generator::new(2);
    let config = BatchConfig::new(128).shuffle(true);
    let batches: Vec<_> =
        mnist.train.batches(&config, &mut data_rng, DType::F32, Normalize::MNIST)?.take(steps as usize).collect();
    let mut run = |opt: &mut dyn mixprec::amp::AmpOptimizer| -> Result<(), Error> {
        for b in &batches {
            for (_, p) in &params {
                p.zero_grad();
            }
            let x = Var::new(b.inputs.reshape(&[b.targets.len(), 784])?);
            let loss = autocast(precision, || model.forward(&x)?.cross_entropy(&b.targets, CrossEntropy::default()))?;
            scaler.scale(&loss)?.backward()?;
            scaler.step(opt)?;
            scaler.update()?;
        }
        Ok(())
    };
    let ckpt = if precision.has_master_weights() {
        let mut opt = MasterWeights::new(params.clone(), precision.low_dtype().unwrap_or(DType::F16), sgd)?;
        run(&mut opt)?;
        Checkpoint::capture("mnist-mlp", precision, steps, &params, &opt, &scaler)?
    } else {
        if precision == Precision::PureF16 {
            mixprec::amp::convert_params(&params, DType::F16, |_| false)?;
        }
        let mut opt = sgd(params.iter().map(|(_, v)| v.clone()).collect())?;
        run(&mut opt)?;
        Checkpoint::capture("mnist-mlp", precision, steps, &params, &opt, &scaler)?
    };
    ckpt.save_in(dir)?;
    // The logits mixprec computes for the first 128 test images, in FP32
    // from the parameters as stored (the working copies widened).
    let mut test = mnist.test.batch(&(0..128).collect::<Vec<_>>(), DType::F32, Normalize::MNIST)?;
    test.inputs = test.inputs.reshape(&[128, 784])?;
    let eval = mlp(&mut Generator::new(1))?;
    for ((_, p), (_, t)) in eval.named_parameters().iter().zip(&ckpt.params) {
        p.param().ok_or("not a parameter")?.set_value(t.to_dtype(DType::F32)?)?;
    }
    let logits = autocast(Precision::F32, || eval.forward(&Var::new(test.inputs.clone())))?.value();
    let out = Checkpoint {
        model: "mnist-mlp-batch".into(),
        precision: Precision::F32,
        step: 0,
        params: vec![],
        masters: vec![],
        optimizer: None,
        scaler: None,
        rngs: vec![],
        buffers: vec![("x".into(), test.inputs), ("logits".into(), logits)],
        extra: BTreeMap::new(),
    };
    write_atomic(&dir.join("batch.safetensors"), &out.to_bytes()?)?;
    println!("{}: {precision} MLP after {steps} steps, and a test batch with its logits", dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match (args.first().map(String::as_str), args.get(1)) {
        (Some("write"), Some(path)) => fixture().save(path).map_err(Error::from).map(|()| println!("{path}: written")),
        (Some("check"), Some(path)) => Checkpoint::load(path).map_err(Error::from).and_then(|c| {
            let diff = c.differences(&fixture());
            if diff.is_empty() {
                println!("{path}: every tensor and field equals the fixture, bit for bit");
                Ok(())
            } else {
                Err(format!("{path}: differs from the fixture in {diff:?}").into())
            }
        }),
        (Some("mlp"), Some(dir)) => train_mlp(Path::new(dir), &args[2..]),
        _ => {
            Err("usage: checkpoint_interop write PATH | check PATH | mlp DIR [--precision P] [--steps N] [--data DIR]"
                .into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
