//! Helpers shared by the op tests: seeded random tensors and gradcheck
//! assertions.
#![allow(dead_code)]

use mixprec_autograd::Var;
use mixprec_autograd::gradcheck::{GradcheckReport, Tolerance, gradcheck, gradcheck_with};
use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, Tensor};

/// Uniform values in `[lo, hi)` (f64).
pub fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v = vec![0.0f64; n];
    Generator::new(seed).fill_uniform_f64(&mut v, lo, hi);
    Tensor::from_vec(v, shape).unwrap()
}

/// Values with `lo ≤ |x| < hi` and a random sign (away from 0).
pub fn away_from_zero(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut rng = Generator::new(seed);
    let mut v = vec![0.0f64; n];
    rng.fill_uniform_f64(&mut v, lo, hi);
    for x in v.iter_mut() {
        if rng.next_u32() & 1 == 1 {
            *x = -*x;
        }
    }
    Tensor::from_vec(v, shape).unwrap()
}

/// Distinct values at least 0.01 apart (for max), shuffled.
pub fn distinct(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut rng = Generator::new(seed);
    let perm = rng.permutation(n);
    let v: Vec<f64> = perm.iter().map(|&p| p as f64 * 0.05 - n as f64 * 0.025).collect();
    Tensor::from_vec(v, shape).unwrap()
}

/// f32 values from a literal.
pub fn t32(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

/// f64 values from a literal.
pub fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

/// Panics with the failure unless `f`'s backward matches finite differences.
pub fn check<F: Fn(&[Var]) -> mixprec_autograd::Result<Var>>(f: F, inputs: &[Tensor]) -> GradcheckReport {
    match gradcheck(f, inputs) {
        Ok(r) => r,
        Err(e) => panic!("gradcheck failed: {e}"),
    }
}

/// [`check`] at a given tolerance.
pub fn check_tol<F: Fn(&[Var]) -> mixprec_autograd::Result<Var>>(
    f: F,
    inputs: &[Tensor],
    tol: Tolerance,
) -> GradcheckReport {
    match gradcheck_with(f, inputs, tol) {
        Ok(r) => r,
        Err(e) => panic!("gradcheck failed: {e}"),
    }
}

/// The gradient of a parameter as f64.
pub fn grad64(v: &Var) -> Vec<f64> {
    v.grad().expect("a gradient").to_vec_f64().unwrap()
}

/// The value as f64.
pub fn val64(v: &Var) -> Vec<f64> {
    v.value().to_vec_f64().unwrap()
}

/// A parameter in `dtype`.
pub fn param(v: &[f64], shape: &[usize], dtype: DType) -> Var {
    Var::parameter(t64(v, shape).to_dtype(dtype).unwrap())
}

/// Asserts two slices agree within `tol` (absolute).
pub fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "lengths differ: {a:?} vs {b:?}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "element {i}: {x} vs {y} (tol {tol}); {a:?} vs {b:?}");
    }
}
