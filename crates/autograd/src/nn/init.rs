//! Weight initialisation from the seeded generator
//! ([`Generator`](mixprec_tensor::random::Generator)): the same seed gives
//! the same bits on every platform. Values are drawn in f64 and rounded once
//! to the dtype.
//!
//! Bounds as PyTorch's `nn.init`: Kaiming uniform `U(±gain·√(3/fan_in))`,
//! Kaiming normal `N(0, gain²/fan_in)`, Xavier uniform
//! `U(±gain·√(6/(fan_in + fan_out)))`, Xavier normal
//! `N(0, gain²·2/(fan_in + fan_out))`. Gains: [`RELU_GAIN`] = √2;
//! PyTorch's `Linear` default is Kaiming uniform with gain √(1/3)
//! ([`LINEAR_DEFAULT_GAIN`]), i.e. `U(±1/√fan_in)`.

use mixprec_tensor::random::{self, Generator};
use mixprec_tensor::{DType, Tensor};

use crate::error::Result;

/// The gain for ReLU layers, √2.
pub const RELU_GAIN: f64 = std::f64::consts::SQRT_2;

/// The gain of PyTorch's `Linear` default init, √(1/3) (`a = √5`).
pub const LINEAR_DEFAULT_GAIN: f64 = 0.577_350_269_189_625_8;

/// Uniform samples in `[lo, hi)`.
pub fn uniform(shape: &[usize], lo: f64, hi: f64, dtype: DType, rng: &mut Generator) -> Result<Tensor> {
    let mut t = Tensor::zeros(shape, DType::F64)?;
    rng.fill_uniform_f64(t.data_mut::<f64>()?, lo, hi);
    Ok(t.to_dtype(dtype)?)
}

/// Normal samples with this mean and standard deviation.
pub fn normal(shape: &[usize], mean: f64, std: f64, dtype: DType, rng: &mut Generator) -> Result<Tensor> {
    let mut t = Tensor::zeros(shape, DType::F64)?;
    rng.fill_normal_f64(t.data_mut::<f64>()?, mean, std);
    Ok(t.to_dtype(dtype)?)
}

/// Kaiming (He) uniform: `U(±gain·√(3/fan_in))`.
pub fn kaiming_uniform(shape: &[usize], fan_in: usize, gain: f64, dtype: DType, rng: &mut Generator) -> Result<Tensor> {
    let b = random::kaiming_uniform_bound(fan_in, gain);
    uniform(shape, -b, b, dtype, rng)
}

/// Kaiming (He) normal: `N(0, gain²/fan_in)`.
pub fn kaiming_normal(shape: &[usize], fan_in: usize, gain: f64, dtype: DType, rng: &mut Generator) -> Result<Tensor> {
    normal(shape, 0.0, random::kaiming_normal_std(fan_in, gain), dtype, rng)
}

/// Xavier (Glorot) uniform: `U(±gain·√(6/(fan_in + fan_out)))`.
pub fn xavier_uniform(
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    gain: f64,
    dtype: DType,
    rng: &mut Generator,
) -> Result<Tensor> {
    let b = random::xavier_uniform_bound(fan_in, fan_out, gain);
    uniform(shape, -b, b, dtype, rng)
}

/// Xavier (Glorot) normal: `N(0, gain²·2/(fan_in + fan_out))`.
pub fn xavier_normal(
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    gain: f64,
    dtype: DType,
    rng: &mut Generator,
) -> Result<Tensor> {
    normal(shape, 0.0, random::xavier_normal_std(fan_in, fan_out, gain), dtype, rng)
}
