//! [`Conv2d`], [`MaxPool2d`], [`AvgPool2d`]: PyTorch's layers over
//! `[N, C, H, W]`, with its default initialisation for `Conv2d`
//! (Kaiming uniform with gain √(1/3), bias `U(±1/√fan_in)`).

use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, TensorError};

use crate::error::Result;
use crate::nn::{Module, init};
use crate::var::Var;

/// A 2-D convolution (`groups = 1`): weight `[O, C, KH, KW]`, bias `[O]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// `[out_channels, in_channels, KH, KW]`.
    pub weight: Var,
    /// `[out_channels]`, if the layer has one.
    pub bias: Option<Var>,
    /// Stride per axis.
    pub stride: [usize; 2],
    /// Zero padding per axis.
    pub padding: [usize; 2],
    /// Dilation per axis.
    pub dilation: [usize; 2],
}

impl Conv2d {
    /// An f32 layer with a bias, stride 1, dilation 1 and `padding`,
    /// initialised as PyTorch's `nn.Conv2d`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        padding: [usize; 2],
        rng: &mut Generator,
    ) -> Result<Conv2d> {
        let shape = [out_channels, in_channels, kernel[0], kernel[1]];
        let fan_in = [in_channels, kernel[0], kernel[1]]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or(TensorError::ShapeOverflow { op: "Conv2d", shape: shape.to_vec() })?;
        let w = init::kaiming_uniform(&shape, fan_in, init::LINEAR_DEFAULT_GAIN, DType::F32, rng)?;
        let bound = if fan_in == 0 { 0.0 } else { 1.0 / (fan_in as f64).sqrt() };
        let b = init::uniform(&[out_channels], -bound, bound, DType::F32, rng)?;
        Ok(Conv2d {
            weight: Var::parameter(w),
            bias: Some(Var::parameter(b)),
            stride: [1, 1],
            padding,
            dilation: [1, 1],
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.conv2d(&self.weight, self.bias.as_ref(), self.stride, self.padding, self.dilation)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut out = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            out.push(("bias".to_string(), b.clone()));
        }
        out
    }
}

/// 2-D max pooling (stride defaults to the kernel, as PyTorch's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit −∞ padding (at most half the kernel).
    pub padding: [usize; 2],
    /// Spacing of the window's taps.
    pub dilation: [usize; 2],
}

impl MaxPool2d {
    /// A `kernel` window, stride `kernel`, no padding.
    pub fn new(kernel: [usize; 2]) -> MaxPool2d {
        MaxPool2d { kernel, stride: kernel, padding: [0, 0], dilation: [1, 1] }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.max_pool2d(self.kernel, self.stride, self.padding, self.dilation)
    }
}

/// 2-D average pooling (stride defaults to the kernel; padding counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zero padding (at most half the kernel), counted in the divisor.
    pub padding: [usize; 2],
}

impl AvgPool2d {
    /// A `kernel` window, stride `kernel`, no padding.
    pub fn new(kernel: [usize; 2]) -> AvgPool2d {
        AvgPool2d { kernel, stride: kernel, padding: [0, 0] }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.avg_pool2d(self.kernel, self.stride, self.padding)
    }
}
