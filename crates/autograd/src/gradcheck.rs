//! Finite-difference gradient checks: the op runs in f64, each input
//! element is moved by ±h, and the central difference
//! `(L(x + h) − L(x − h)) / 2h` of the projected output `L = Σ r·f(x)` (a
//! fixed random `r`, so every output element matters) must match the
//! backward pass: `|g_ad − g_fd| ≤ atol + rtol·|g_fd|` (by default `1e-7`
//! and `1e-6`, with `h = 1e-6`). The absolute term covers the rounding of
//! the difference quotient, about `ε·|L|/h ≈ 1e-10·|L|` in f64: projected
//! outputs of tens to hundreds give errors near `1e-8`.
//!
//! The check also fails if the graph holds an op missing from
//! [`registry::OPS`](crate::registry::OPS), so every op with a gradcheck is
//! known to autocast policies. Choose inputs away from kinks (ReLU at 0,
//! max at ties): a finite difference across a kink is not a derivative.

use std::fmt;

use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, Tensor};

use crate::engine::BackwardOptions;
use crate::error::AutogradError;
use crate::var::Var;
use crate::{mode, registry};

/// Step and tolerances of [`gradcheck_with`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// The finite-difference step `h`.
    pub step: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (of `|g_fd|`).
    pub rtol: f64,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance { step: 1e-6, atol: 1e-7, rtol: 1e-6 }
    }
}

/// Why a gradient check failed.
#[derive(Clone, Debug, PartialEq)]
pub enum GradcheckError {
    /// The function returned an error.
    Op(AutogradError),
    /// The graph recorded an op missing from the registry.
    Unregistered(&'static str),
    /// An analytic and a numeric derivative disagree.
    Mismatch {
        /// Which input.
        input: usize,
        /// Which element of it (row-major).
        index: usize,
        /// From backward.
        analytic: f64,
        /// From central differences.
        numeric: f64,
    },
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradcheckError::Op(e) => write!(f, "the function failed: {e}"),
            GradcheckError::Unregistered(op) => write!(f, "op `{op}` is missing from registry::OPS"),
            GradcheckError::Mismatch { input, index, analytic, numeric } => write!(
                f,
                "input {input}, element {index}: backward gives {analytic:e}, finite differences {numeric:e} (|diff| {:e})",
                (analytic - numeric).abs()
            ),
        }
    }
}

impl std::error::Error for GradcheckError {}

impl From<AutogradError> for GradcheckError {
    fn from(e: AutogradError) -> GradcheckError {
        GradcheckError::Op(e)
    }
}

/// What a passing check measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradcheckReport {
    /// Derivatives compared.
    pub checked: usize,
    /// The largest `|g_ad − g_fd|`.
    pub max_abs_error: f64,
}

/// [`gradcheck_with`] at the default tolerance.
pub fn gradcheck<F>(f: F, inputs: &[Tensor]) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&[Var]) -> crate::Result<Var>,
{
    gradcheck_with(f, inputs, Tolerance::default())
}

/// Checks the backward pass of `f` against central differences at
/// `inputs` (converted to f64; each becomes a parameter).
pub fn gradcheck_with<F>(f: F, inputs: &[Tensor], tol: Tolerance) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&[Var]) -> crate::Result<Var>,
{
    let xs: Vec<Tensor> =
        inputs.iter().map(|t| t.to_dtype(DType::F64)).collect::<Result<_, _>>().map_err(AutogradError::from)?;
    let params: Vec<Var> = xs.iter().map(|t| Var::parameter(t.clone())).collect();
    let out = f(&params)?;
    if let Some(op) = crate::graph::ops_in(&out).into_iter().find(|op| !registry::is_registered(op)) {
        return Err(GradcheckError::Unregistered(op));
    }
    let out_shape = out.shape().to_vec();
    let mut rng = Generator::new(0x6772_6164);
    let mut r = vec![0.0f64; out.numel()];
    rng.fill_uniform_f64(&mut r, 0.5, 1.5);
    let r = Tensor::from_vec(r, &out_shape).map_err(AutogradError::from)?;
    if out.requires_grad() {
        out.backward_with(BackwardOptions { grad: Some(r.clone()), retain_graph: false })?;
    }
    let project = |vals: &[Tensor]| -> Result<f64, GradcheckError> {
        let vars: Vec<Var> = vals.iter().map(|t| Var::constant(t.clone())).collect();
        let y = mode::no_grad(|| f(&vars))?.value().to_dtype(DType::F64).map_err(AutogradError::from)?;
        let (y, r) = (y.to_vec_f64().map_err(AutogradError::from)?, r.to_vec_f64().map_err(AutogradError::from)?);
        Ok(y.iter().zip(&r).map(|(a, b)| a * b).sum())
    };
    let mut report = GradcheckReport::default();
    for (i, (x, p)) in xs.iter().zip(&params).enumerate() {
        let analytic = match p.grad() {
            Some(g) => g.to_vec_f64().map_err(AutogradError::from)?,
            None => vec![0.0; x.numel()],
        };
        let base = x.to_vec_f64().map_err(AutogradError::from)?;
        for (j, &a) in analytic.iter().enumerate() {
            let moved = |delta: f64| -> Result<f64, GradcheckError> {
                let mut v = base.clone();
                v[j] += delta;
                let mut vals = xs.clone();
                vals[i] = Tensor::from_vec(v, x.shape()).map_err(AutogradError::from)?;
                project(&vals)
            };
            let numeric = (moved(tol.step)? - moved(-tol.step)?) / (2.0 * tol.step);
            let err = (a - numeric).abs();
            if err > tol.atol + tol.rtol * numeric.abs() || err.is_nan() {
                return Err(GradcheckError::Mismatch { input: i, index: j, analytic: a, numeric });
            }
            report.checked += 1;
            report.max_abs_error = report.max_abs_error.max(err);
        }
    }
    Ok(report)
}
