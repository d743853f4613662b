//! Nothing a caller passes can panic: random shapes, axes, lengths,
//! strides (through views), ranges and indices go into every entry point;
//! each call must return (Ok or a typed Err) without panicking, and the
//! cases that are wrong must be Err with the right variant.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{SplitMix, random_tensor};
use mixprec_kernels::ew::{BinaryOp, UnaryOp};
use mixprec_kernels::reduce::ReduceOp;
use mixprec_tensor::{DType, Tensor, TensorError};
use proptest::prelude::*;

fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!("{what} panicked"),
    }
}

fn dims() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1 => Just(0usize), 6 => 1usize..5, 1 => Just(usize::MAX / 3)], 0..5)
}

fn small_dims() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..5, 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn constructors_check_lengths_and_sizes(shape in dims(), len in 0usize..80, v in -1e3f64..1e3) {
        let r = no_panic("from_vec", || Tensor::from_vec(vec![1.0f32; len], &shape));
        let numel = if shape.contains(&0) { Some(0) } else { shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) };
        match numel {
            Some(n) if n == len => prop_assert!(r.is_ok()),
            Some(n) if n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize) => {
                let is_len_err = matches!(r, Err(TensorError::DataLength { .. }));
                prop_assert!(is_len_err)
            }
            _ => prop_assert!(r.is_err()),
        }
        let big = shape.iter().any(|&d| d > 1 << 20);
        if big {
            prop_assert!(no_panic("zeros", || Tensor::zeros(&shape, DType::F16)).is_err() || shape.contains(&0));
            prop_assert!(no_panic("full", || Tensor::full(&shape, v, DType::F32)).is_err() || shape.contains(&0));
        }
        let _ = no_panic("arange", || Tensor::arange(v, v * 0.5, v.signum() * (len as f64 - 3.0), DType::BF16));
    }

    #[test]
    fn views_reject_bad_axes_ranges_and_shapes(
        shape in small_dims(), target in dims(), a in -7isize..7, b in -7isize..7,
        start in 0usize..8, len in 0usize..8, perm in prop::collection::vec(0usize..6, 0..5), seed in any::<u64>()
    ) {
        let mut rng = SplitMix(seed);
        let t = random_tensor(&mut rng, &shape, DType::F32, 1.0);
        let rank = shape.len() as isize;
        let in_range = |x: isize, r: isize| (-r..r).contains(&x);
        let r = no_panic("transpose", || t.transpose(a, b));
        prop_assert_eq!(r.is_ok(), in_range(a, rank) && in_range(b, rank));
        let r = no_panic("narrow", || t.narrow(a, start, len));
        if !in_range(a, rank) {
            let bad_axis = matches!(r, Err(TensorError::BadAxis { .. }));
            prop_assert!(bad_axis);
        } else {
            let size = shape[a.rem_euclid(rank) as usize];
            prop_assert_eq!(r.is_ok(), start + len <= size);
        }
        let r = no_panic("reshape", || t.reshape(&target));
        // A shape with a zero-sized axis holds nothing, whatever its other axes.
        let tn = mixprec_tensor::layout::checked_numel(&target);
        if tn != Some(t.numel()) {
            prop_assert!(r.is_err());
        }
        let _ = no_panic("flatten", || t.flatten(a, b));
        let r = no_panic("permute", || t.permute(&perm));
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        prop_assert_eq!(r.is_ok(), sorted == (0..shape.len()).collect::<Vec<_>>());
        let _ = no_panic("broadcast_to", || t.broadcast_to(&target));
        let _ = no_panic("squeeze", || t.squeeze(a));
        let r = no_panic("unsqueeze", || t.unsqueeze(a));
        prop_assert_eq!(r.is_ok(), in_range(a, rank + 1));
        let _ = no_panic("index_axis", || t.index_axis(a, start));
        let _ = no_panic("size", || t.size(a));
        let _ = no_panic("get", || t.get(&perm));
        let _ = no_panic("display", || t.to_string());
    }

    #[test]
    fn ops_reject_mismatched_shapes_and_axes(
        sa in small_dims(), sb in small_dims(), axis in -6isize..6, keepdim in any::<bool>(),
        idx in prop::collection::vec(0usize..6, 0..4), seed in any::<u64>()
    ) {
        let mut rng = SplitMix(seed);
        let a = random_tensor(&mut rng, &sa, DType::F16, 3.0);
        let b = random_tensor(&mut rng, &sb, DType::F32, 3.0);
        let bcast = mixprec_tensor::layout::broadcast_shapes("t", &sa, &sb).is_ok();
        for op in [BinaryOp::Add, BinaryOp::Div, BinaryOp::Ge] {
            let r = no_panic("binary", || a.binary(op, &b));
            prop_assert_eq!(r.is_ok(), bcast);
            if !bcast {
                let is_mismatch = matches!(r, Err(TensorError::ShapeMismatch { .. }));
                prop_assert!(is_mismatch);
            }
        }
        let mut c = a.clone();
        let _ = no_panic("add_", || c.add_(&b));
        let _ = no_panic("select", || Tensor::select(&a, &b, &a));
        let _ = no_panic("matmul", || a.matmul(&b));
        let _ = no_panic("cat", || Tensor::cat(&[&a, &b], axis));
        let _ = no_panic("stack", || Tensor::stack(&[&a, &b], axis));
        let _ = no_panic("index_select", || a.index_select(axis, &idx));
        let _ = no_panic("sum_to", || a.sum_to(&sb));
        let rank = sa.len() as isize;
        for op in ReduceOp::ALL {
            let r = no_panic("reduce", || a.reduce(op, axis, keepdim));
            if !(-rank..rank).contains(&axis) {
                let bad_axis = matches!(r, Err(TensorError::BadAxis { .. }));
                prop_assert!(bad_axis);
            }
        }
        let _ = no_panic("reduce_axes", || a.reduce_axes(ReduceOp::Sum, &[axis, axis], keepdim));
        let _ = no_panic("reduce_all", || a.reduce_all(ReduceOp::Max));
        let _ = no_panic("argmax", || a.argmax(axis, keepdim));
        let _ = no_panic("softmax", || a.softmax(axis));
        let _ = no_panic("log_softmax", || b.log_softmax(axis));
        let _ = no_panic("softmax_backward", || {
            Tensor::softmax_backward(mixprec_kernels::reduce::SoftmaxOp::Softmax, &a, &b, axis)
        });
        let _ = no_panic("unary_grad", || Tensor::unary_grad(mixprec_kernels::ew::GradOp::Tanh, &a, &b));
        let _ = no_panic("unary", || a.unary(UnaryOp::Log));
        let _ = no_panic("item", || a.item());
        let _ = no_panic("to_vec", || a.to_vec::<f32>());
    }
}

#[test]
fn errors_name_the_op_and_the_shapes() {
    let a = Tensor::zeros(&[2, 3], DType::F32).unwrap();
    let b = Tensor::zeros(&[4], DType::F32).unwrap();
    let e = a.add(&b).unwrap_err();
    assert_eq!(e, TensorError::ShapeMismatch { op: "add", lhs: vec![2, 3], rhs: vec![4] });
    assert_eq!(e.to_string(), "add: shapes [2, 3] and [4] do not match");
    let e = a.matmul(&a).unwrap_err();
    assert!(matches!(e, TensorError::ShapeMismatch { op: "matmul", .. }), "{e}");
    let e = a.sum(2, false).unwrap_err();
    assert_eq!(e.to_string(), "sum: axis 2 is out of range for a tensor of rank 2");
    let e = Tensor::zeros(&[2, 0], DType::F32).unwrap().max(1, false).unwrap_err();
    assert!(matches!(e, TensorError::EmptyReduction { op: "max", axis: 1, .. }), "{e}");
    let e = a.t().unwrap().reshape(&[6]).unwrap_err();
    assert!(e.to_string().contains("contiguous()"), "{e}");
    let e = Tensor::cat(&[], 0).unwrap_err();
    assert!(matches!(e, TensorError::BadArgument { op: "cat", .. }));
    let e = a.index_select(1, &[0, 3]).unwrap_err();
    assert!(matches!(e, TensorError::BadRange { op: "index_select", start: 3, size: 3, .. }), "{e}");
}
