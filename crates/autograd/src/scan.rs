//! Name scopes and the non-finite scan.
//!
//! Name scopes: a per-thread stack of module names that `nn` modules push in
//! `forward` (`"mlp"`, then `"fc2"`), read as `"mlp.fc2"`.
//!
//! The scan: while a [`ScanGuard`] is alive, every op checks its output for
//! Inf/NaN and the thread records the first one that had any (sequence
//! number, op, name scope); backward likewise records the first node whose
//! output gradient was non-finite. That names "the first op on the tape
//! whose output went non-finite" in a real model. Off by default: it costs
//! one pass over every output.
//!
//! The gradient observer ([`observe_grads`]): a callback that backward calls
//! with every node's output gradient (what underflow telemetry counts).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::Arc;

use mixprec_tensor::Tensor;

use crate::graph::Node;
use crate::util;

thread_local! {
    static SCOPES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static SCAN_DEPTH: Cell<usize> = const { Cell::new(0) };
    static FIRST: RefCell<[Option<NonFinite>; 2]> = const { RefCell::new([None, None]) };
    static OBSERVER: RefCell<Option<Box<GradObserver>>> = const { RefCell::new(None) };
}

/// What [`observe_grads`] learns about each gradient besides its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GradSite {
    /// The op whose output the gradient belongs to.
    pub op: &'static str,
    /// Whether one of the op's inputs is a parameter (a `cast` of a
    /// parameter: the gradient is that parameter's, in the cast's dtype).
    pub param_input: bool,
}

/// The callback of [`observe_grads`].
pub type GradObserver = dyn FnMut(GradSite, &Tensor);

/// Runs `f` with `observer` called, on this thread, with the output
/// gradient of every node that backward reaches (before the node's rule
/// runs), then removes it. Observers do not nest: an inner one replaces
/// the outer one for its extent. The observer must not run backward.
pub fn observe_grads<R>(observer: impl FnMut(GradSite, &Tensor) + 'static, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Box<GradObserver>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let old = self.0.take();
            let mine = OBSERVER.with(|o| std::mem::replace(&mut *o.borrow_mut(), old));
            drop(mine);
        }
    }
    let old = OBSERVER.with(|o| o.borrow_mut().replace(Box::new(observer)));
    let _restore = Restore(old);
    f()
}

/// Whether a gradient observer is installed on this thread.
pub(crate) fn observing() -> bool {
    OBSERVER.with(|o| o.borrow().is_some())
}

/// Calls the observer, if any, with a node's output gradient.
pub(crate) fn observe(node: &Node, g: &Tensor) {
    let site = GradSite {
        op: node.op,
        param_input: node.inputs.iter().any(|i| matches!(i.edge, Some(crate::graph::Edge::Param(_)))),
    };
    // Taken out while it runs, so the stack is not borrowed during the call.
    let obs = OBSERVER.with(|o| o.borrow_mut().take());
    if let Some(mut obs) = obs {
        obs(site, g);
        OBSERVER.with(|o| {
            let mut o = o.borrow_mut();
            if o.is_none() {
                *o = Some(obs);
            }
        });
    }
}

/// Which pass produced a non-finite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// An op's output.
    Forward,
    /// The gradient of a node's output, during backward.
    Backward,
}

/// The first op whose output (or output gradient) held Inf or NaN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonFinite {
    /// Forward output or backward gradient.
    pub phase: Phase,
    /// The node's sequence number (creation order, process-wide).
    pub seq: u64,
    /// The op's name (as in [`crate::registry::OPS`]).
    pub op: &'static str,
    /// The name scope the op ran in (`"mlp.fc2"`; empty at top level).
    pub scope: String,
}

/// Pushes a name on this thread's scope stack until dropped.
#[derive(Debug)]
pub struct NameScope {
    depth: usize,
    _not_send: PhantomData<*const ()>,
}

/// Enters the name scope `name` (a module's name) until the guard drops.
pub fn name_scope(name: impl Into<String>) -> NameScope {
    let depth = SCOPES.with(|s| {
        let mut s = s.borrow_mut();
        s.push(name.into());
        s.len() - 1
    });
    NameScope { depth, _not_send: PhantomData }
}

impl Drop for NameScope {
    fn drop(&mut self) {
        SCOPES.with(|s| s.borrow_mut().truncate(self.depth));
    }
}

/// Runs `f` inside the name scope `name`.
pub fn with_name_scope<R>(name: impl Into<String>, f: impl FnOnce() -> R) -> R {
    let _g = name_scope(name);
    f()
}

/// The current scope, its names joined by `.` (empty at top level).
pub fn current_scope() -> String {
    SCOPES.with(|s| s.borrow().join("."))
}

/// Keeps the non-finite scan on for this thread until dropped (guards nest).
#[derive(Debug)]
pub struct ScanGuard {
    _not_send: PhantomData<*const ()>,
}

/// Turns the non-finite scan on for this thread until the guard drops.
pub fn scan_nonfinite() -> ScanGuard {
    SCAN_DEPTH.with(|d| d.set(d.get() + 1));
    ScanGuard { _not_send: PhantomData }
}

impl Drop for ScanGuard {
    fn drop(&mut self) {
        SCAN_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Whether the scan is on for this thread.
pub fn enabled() -> bool {
    SCAN_DEPTH.with(|d| d.get() > 0)
}

/// The first op since the last [`clear_nonfinite`] whose output held Inf or NaN.
pub fn first_nonfinite() -> Option<NonFinite> {
    FIRST.with(|f| f.borrow()[0].clone())
}

/// The first node since the last [`clear_nonfinite`] whose output gradient
/// held Inf or NaN during backward (newest node first, as backward runs).
pub fn first_nonfinite_grad() -> Option<NonFinite> {
    FIRST.with(|f| f.borrow()[1].clone())
}

/// Forgets the recorded first non-finite op and gradient (call once per step).
pub fn clear_nonfinite() {
    FIRST.with(|f| *f.borrow_mut() = [None, None]);
}

fn note(phase: Phase, seq: u64, op: &'static str, scope: impl FnOnce() -> String) {
    FIRST.with(|f| {
        let mut f = f.borrow_mut();
        let slot = &mut f[phase as usize];
        if slot.is_none() {
            *slot = Some(NonFinite { phase, seq, op, scope: scope() });
        }
    });
}

/// Checks an op's output; returns the scope to keep in its node.
pub(crate) fn check_forward(seq: u64, op: &'static str, value: &Tensor) -> Option<Arc<str>> {
    let scope = current_scope();
    if !util::all_finite(value) {
        note(Phase::Forward, seq, op, || scope.clone());
    }
    Some(Arc::from(scope))
}

/// Checks the gradient arriving at a node in backward.
pub(crate) fn check_backward(node: &Node, g: &Tensor) {
    if !util::all_finite(g) {
        note(Phase::Backward, node.seq, node.op, || node.scope.as_deref().unwrap_or("").to_string());
    }
}
