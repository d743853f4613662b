//! The differentiable ops, one file per op or family, each a method on
//! [`Var`](crate::Var) with its backward rule beside it.
//!
//! Adding an op (`ops/<op>.rs`):
//! 1. the math as a doc comment: `y = max(x, 0)`, `dy/dx = 1[x > 0]`;
//! 2. a public method that validates its arguments (typed errors, never a
//!    panic), asks the autocast context for its inputs
//!    ([`cast_inputs`](crate::autocast::cast_inputs)`("<op>", [..])`),
//!    computes the value with tensor ops, and calls
//!    [`record`](crate::graph::record) with a rule struct holding exactly
//!    what the backward needs (the input, the output, or nothing);
//! 3. the rule: `impl Backward` whose `backward` *accumulates* each input's
//!    gradient through [`Grads`](crate::graph::Grads) (skipping inputs that
//!    do not [`want`](crate::graph::Grads::wants) one) and whose `saved`
//!    lists the tensors it holds;
//! 4. its name in [`registry::OPS`](crate::registry::OPS), a rule for it in
//!    amp's op lists, and tests: literal values derived by hand and a
//!    [`gradcheck`](crate::gradcheck) on random shapes (`tests/ops_*.rs`).

pub mod binary;
pub mod cast;
pub mod cat;
pub mod conv;
pub mod cross_entropy;
pub mod dropout;
pub(crate) mod elem;
pub mod embedding;
pub(crate) mod gemm;
pub mod linear;
pub mod lstm;
pub mod matmul;
pub mod mse_loss;
pub mod norm;
pub mod pool;
pub mod pow;
pub mod reduce;
pub mod scalar;
pub mod select;
pub mod shape;
pub mod softmax;
pub mod unary;

pub use cross_entropy::CrossEntropy;
pub use lstm::{LstmParams, lstm, lstm_embedded};
pub use norm::RunningStats;

/// How a loss combines its per-element values (PyTorch's `reduction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The mean over the elements (over the non-ignored targets for
    /// class-index losses).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// No reduction: one loss per element (per target).
    None,
}
