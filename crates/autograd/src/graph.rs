//! The tape: nodes, their input edges, the [`Backward`] rules ops implement,
//! and [`record`], which every differentiable op calls once with its output.
//!
//! A node holds its op's name, a sequence number from one global counter
//! (creation order, so ordering by it is a topological order), its input
//! edges (another node, a parameter, or nothing for a constant) with each
//! input's shape and dtype, and its rule, which owns the tensors the op saved
//! for backward. Nodes are reference-counted: the graph lives as long as the
//! `Var`s that reach it, and frees itself (iteratively) when they drop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mixprec_tensor::{DType, Tensor};

use crate::error::{AutogradError, Result};
use crate::param::{GradBuffer, Param};
use crate::var::Var;
use crate::{mode, pool, saved, scan, util};

static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

/// The next sequence number (process-wide, strictly increasing).
pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.fetch_add(1, Ordering::Relaxed)
}

/// An op's backward rule: given the gradient of the op's output, accumulate
/// the gradients of its inputs through [`Grads`].
///
/// The struct implementing it holds exactly what the op saved for backward
/// (its input, its output, or nothing) and lists those tensors in
/// [`Backward::saved`], so the tape can count and free them. Rules hold
/// tensors, never `Var`s.
pub trait Backward: Send + Sync {
    /// Accumulates the input gradients for the output gradient `g` (the
    /// output's shape and dtype, not necessarily contiguous).
    fn backward(&self, g: &Tensor, grads: &mut Grads<'_>) -> Result<()>;

    /// The tensors held for backward (empty: the rule can run again after
    /// its graph was released).
    fn saved(&self) -> Vec<&Tensor> {
        Vec::new()
    }
}

/// Where an input's gradient goes.
#[derive(Debug)]
pub(crate) enum Edge {
    Node(Arc<Node>),
    Param(Arc<Param>),
}

/// One input of a node: where its gradient goes (`None`: it needs none),
/// and its shape and dtype (the gradient's).
#[derive(Debug)]
pub(crate) struct Input {
    pub(crate) edge: Option<Edge>,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
}

/// One recorded op.
pub(crate) struct Node {
    pub(crate) seq: u64,
    pub(crate) op: &'static str,
    pub(crate) inputs: Vec<Input>,
    /// The rule; `None` once a backward without `retain_graph` freed what it saved.
    pub(crate) rule: Mutex<Option<Box<dyn Backward>>>,
    /// Whether the rule saved tensors (and so is freed after backward).
    pub(crate) saves: bool,
    /// The name scope at record time (kept only while the non-finite scan is on).
    pub(crate) scope: Option<Arc<str>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("seq", &self.seq)
            .field("op", &self.op)
            .field("inputs", &self.inputs.len())
            .finish()
    }
}

impl Node {
    pub(crate) fn rule(&self) -> MutexGuard<'_, Option<Box<dyn Backward>>> {
        self.rule.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the rule and the tensors it saved (after a backward pass); the
    /// saved buffers nothing else holds go to the buffer cache.
    pub(crate) fn release(&self) {
        let rule = self.rule().take();
        if let Some(rule) = rule {
            let saved: Vec<Tensor> = rule.saved().into_iter().cloned().collect();
            let refs: Vec<&Tensor> = saved.iter().collect();
            saved::unregister(&refs);
            drop(rule);
            for t in saved {
                pool::give(t);
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(rule) = self.rule.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            saved::unregister(&rule.saved());
        }
        // Unlink the inputs iteratively: a long chain dropped recursively
        // would overflow the stack.
        let mut stack: Vec<Arc<Node>> = Vec::new();
        let take = |inputs: &mut Vec<Input>, stack: &mut Vec<Arc<Node>>| {
            for input in inputs.iter_mut() {
                if let Some(Edge::Node(n)) = input.edge.take() {
                    stack.push(n);
                }
            }
        };
        take(&mut self.inputs, &mut stack);
        while let Some(n) = stack.pop() {
            if let Some(mut inner) = Arc::into_inner(n) {
                take(&mut inner.inputs, &mut stack);
            }
        }
    }
}

/// Records an op whose result is `value`, computed from `inputs`. Returns a
/// constant when gradients are off (`no_grad`) or no input requires one;
/// only then is `rule` not called. `rule` gets the output (to save it, if
/// the backward needs it).
///
/// Every op's name must be listed in [`crate::registry::OPS`].
pub fn record<B: Backward + 'static>(
    op: &'static str,
    inputs: &[&Var],
    value: Tensor,
    rule: impl FnOnce(&Tensor) -> B,
) -> Var {
    debug_assert!(crate::registry::is_registered(op), "op `{op}` is missing from registry::OPS");
    let scanning = scan::enabled();
    let needs_grad = mode::is_grad_enabled() && inputs.iter().any(|v| v.requires_grad());
    if !needs_grad {
        if scanning {
            scan::check_forward(next_seq(), op, &value);
        }
        return Var::constant(value);
    }
    let rule = rule(&value);
    let saved_tensors = rule.saved();
    let saves = !saved_tensors.is_empty();
    saved::register(&saved_tensors);
    drop(saved_tensors);
    let seq = next_seq();
    let scope = if scanning { scan::check_forward(seq, op, &value) } else { None };
    let node = Node {
        seq,
        op,
        inputs: inputs.iter().map(|v| v.as_input()).collect(),
        rule: Mutex::new(Some(Box::new(rule))),
        saves,
        scope,
    };
    Var::from_node(value, Arc::new(node))
}

/// The gradient slots one node's backward writes into, one per input.
pub struct Grads<'a> {
    pub(crate) op: &'static str,
    pub(crate) inputs: &'a [Input],
    pub(crate) slots: &'a mut crate::engine::Slots,
}

impl std::fmt::Debug for Grads<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grads").field("op", &self.op).field("inputs", &self.inputs).finish()
    }
}

impl<'a> Grads<'a> {
    /// Whether input `i` needs a gradient (skip computing it otherwise).
    pub fn wants(&self, i: usize) -> bool {
        self.inputs.get(i).is_some_and(|x| x.edge.is_some())
    }

    /// The shape of input `i` (the shape its gradient must have).
    ///
    /// # Panics
    /// If the op has no input `i` (a defect of the op's backward rule, not
    /// of its caller's input: rules index the inputs they recorded).
    pub fn shape(&self, i: usize) -> &[usize] {
        &self.inputs[i].shape
    }

    /// The dtype of input `i` (the dtype its gradient gets).
    ///
    /// # Panics
    /// If the op has no input `i` (as [`Grads::shape`]).
    pub fn dtype(&self, i: usize) -> DType {
        self.inputs[i].dtype
    }

    /// Input `i`, or an error naming the op (a rule for another arity).
    fn input(&self, i: usize) -> Result<&'a Input> {
        self.inputs.get(i).ok_or_else(|| {
            AutogradError::bad(self.op, format!("backward wrote input {i} of an op with {}", self.inputs.len()))
        })
    }

    fn check(&self, input: &Input, i: usize, g: &Tensor) -> Result<()> {
        if g.shape() != input.shape.as_slice() {
            return Err(AutogradError::bad(
                self.op,
                format!(
                    "backward produced a gradient of shape {:?} for input {i} of shape {:?}",
                    g.shape(),
                    input.shape
                ),
            ));
        }
        Ok(())
    }

    /// Adds `g` to input `i`'s gradient (or makes it the gradient: no copy).
    /// `g` is converted to the input's dtype if it differs. Nothing happens
    /// if the input needs no gradient.
    pub fn accumulate(&mut self, i: usize, g: Tensor) -> Result<()> {
        let input = self.input(i)?;
        let Some(edge) = &input.edge else { return Ok(()) };
        self.check(input, i, &g)?;
        let dtype = input.dtype;
        let g = if g.dtype() == dtype { g } else { g.to_dtype(dtype)? };
        match edge {
            Edge::Param(p) => p.accumulate(g, util::add_assign),
            Edge::Node(n) => self.slots.accumulate(n, g),
        }
    }

    /// Lets `f` write input `i`'s gradient in place: into the existing
    /// gradient (add to it) or a fresh buffer (overwrite it), always
    /// contiguous with the input's shape and dtype. This is how matmul's
    /// backward accumulates a weight gradient with GEMM `beta = 1`. Nothing
    /// happens if the input needs no gradient.
    pub fn accumulate_with(&mut self, i: usize, f: impl FnOnce(GradBuffer<'_>) -> Result<()>) -> Result<()> {
        let input = self.input(i)?;
        let Some(edge) = &input.edge else { return Ok(()) };
        let (shape, dtype) = (&input.shape, input.dtype);
        match edge {
            Edge::Param(p) => p.with_grad_buffer(f),
            Edge::Node(n) => self.slots.with_buffer(n, shape, dtype, f),
        }
    }
}

/// The op names of every node reachable from `v` (each node once).
pub(crate) fn ops_in(v: &Var) -> Vec<&'static str> {
    let mut out = Vec::new();
    let Some(root) = v.node() else { return out };
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![Arc::clone(root)];
    seen.insert(Arc::as_ptr(root));
    while let Some(n) = stack.pop() {
        out.push(n.op);
        for input in &n.inputs {
            if let Some(Edge::Node(c)) = &input.edge
                && seen.insert(Arc::as_ptr(c))
            {
                stack.push(Arc::clone(c));
            }
        }
    }
    out
}
