//! Every differentiable op's name, as it is recorded on the tape and looked
//! up in an autocast [`CastPolicy`](crate::autocast::CastPolicy).
//!
//! A policy that means to cover every op checks itself against [`OPS`]
//! (amp's op lists have a test that fails when an op has no rule). Adding
//! an op means adding its name here; [`crate::graph::record`] checks it in
//! debug builds, and the gradcheck harness checks it for every node it
//! meets in every build.

/// Every op name, sorted.
pub const OPS: &[&str] = &[
    "add",
    "add_scalar",
    "avg_pool2d",
    "batch_norm",
    "batch_norm_relu",
    "cast",
    "cat",
    "conv2d",
    "cross_entropy",
    "div",
    "div_scalar",
    "dropout",
    "embedding",
    "exp",
    "gelu",
    "gelu_tanh",
    "layer_norm",
    "linear",
    "linear_relu",
    "log",
    "log_softmax",
    "lstm",
    "lstm_cell",
    "lstm_recurrence",
    "matmul",
    "max",
    "max_pool2d",
    "mean",
    "mse_loss",
    "mul",
    "mul_scalar",
    "narrow",
    "neg",
    "nll_loss",
    "permute",
    "pow",
    "pow_scalar",
    "relu",
    "reshape",
    "rsub_scalar",
    "select",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "tanh",
    "transpose",
];

/// Whether `op` is listed in [`OPS`].
pub fn is_registered(op: &str) -> bool {
    OPS.binary_search(&op).is_ok()
}

#[cfg(test)]
mod tests {
    use super::OPS;

    #[test]
    fn sorted_and_unique() {
        assert!(OPS.windows(2).all(|w| w[0] < w[1]), "registry::OPS must stay sorted and free of duplicates");
    }
}
