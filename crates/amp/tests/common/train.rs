//! A small training run in any precision mode, with everything a
//! checkpoint must carry: FP32 masters (O2), an optimizer with state (SGD
//! with momentum or AdamW), a dynamic loss scaler that skips steps (f16
//! modes), a data-order generator and dropout masks.
#![allow(dead_code)]

use mixprec_amp::checkpoint::CheckpointOptimizer;
use mixprec_amp::scaler::ScalerConfig;
use mixprec_amp::{AmpOptimizer, Checkpoint, GradScaler, MasterWeights, Precision, autocast, convert_params};
use mixprec_autograd::nn::{Dropout, Linear, Module};
use mixprec_autograd::optim::{AdamConfig, AdamW, Sgd, SgdConfig};
use mixprec_autograd::tensor::random::Generator;
use mixprec_autograd::tensor::{DType, Tensor};
use mixprec_autograd::{CrossEntropy, Var};

pub const MODEL: &str = "test-mlp-16-32-10";

pub trait Opt: AmpOptimizer + CheckpointOptimizer {}
impl<T: AmpOptimizer + CheckpointOptimizer> Opt for T {}

pub struct Net {
    pub fc1: Linear,
    pub drop: Dropout,
    pub fc2: Linear,
}

impl Net {
    pub fn new(hidden: usize, seed: u64) -> Net {
        let mut rng = Generator::new(seed);
        Net {
            fc1: Linear::new(16, hidden, &mut rng).unwrap(),
            drop: Dropout::new(0.1, seed + 1),
            fc2: Linear::new(hidden, 10, &mut rng).unwrap(),
        }
    }

    pub fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (prefix, m) in [("fc1", &self.fc1), ("fc2", &self.fc2)] {
            out.extend(m.named_parameters().into_iter().map(|(n, v)| (format!("{prefix}.{n}"), v)));
        }
        out
    }

    pub fn forward(&self, x: &Var) -> Var {
        let h = self.fc1.forward(x).unwrap().relu().unwrap();
        self.fc2.forward(&self.drop.forward(&h).unwrap()).unwrap()
    }
}

pub struct Run {
    pub net: Net,
    pub params: Vec<(String, Var)>,
    pub opt: Box<dyn Opt>,
    pub scaler: GradScaler,
    pub data_rng: Generator,
    pub precision: Precision,
    pub step: u64,
    x: Vec<f32>,
    y: Vec<usize>,
}

impl Run {
    /// `adam`: AdamW, else SGD with Nesterov momentum and weight decay.
    pub fn new(precision: Precision, adam: bool) -> Run {
        Run::with_hidden(precision, adam, 32)
    }

    pub fn with_hidden(precision: Precision, adam: bool, hidden: usize) -> Run {
        let net = Net::new(hidden, 11);
        let params = net.named_parameters();
        let adamw = AdamConfig { lr: 0.01, ..AdamConfig::adamw() };
        let sgd = SgdConfig { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 1e-4, ..SgdConfig::default() };
        if precision == Precision::PureF16 {
            convert_params(&params, DType::F16, |_| false).unwrap();
        }
        let plain: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
        let opt: Box<dyn Opt> = match (precision.low_dtype().filter(|_| precision.has_master_weights()), adam) {
            (Some(dtype), true) => {
                Box::new(MasterWeights::new(params.clone(), dtype, |p| Ok(AdamW::new(p, adamw)?)).unwrap())
            }
            (Some(dtype), false) => {
                Box::new(MasterWeights::new(params.clone(), dtype, |p| Ok(Sgd::new(p, sgd)?)).unwrap())
            }
            (None, true) => Box::new(AdamW::new(plain, adamw).unwrap()),
            (None, false) => Box::new(Sgd::new(plain, sgd).unwrap()),
        };
        let scaler = if precision.default_loss_scaling() {
            GradScaler::new(ScalerConfig { init_scale: 131072.0, growth_interval: 2, ..ScalerConfig::default() })
                .unwrap()
        } else {
            GradScaler::disabled()
        };
        let mut g = Generator::new(5);
        let mut x = vec![0.0f32; 64 * 16];
        g.fill_normal_f32(&mut x, 0.0, 2.0);
        let y = (0..64).map(|i| (x[i * 16].abs() * 3.0) as usize % 10).collect();
        Run { net, params, opt, scaler, data_rng: Generator::new(9), precision, step: 0, x, y }
    }

    pub fn train(&mut self, steps: u64) {
        for _ in 0..steps {
            let idx: Vec<usize> = (0..16).map(|_| self.data_rng.below(64) as usize).collect();
            let xb: Vec<f32> = idx.iter().flat_map(|&i| self.x[i * 16..][..16].to_vec()).collect();
            let yb: Vec<usize> = idx.iter().map(|&i| self.y[i]).collect();
            let x = Var::new(Tensor::from_vec(xb, &[16, 16]).unwrap());
            for (_, p) in &self.params {
                p.zero_grad();
            }
            let loss =
                autocast(self.precision, || self.net.forward(&x).cross_entropy(&yb, CrossEntropy::default()).unwrap());
            self.scaler.scale(&loss).unwrap().backward().unwrap();
            self.scaler.step(&mut *self.opt).unwrap();
            self.scaler.update().unwrap();
            self.step += 1;
        }
    }

    pub fn capture(&self) -> Checkpoint {
        let mut c =
            Checkpoint::capture(MODEL, self.precision, self.step, &self.params, &*self.opt, &self.scaler).unwrap();
        c.rngs.push(("data".into(), self.data_rng.state()));
        c.rngs.push(("dropout".into(), self.net.drop.generator_state()));
        c.extra.insert("note".into(), "test run".into());
        c
    }

    pub fn restore(&mut self, c: &Checkpoint) -> Result<(), mixprec_amp::CheckpointError> {
        c.restore(MODEL, self.precision, &self.params, &mut *self.opt, &mut self.scaler)?;
        self.data_rng = Generator::from_state(&c.rng("data")?);
        self.net.drop.set_generator_state(&c.rng("dropout")?);
        self.step = c.step;
        Ok(())
    }
}
