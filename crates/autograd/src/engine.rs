//! `backward()`: collects the nodes reachable from the root (iteratively),
//! orders them by sequence number, newest first (the Wengert list in
//! reverse), and runs each rule once, accumulating into per-node gradient
//! slots; parameter gradients accumulate in the parameters themselves.
//!
//! Without `retain_graph` every node frees its saved tensors right after its
//! rule ran, so a pass holds at most the activations not yet visited.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mixprec_tensor::{DType, Tensor};

use crate::error::{AutogradError, Result};
use crate::graph::{Edge, Grads, Node};
use crate::param::GradBuffer;
use crate::var::Var;
use crate::{pool, scan, util};

/// Options of [`Var::backward_with`].
#[derive(Clone, Debug, Default)]
pub struct BackwardOptions {
    /// The gradient of the root (its shape; converted to its dtype). `None`:
    /// ones, allowed only for a one-element root.
    pub grad: Option<Tensor>,
    /// Keep every node's saved tensors, so a second backward can run
    /// through the same graph.
    pub retain_graph: bool,
}

/// The gradient of every visited node's output, by position in the order.
pub(crate) struct Slots {
    index: HashMap<*const Node, usize>,
    grads: Vec<Option<Tensor>>,
}

impl Slots {
    fn slot(&mut self, node: &Arc<Node>) -> &mut Option<Tensor> {
        // Every node a rule can reach is in the order `collect` built from
        // the same graph, so it has a slot.
        let i = self.index[&Arc::as_ptr(node)];
        &mut self.grads[i]
    }

    pub(crate) fn accumulate(&mut self, node: &Arc<Node>, g: Tensor) -> Result<()> {
        let slot = self.slot(node);
        match slot {
            Some(acc) => util::add_assign(acc, &g),
            None => {
                *slot = Some(g);
                Ok(())
            }
        }
    }

    pub(crate) fn with_buffer(
        &mut self,
        node: &Arc<Node>,
        shape: &[usize],
        dtype: DType,
        f: impl FnOnce(GradBuffer<'_>) -> Result<()>,
    ) -> Result<()> {
        let slot = self.slot(node);
        match slot {
            Some(acc) => {
                if !acc.is_contiguous() {
                    *acc = acc.contiguous();
                }
                f(GradBuffer::Existing(acc))
            }
            None => {
                let mut buf = pool::take(shape, dtype)?;
                f(GradBuffer::Fresh(&mut buf))?;
                *slot = Some(buf);
                Ok(())
            }
        }
    }
}

/// Runs the backward pass from `root`.
pub(crate) fn backward(root: &Var, opts: BackwardOptions) -> Result<()> {
    let value = root.value();
    let seed = match opts.grad {
        Some(g) => {
            if g.shape() != value.shape() {
                return Err(AutogradError::SeedShape { expected: value.shape().to_vec(), got: g.shape().to_vec() });
            }
            g.to_dtype(value.dtype())?
        }
        None => {
            if value.numel() != 1 {
                return Err(AutogradError::NonScalarRoot { shape: value.shape().to_vec() });
            }
            Tensor::ones(value.shape(), value.dtype())?
        }
    };
    if let Some(p) = root.param() {
        if !p.requires_grad() {
            return Err(AutogradError::NoGraph);
        }
        return p.accumulate(seed.contiguous(), util::add_assign);
    }
    let Some(root) = root.node() else { return Err(AutogradError::NoGraph) };

    let order = collect(root);
    let mut slots = Slots {
        index: order.iter().enumerate().map(|(i, n)| (Arc::as_ptr(n), i)).collect(),
        grads: (0..order.len()).map(|_| None).collect(),
    };
    // The order starts with the root.
    slots.grads[0] = Some(seed);
    let scanning = scan::enabled();
    let observing = scan::observing();
    for (i, node) in order.iter().enumerate() {
        let Some(g) = slots.grads[i].take() else {
            if !opts.retain_graph && node.saves {
                node.release();
            }
            continue;
        };
        if scanning {
            scan::check_backward(node, &g);
        }
        if observing {
            scan::observe(node, &g);
        }
        {
            let rule = node.rule();
            let Some(rule) = rule.as_ref() else { return Err(AutogradError::GraphFreed { op: node.op }) };
            let mut grads = Grads { op: node.op, inputs: &node.inputs, slots: &mut slots };
            rule.backward(&g, &mut grads)?;
        }
        pool::give(g);
        if !opts.retain_graph && node.saves {
            node.release();
        }
    }
    Ok(())
}

/// The nodes reachable from `root`, newest first (root first).
fn collect(root: &Arc<Node>) -> Vec<Arc<Node>> {
    let mut seen: HashSet<*const Node> = HashSet::new();
    let mut order = vec![Arc::clone(root)];
    seen.insert(Arc::as_ptr(root));
    let mut next = 0;
    while next < order.len() {
        let node = Arc::clone(&order[next]);
        next += 1;
        for input in &node.inputs {
            if let Some(Edge::Node(n)) = &input.edge
                && seen.insert(Arc::as_ptr(n))
            {
                order.push(Arc::clone(n));
            }
        }
    }
    order.sort_unstable_by_key(|n| std::cmp::Reverse(n.seq));
    order
}
