//! The autocast op lists as data: which dtype each differentiable op
//! computes in under mixed precision.
//!
//! They follow PyTorch 2.x's CPU autocast lists (GEMM-like ops in low
//! precision; losses in FP32; `cat`/`stack` promote) plus its CUDA FP32 list
//! (softmax, log_softmax, layer and group norm, sum, exp, log, pow), which mixprec applies
//! on the CPU as well: its kernels reduce in FP32 anyway, so the FP32 output
//! costs little and keeps the loss and its gradient out of FP16's range
//! limits. Every op in [`registry::OPS`] must appear in exactly one list (a
//! test checks it); adding an op to autograd means adding its name here.
//! The lists also name ops the autograd crate does not have yet (conv,
//! norms, LSTM), so a policy covers them the day they land.

use mixprec_autograd::autocast::{CastPolicy, CastRule};
use mixprec_autograd::registry;
use mixprec_autograd::tensor::DType;

/// Ops that run in the low-precision dtype (f16 or bf16): products whose
/// kernels accumulate in FP32 and round once (the paper's step 3).
pub const LOW_PRECISION: &[&str] = &[
    "addbmm",
    "addmm",
    "baddbmm",
    "bmm",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "gru",
    "gru_cell",
    "linear",
    "linear_relu",
    "lstm",
    "lstm_cell",
    "lstm_recurrence",
    "matmul",
    "mm",
    "rnn",
    "rnn_cell",
    "scaled_dot_product_attention",
];

/// Ops that run in FP32: losses, reductions, normalisations and functions
/// whose result leaves FP16's range or precision (exp, log, pow).
pub const FP32: &[&str] = &[
    "avg_pool3d",
    "binary_cross_entropy_with_logits",
    "cdist",
    "cosine_similarity",
    "cross_entropy",
    "cumprod",
    "cumsum",
    "dist",
    "exp",
    "group_norm",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "log",
    "log_softmax",
    "logsumexp",
    "max_pool3d",
    "mean",
    "mse_loss",
    "nll_loss",
    "norm",
    "pow",
    "pow_scalar",
    "prod",
    "rsqrt",
    "smooth_l1_loss",
    "softmax",
    "sum",
];

/// Ops that run in the widest dtype of their inputs (f16 + f32 → f32):
/// joining and mixing values without losing the wider one's precision.
pub const PROMOTE_WIDEST: &[&str] = &["add", "cat", "div", "index_copy", "mul", "select", "stack", "sub"];

/// Ops that run in their input's dtype: shape changes, elementwise
/// functions whose FP32-computed result is rounded once (exact or within
/// half an ulp of the dtype), the `cast` autocast itself inserts, and
/// `batch_norm` (no PyTorch autocast list names it: an f16 input is
/// normalised with FP32 statistics and FP32 γ, β, rounded once, and saved
/// for backward as f16, half the bytes of the convolution output it
/// usually follows).
pub const PASSTHROUGH: &[&str] = &[
    "add_scalar",
    "avg_pool2d",
    "batch_norm",
    "batch_norm_relu",
    "cast",
    "div_scalar",
    "dropout",
    "embedding",
    "gelu",
    "gelu_tanh",
    "max",
    "max_pool2d",
    "mul_scalar",
    "narrow",
    "neg",
    "permute",
    "relu",
    "reshape",
    "rsub_scalar",
    "sigmoid",
    "sqrt",
    "tanh",
    "transpose",
];

/// Which list of the four an op is in, with `low` standing for the
/// low-precision dtype; `None` if no list names it.
pub fn rule(op: &str, low: DType) -> Option<CastRule> {
    let has = |list: &[&str]| list.contains(&op);
    if has(LOW_PRECISION) {
        Some(CastRule::LowPrecision(low))
    } else if has(FP32) {
        Some(CastRule::F32)
    } else if has(PROMOTE_WIDEST) {
        Some(CastRule::PromoteWidest)
    } else if has(PASSTHROUGH) {
        Some(CastRule::Passthrough)
    } else {
        None
    }
}

/// Registered ops that no list names (empty when the lists are complete).
pub fn undeclared() -> Vec<&'static str> {
    registry::OPS.iter().copied().filter(|op| rule(op, DType::F16).is_none()).collect()
}

/// The mixed-precision policy: every listed op with its rule, low-precision
/// ops in `low` (f16 or bf16). An op no list names runs in its inputs'
/// dtype (passthrough), as in PyTorch.
pub fn mixed_policy(low: DType) -> CastPolicy {
    let mut p = CastPolicy::new(CastRule::Passthrough);
    for (list, r) in [
        (LOW_PRECISION, CastRule::LowPrecision(low)),
        (FP32, CastRule::F32),
        (PROMOTE_WIDEST, CastRule::PromoteWidest),
        (PASSTHROUGH, CastRule::Passthrough),
    ] {
        for op in list {
            p.set(op, r);
        }
    }
    p
}

/// A policy that runs every floating op in FP32 (a region forced to full
/// precision inside a mixed-precision one): f16/bf16 inputs are cast up,
/// shape ops and `cast` pass through.
pub fn fp32_policy() -> CastPolicy {
    let mut p = CastPolicy::new(CastRule::F32);
    for op in SHAPE_OPS {
        p.set(op, CastRule::Passthrough);
    }
    p
}

/// Ops that only move or relabel values (and `cast`): a forced-precision
/// region leaves their dtype alone.
const SHAPE_OPS: &[&str] = &["cast", "narrow", "permute", "reshape", "transpose"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_op_has_a_declared_rule() {
        assert!(undeclared().is_empty(), "ops without a rule in amp's op lists: {:?}", undeclared());
    }

    #[test]
    fn lists_are_sorted_and_disjoint() {
        let lists = [LOW_PRECISION, FP32, PROMOTE_WIDEST, PASSTHROUGH];
        for l in lists {
            assert!(l.windows(2).all(|w| w[0] < w[1]), "{l:?} must be sorted and free of duplicates");
        }
        for (i, a) in lists.iter().enumerate() {
            for b in &lists[i + 1..] {
                assert!(a.iter().all(|op| !b.contains(op)), "{a:?} and {b:?} share an op");
            }
        }
    }

    #[test]
    fn the_lists_put_the_paper_s_ops_where_it_says() {
        for op in ["matmul", "linear", "conv2d", "lstm"] {
            assert_eq!(rule(op, DType::BF16), Some(CastRule::LowPrecision(DType::BF16)), "{op}");
        }
        for op in [
            "softmax",
            "log_softmax",
            "cross_entropy",
            "nll_loss",
            "mse_loss",
            "layer_norm",
            "sum",
            "mean",
            "exp",
            "log",
            "pow",
            "norm",
        ] {
            assert_eq!(rule(op, DType::F16), Some(CastRule::F32), "{op}");
        }
        for op in ["add", "cat", "stack", "select"] {
            assert_eq!(rule(op, DType::F16), Some(CastRule::PromoteWidest), "{op}");
        }
        assert_eq!(rule("batch_norm", DType::F16), Some(CastRule::Passthrough));
        assert_eq!(rule("no_such_op", DType::F16), None);
    }

    #[test]
    fn the_fp32_policy_casts_every_op_up_but_shape_ops() {
        let p = fp32_policy();
        for op in registry::OPS {
            let want = if SHAPE_OPS.contains(op) { None } else { Some(DType::F32) };
            assert_eq!(p.compute_dtype(op, &[DType::F16]), want, "{op}");
        }
    }
}
