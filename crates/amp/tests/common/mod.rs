//! Test helpers: a plain SGD over parameters of any float dtype (widened,
//! updated in FP32, rounded once — as the autograd optimizers do) that
//! records the gradients it stepped with.
#![allow(dead_code)]

use mixprec_amp::AmpOptimizer;
use mixprec_autograd::Var;
use mixprec_autograd::tensor::Tensor;

pub struct RecordingSgd {
    pub params: Vec<Var>,
    pub lr: f32,
    pub seen: Vec<Vec<f32>>,
    pub record: bool,
}

impl RecordingSgd {
    pub fn new(params: Vec<Var>, lr: f32) -> Self {
        RecordingSgd { params, lr, seen: Vec::new(), record: true }
    }
    pub fn values(&self) -> Vec<Vec<f32>> {
        self.params.iter().map(|p| p.value().to_vec_f32().unwrap()).collect()
    }
    pub fn zero_grad(&self) {
        self.params.iter().for_each(Var::zero_grad);
    }
}

impl AmpOptimizer for RecordingSgd {
    fn amp_params(&self) -> &[Var] {
        &self.params
    }
    fn amp_step(&mut self) -> mixprec_amp::Result<()> {
        for p in &self.params {
            let Some(g) = p.grad() else { continue };
            let g = g.to_vec_f32().unwrap();
            let lr = self.lr;
            p.param().unwrap().update(|w, _| {
                let mut v = w.to_vec_f32().unwrap();
                for (w, g) in v.iter_mut().zip(&g) {
                    *w -= lr * g;
                }
                let t = Tensor::from_vec(v, w.shape()).unwrap().to_dtype(w.dtype()).unwrap();
                w.copy_(&t).unwrap();
            });
            if self.record {
                self.seen.push(g);
            }
        }
        Ok(())
    }
}

pub fn param(v: &[f32]) -> Var {
    Var::parameter(Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap())
}

pub fn konst(v: &[f32]) -> Var {
    Var::new(Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap())
}

pub fn poke(p: &Var, i: usize, v: f32) {
    p.param().unwrap().update_grad(|g| g.data_mut::<f32>().unwrap()[i] = v).unwrap();
}
