//! The checkpoint interop fixture, shared by the amp tests and
//! examples/checkpoint_interop.rs, and defined identically in
//! scripts/checkpoint_interop.py: values exact in their dtypes (±0, ±Inf,
//! NaN, subnormals, each dtype's largest finite value, then
//! `((37 j) mod 101 − 50) / 8`), so both languages produce the same bits
//! without rounding.
#![allow(dead_code)]

use std::collections::BTreeMap;

use mixprec_amp::checkpoint::{OptimizerSnapshot, OptimizerState};
use mixprec_amp::scaler::{ScaleState, ScalerConfig};
use mixprec_amp::{Checkpoint, Precision, ScalerSnapshot};
use mixprec_autograd::optim::{SgdConfig, SgdState};
use mixprec_autograd::tensor::random::GeneratorState;
use mixprec_autograd::tensor::{DType, Tensor};

fn specials(dtype: DType) -> [f64; 8] {
    let inf = f64::INFINITY;
    match dtype {
        DType::F16 => [0.0, -0.0, inf, -inf, f64::NAN, 2f64.powi(-24), 65504.0, -(2f64.powi(-14))],
        DType::BF16 => [0.0, -0.0, inf, -inf, f64::NAN, 2f64.powi(-133), half::bf16::MAX.to_f64(), -(2f64.powi(-126))],
        _ => [0.0, -0.0, inf, -inf, f64::NAN, 2f64.powi(-149), f32::MAX as f64, -(2f64.powi(-126))],
    }
}

/// Element `j = i + offset`: the dtype's special values, then `((37 j) mod 101 − 50) / 8`.
pub fn values(dtype: DType, shape: &[usize], offset: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let sp = specials(dtype);
    let v: Vec<f64> = (offset..offset + n)
        .map(|j| if j < sp.len() { sp[j] } else { ((j * 37) % 101) as f64 / 8.0 - 50.0 / 8.0 })
        .collect();
    Tensor::from_vec(v, shape).and_then(|t| t.to_dtype(dtype)).expect("fixture values")
}

fn f32s(shape: &[usize], offset: usize) -> Vec<f32> {
    values(DType::F32, shape, offset).to_vec_f32().expect("f32")
}

/// The fixture scripts/checkpoint_interop.py defines too.
pub fn fixture() -> Checkpoint {
    let params = [
        ("layer.weight", DType::F16, vec![4, 8]),
        ("layer.bias", DType::F32, vec![8]),
        ("norm.weight", DType::BF16, vec![9]),
    ];
    let sgd = SgdConfig { lr: 0.05, momentum: 0.9, dampening: 0.0, weight_decay: 0.0001, nesterov: true };
    Checkpoint {
        model: "interop-fixture".into(),
        precision: Precision::MasterWeights,
        step: 42,
        params: params.iter().map(|(n, d, s)| (n.to_string(), values(*d, s, 0))).collect(),
        masters: vec![("layer.weight".into(), values(DType::F32, &[4, 8], 100))],
        optimizer: Some(OptimizerSnapshot {
            params: params.iter().map(|(n, _, _)| n.to_string()).collect(),
            state: OptimizerState::Sgd {
                config: sgd,
                state: SgdState { momentum: vec![Some(f32s(&[4, 8], 200)), None, Some(f32s(&[9], 300))] },
            },
        }),
        scaler: Some(ScalerSnapshot {
            config: ScalerConfig { min_scale: 1.0, max_consecutive_skips: 50, ..ScalerConfig::statistics(65536.0) },
            state: ScaleState { scale: 32768.0, growth_tracker: 17, peak: 0.375, peak_ratio: 2.5 },
            enabled: true,
            skipped_steps: 3,
            applied_steps: 39,
            consecutive_skips: 1,
        }),
        rngs: vec![("data".into(), GeneratorState { seed: 7, stream: 3, word_pos: 1_234_567 })],
        buffers: vec![("running_mean".into(), values(DType::F32, &[5], 400))],
        extra: BTreeMap::from([("note".to_string(), "interop ünïcode ✓".to_string())]),
    }
}
