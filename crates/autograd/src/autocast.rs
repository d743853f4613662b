//! The autocast mechanism: a per-thread stack of scoped precision contexts
//! that every op consults for its compute dtype.
//!
//! Without a context (the default) ops run in their inputs' dtype (binary
//! ops promote as the tensor crate does: f16 + f32 → f32, f16 + bf16 → f32).
//! Inside [`autocast`] (or while an [`AutocastGuard`] lives) an op asks
//! [`compute_dtype`] with its name and input dtypes, and the context's
//! [`CastPolicy`] answers with a per-op [`CastRule`]; the op then casts its
//! floating inputs through the differentiable `cast` op, so gradients flow
//! back in each input's own dtype. f64 inputs are never cast.
//!
//! The policy is data supplied from outside (`mixprec-amp` fills it from its
//! op lists); [`crate::registry::OPS`] lists every op that consults it, so a
//! policy can be checked for completeness.
//!
//! Each context keeps a cast cache: a parameter is converted once per
//! context (keyed by the parameter's identity, the target dtype and its
//! version, which the optimizer bumps on every update), not once per use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use mixprec_tensor::DType;

use crate::error::Result;
use crate::mode;
use crate::var::Var;

/// How an op's inputs are cast under autocast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CastRule {
    /// Cast floating inputs to this low-precision dtype (f16 or bf16): GEMM-
    /// like ops that accumulate in FP32 internally.
    LowPrecision(DType),
    /// Cast floating inputs to f32: losses, reductions, exp/log.
    F32,
    /// Cast floating inputs to the widest of their dtypes: cat, stack.
    PromoteWidest,
    /// Leave the inputs as they are.
    Passthrough,
}

/// A rule per op name, and the rule for ops it does not name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CastPolicy {
    rules: HashMap<String, CastRule>,
    default: CastRule,
}

impl Default for CastPolicy {
    fn default() -> CastPolicy {
        CastPolicy::new(CastRule::Passthrough)
    }
}

impl CastPolicy {
    /// A policy with no per-op rule, answering `default` for every op.
    pub fn new(default: CastRule) -> CastPolicy {
        CastPolicy { rules: HashMap::new(), default }
    }

    /// Sets the rule of `op` (builder form).
    pub fn with(mut self, op: &str, rule: CastRule) -> CastPolicy {
        self.set(op, rule);
        self
    }

    /// Sets the rule of `op`.
    pub fn set(&mut self, op: &str, rule: CastRule) {
        self.rules.insert(op.to_string(), rule);
    }

    /// The rule of `op` (the default if it has none).
    pub fn rule(&self, op: &str) -> CastRule {
        self.declared(op).unwrap_or(self.default)
    }

    /// The rule set for `op`, if one was.
    pub fn declared(&self, op: &str) -> Option<CastRule> {
        self.rules.get(op).copied()
    }

    /// The rule for ops without one.
    pub fn default_rule(&self) -> CastRule {
        self.default
    }

    /// The dtype `op` computes in under this policy for inputs of these
    /// dtypes (`None`: as they are). f64 inputs opt out of autocast.
    pub fn compute_dtype(&self, op: &str, inputs: &[DType]) -> Option<DType> {
        if inputs.is_empty() || inputs.contains(&DType::F64) {
            return None;
        }
        match self.rule(op) {
            CastRule::LowPrecision(d) => Some(d),
            CastRule::F32 => Some(DType::F32),
            CastRule::PromoteWidest => {
                let widest = inputs.iter().skip(1).fold(inputs[0], |a, &b| a.promote(b));
                Some(widest)
            }
            CastRule::Passthrough => None,
        }
    }
}

struct Frame {
    policy: Option<Arc<CastPolicy>>,
    /// (parameter id, dtype) → (version, the cast).
    cache: HashMap<(u64, DType), (u64, Var)>,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Keeps an autocast context (or a region with autocast off) active on this
/// thread until dropped; contexts nest, the innermost wins. Dropping it
/// also drops its cast cache.
#[derive(Debug)]
pub struct AutocastGuard {
    depth: usize,
    _not_send: PhantomData<*const ()>,
}

impl AutocastGuard {
    /// Enters a context with `policy` (`None`: autocast off inside).
    pub fn new(policy: Option<Arc<CastPolicy>>) -> AutocastGuard {
        let depth = STACK.with(|s| {
            let mut s = s.borrow_mut();
            s.push(Frame { policy, cache: HashMap::new() });
            s.len() - 1
        });
        AutocastGuard { depth, _not_send: PhantomData }
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // Take the frames out before dropping them: the cached Vars may drop
        // graph nodes, which must not run while the stack is borrowed.
        let frames: Vec<Frame> = STACK.with(|s| {
            let mut s = s.borrow_mut();
            let keep = self.depth.min(s.len());
            s.drain(keep..).collect()
        });
        drop(frames);
    }
}

/// Runs `f` with autocast under `policy`.
pub fn autocast<R>(policy: Arc<CastPolicy>, f: impl FnOnce() -> R) -> R {
    let _g = AutocastGuard::new(Some(policy));
    f()
}

/// Runs `f` with autocast off (inside an autocast region).
pub fn autocast_disabled<R>(f: impl FnOnce() -> R) -> R {
    let _g = AutocastGuard::new(None);
    f()
}

/// The policy of the innermost active context, if autocast is on.
pub fn current_policy() -> Option<Arc<CastPolicy>> {
    STACK.with(|s| s.borrow().last().and_then(|f| f.policy.clone()))
}

/// The dtype `op` computes in now, for inputs of these dtypes (`None`: as
/// they are).
pub fn compute_dtype(op: &str, inputs: &[DType]) -> Option<DType> {
    STACK.with(|s| s.borrow().last().and_then(|f| f.policy.as_ref().and_then(|p| p.compute_dtype(op, inputs))))
}

/// The inputs of `op` as it should compute with them: the same values, or
/// casts (recorded, differentiable) when the active policy says so.
/// Parameters are cast once per context and version (the cast cache).
pub fn cast_inputs<const N: usize>(op: &'static str, inputs: [&Var; N]) -> Result<[Var; N]> {
    let dtypes: [DType; N] = std::array::from_fn(|i| inputs[i].dtype());
    let target = compute_dtype(op, &dtypes);
    let mut out: [Option<Var>; N] = std::array::from_fn(|_| None);
    for (o, x) in out.iter_mut().zip(inputs) {
        *o = Some(cast_one(x, target)?);
    }
    Ok(out.map(|v| v.unwrap_or_else(|| unreachable!("every input was filled"))))
}

/// [`cast_inputs`] for ops with any number of inputs (cat, stack).
pub fn cast_inputs_vec(op: &'static str, inputs: &[Var]) -> Result<Vec<Var>> {
    let dtypes: Vec<DType> = inputs.iter().map(Var::dtype).collect();
    let target = compute_dtype(op, &dtypes);
    inputs.iter().map(|x| cast_one(x, target)).collect()
}

fn cast_one(x: &Var, target: Option<DType>) -> Result<Var> {
    let Some(target) = target else { return Ok(x.clone()) };
    if x.dtype() == target || x.dtype() == DType::F64 {
        return Ok(x.clone());
    }
    let Some(p) = x.param() else { return x.to_dtype(target) };
    // Casts made with recording off are constants: cache them apart.
    let key = (p.id(), target);
    let grad_mode = mode::is_grad_enabled();
    let version = p.version();
    let hit = STACK.with(|s| {
        s.borrow().last().and_then(|f| f.cache.get(&key)).and_then(|(v, cached)| {
            (*v == version && cached.requires_grad() == (grad_mode && p.requires_grad())).then(|| cached.clone())
        })
    });
    if let Some(v) = hit {
        return Ok(v);
    }
    let cast = x.to_dtype(target)?;
    let stale = STACK.with(|s| {
        s.borrow_mut().last_mut().and_then(|f| f.cache.insert(key, (version, cast.clone())).map(|(_, old)| old))
    });
    drop(stale);
    Ok(cast)
}
