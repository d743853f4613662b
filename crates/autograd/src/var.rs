//! [`Var`]: the value a model computes with. A cheap, clonable handle: a
//! constant tensor, an op's result with an `Arc` to its tape node, or a
//! parameter (an `Arc` to its shared [`Param`] cell, read at each use so an
//! optimizer's update is seen by every handle).

use std::sync::Arc;

use mixprec_tensor::{DType, Tensor};

use crate::engine::{self, BackwardOptions};
use crate::error::Result;
use crate::graph::{Edge, Input, Node};
use crate::param::Param;

/// A differentiable value: what ops take and return.
///
/// ```
/// use mixprec_autograd::{Var, tensor::{DType, Tensor}};
/// let w = Var::parameter(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?);
/// let x = Var::new(Tensor::from_vec(vec![3.0f32, 4.0], &[2])?);
/// let loss = x.mul(&w)?.sum_all()?;
/// loss.backward()?;
/// assert_eq!(w.grad().unwrap().to_vec_f32()?, vec![3.0, 4.0]);
/// # Ok::<(), mixprec_autograd::AutogradError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Var {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    /// A constant (`node == None`) or an op's result.
    Value { value: Tensor, node: Option<Arc<Node>> },
    /// A parameter.
    Param(Arc<Param>),
}

impl Var {
    /// A constant: no gradient flows to it.
    pub fn new(value: Tensor) -> Var {
        Var::constant(value)
    }

    /// A constant: no gradient flows to it.
    pub fn constant(value: Tensor) -> Var {
        Var { repr: Repr::Value { value, node: None } }
    }

    /// A new leaf that requires a gradient (a fresh [`Param`]).
    pub fn parameter(value: Tensor) -> Var {
        Var::from_param(Arc::new(Param::new(value)))
    }

    /// A handle to an existing parameter.
    pub fn from_param(param: Arc<Param>) -> Var {
        Var { repr: Repr::Param(param) }
    }

    pub(crate) fn from_node(value: Tensor, node: Arc<Node>) -> Var {
        Var { repr: Repr::Value { value, node: Some(node) } }
    }

    /// The value (a cheap handle; for a parameter, its current value).
    pub fn value(&self) -> Tensor {
        match &self.repr {
            Repr::Value { value, .. } => value.clone(),
            Repr::Param(p) => p.value(),
        }
    }

    /// Runs `f` on the value without cloning the handle.
    pub fn with_value<R>(&self, f: impl FnOnce(&Tensor) -> R) -> R {
        match &self.repr {
            Repr::Value { value, .. } => f(value),
            Repr::Param(p) => f(&p.value()),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match &self.repr {
            Repr::Value { value, .. } => value.shape(),
            Repr::Param(p) => p.shape(),
        }
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        match &self.repr {
            Repr::Value { value, .. } => value.dtype(),
            Repr::Param(p) => p.dtype(),
        }
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        mixprec_tensor::layout::checked_numel(self.shape()).unwrap_or(0)
    }

    /// The value of a one-element tensor, widened to f64.
    pub fn item(&self) -> Result<f64> {
        Ok(self.with_value(|v| v.item())?)
    }

    /// Whether a gradient flows to this value: a parameter that requires
    /// one, or a result recorded from such inputs.
    pub fn requires_grad(&self) -> bool {
        match &self.repr {
            Repr::Value { node, .. } => node.is_some(),
            Repr::Param(p) => p.requires_grad(),
        }
    }

    /// Whether this is a parameter (a leaf with a gradient cell).
    pub fn is_param(&self) -> bool {
        matches!(self.repr, Repr::Param(_))
    }

    /// The parameter behind this handle, if it is one.
    pub fn param(&self) -> Option<&Arc<Param>> {
        match &self.repr {
            Repr::Param(p) => Some(p),
            Repr::Value { .. } => None,
        }
    }

    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        match &self.repr {
            Repr::Value { node, .. } => node.as_ref(),
            Repr::Param(_) => None,
        }
    }

    /// The name of the op that produced this value (`None` for constants
    /// and parameters).
    pub fn op(&self) -> Option<&'static str> {
        self.node().map(|n| n.op)
    }

    /// The accumulated gradient of a parameter (`None` before any backward
    /// reached it, after `zero_grad`, and for non-parameters).
    pub fn grad(&self) -> Option<Tensor> {
        self.param().and_then(|p| p.grad())
    }

    /// Clears a parameter's gradient (nothing for other values).
    pub fn zero_grad(&self) {
        if let Some(p) = self.param() {
            p.zero_grad();
        }
    }

    /// The same value, cut from the graph: a constant.
    pub fn detach(&self) -> Var {
        Var::constant(self.value())
    }

    /// Backpropagates from this one-element value: accumulates `d self /
    /// d p` into the gradient of every parameter `p` it depends on, then
    /// frees the graph's saved tensors.
    pub fn backward(&self) -> Result<()> {
        engine::backward(self, BackwardOptions::default())
    }

    /// Backpropagates with a seed gradient and/or keeping the graph.
    pub fn backward_with(&self, opts: BackwardOptions) -> Result<()> {
        engine::backward(self, opts)
    }

    pub(crate) fn as_input(&self) -> Input {
        let edge = match &self.repr {
            Repr::Value { node, .. } => node.clone().map(Edge::Node),
            Repr::Param(p) => p.requires_grad().then(|| Edge::Param(Arc::clone(p))),
        };
        Input { edge, shape: self.shape().to_vec(), dtype: self.dtype() }
    }
}

impl From<Tensor> for Var {
    fn from(value: Tensor) -> Var {
        Var::constant(value)
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Var>();
};
