//! The autocast mechanism: policies, the casts ops insert, the cast cache,
//! nesting; the non-finite scan and name scopes.

use std::sync::Arc;

use mixprec_autograd::autocast::{self, AutocastGuard, CastPolicy, CastRule, autocast, autocast_disabled};
use mixprec_autograd::scan::{self, Phase};
use mixprec_autograd::{Var, registry};
use mixprec_tensor::{DType, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn o1(low: DType) -> Arc<CastPolicy> {
    Arc::new(
        CastPolicy::new(CastRule::Passthrough)
            .with("matmul", CastRule::LowPrecision(low))
            .with("linear", CastRule::LowPrecision(low))
            .with("exp", CastRule::F32)
            .with("cross_entropy", CastRule::F32)
            .with("cat", CastRule::PromoteWidest),
    )
}

#[test]
fn without_a_context_ops_run_in_their_inputs_dtype() {
    assert_eq!(autocast::compute_dtype("matmul", &[DType::F32, DType::F32]), None);
    let a = Var::new(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    assert_eq!(a.matmul(&a).unwrap().dtype(), DType::F32);
}

#[test]
fn policy_rules_give_compute_dtypes() {
    let p = o1(DType::F16);
    assert_eq!(p.compute_dtype("matmul", &[DType::F32, DType::F32]), Some(DType::F16));
    assert_eq!(p.compute_dtype("exp", &[DType::F16]), Some(DType::F32));
    assert_eq!(p.compute_dtype("cat", &[DType::F16, DType::BF16]), Some(DType::F32));
    assert_eq!(p.compute_dtype("cat", &[DType::F16, DType::F16]), Some(DType::F16));
    assert_eq!(p.compute_dtype("relu", &[DType::F16]), None);
    // f64 opts out.
    assert_eq!(p.compute_dtype("matmul", &[DType::F64, DType::F64]), None);
    assert_eq!(p.declared("relu"), None);
    assert_eq!(p.rule("relu"), CastRule::Passthrough);
}

#[test]
fn ops_cast_their_inputs_and_gradients_flow_back_in_the_leaf_dtype() {
    let x = Var::new(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let w = Var::parameter(t(&[0.5, 0.25, -1.0, 2.0], &[2, 2]));
    let loss = autocast(o1(DType::BF16), || {
        let y = x.matmul(&w).unwrap();
        assert_eq!(y.dtype(), DType::BF16);
        // exp is an F32 op: its bf16 input is cast up.
        let e = y.mul_scalar(0.1).unwrap().exp().unwrap();
        assert_eq!(e.dtype(), DType::F32);
        e.sum_all().unwrap()
    });
    loss.backward().unwrap();
    let g = w.grad().unwrap();
    assert_eq!(g.dtype(), DType::F32);
    // Reference in f32 without autocast; bf16 rounding bounds the difference.
    let w2 = Var::parameter(w.value());
    x.matmul(&w2).unwrap().mul_scalar(0.1).unwrap().exp().unwrap().sum_all().unwrap().backward().unwrap();
    for (a, b) in g.to_vec_f32().unwrap().iter().zip(w2.grad().unwrap().to_vec_f32().unwrap()) {
        assert!((a - b).abs() <= 0.02 * b.abs() + 1e-3, "{a} vs {b}");
    }
}

#[test]
fn a_parameter_is_cast_once_per_context_and_version() {
    let w = Var::parameter(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let x = Var::new(t(&[1.0, 0.0, 0.0, 1.0], &[2, 2]));
    let _g = AutocastGuard::new(Some(o1(DType::F16)));
    let ids = |y: &Var| mixprec_autograd::tensor::Tensor::storage_id(&y.value());
    // The cast of w is the first input of each matmul node; compare the values it produced.
    let c1 = autocast::cast_inputs("matmul", [&w]).unwrap();
    let c2 = autocast::cast_inputs("matmul", [&w]).unwrap();
    assert_eq!(c1[0].dtype(), DType::F16);
    assert_eq!(ids(&c1[0]), ids(&c2[0]), "the second use must hit the cache");
    // Two forward passes and one backward: the gradient counts both uses.
    let l1 = x.matmul(&w).unwrap().to_dtype(DType::F32).unwrap().sum_all().unwrap();
    let l2 = x.matmul(&w).unwrap().to_dtype(DType::F32).unwrap().sum_all().unwrap();
    l1.add(&l2).unwrap().backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec_f32().unwrap(), vec![2.0, 2.0, 2.0, 2.0]);
    // An optimizer write bumps the version: the next use casts again.
    w.param().unwrap().update(|v, _| v.fill_(7.0));
    let c3 = autocast::cast_inputs("matmul", [&w]).unwrap();
    assert_ne!(ids(&c1[0]), ids(&c3[0]));
    assert_eq!(c3[0].value().to_vec_f32().unwrap(), vec![7.0; 4]);
}

#[test]
fn contexts_nest_and_end_with_their_guard() {
    let p = o1(DType::F16);
    autocast(p.clone(), || {
        assert_eq!(autocast::compute_dtype("matmul", &[DType::F32]), Some(DType::F16));
        autocast_disabled(|| assert_eq!(autocast::compute_dtype("matmul", &[DType::F32]), None));
        autocast(o1(DType::BF16), || assert_eq!(autocast::compute_dtype("matmul", &[DType::F32]), Some(DType::BF16)));
        assert_eq!(autocast::compute_dtype("matmul", &[DType::F32]), Some(DType::F16));
    });
    assert!(autocast::current_policy().is_none());
}

#[test]
fn the_registry_lets_a_policy_check_it_covers_every_op() {
    let partial = o1(DType::F16);
    let missing: Vec<&str> = registry::OPS.iter().copied().filter(|op| partial.declared(op).is_none()).collect();
    assert!(missing.contains(&"relu") && !missing.contains(&"matmul"));
    let mut full = CastPolicy::default();
    for op in registry::OPS {
        full.set(op, CastRule::Passthrough);
    }
    assert!(registry::OPS.iter().all(|op| full.declared(op).is_some()));
}

#[test]
fn the_scan_names_the_first_non_finite_op_and_its_scope() {
    scan::clear_nonfinite();
    let x = Var::parameter(t(&[1.0, 100.0], &[2]));
    {
        let _s = scan::scan_nonfinite();
        let _outer = scan::name_scope("mlp");
        let h = {
            let _fc = scan::name_scope("fc1");
            x.mul_scalar(1.0).unwrap()
        };
        let y = {
            let _fc = scan::name_scope("fc2");
            // e^100 overflows f32: this exp is the first non-finite op.
            h.exp().unwrap()
        };
        let z = y.mul_scalar(0.0).unwrap(); // Inf·0 = NaN: later, not first.
        z.sum_all().unwrap().backward().unwrap();
    }
    let first = scan::first_nonfinite().expect("a non-finite output was seen");
    assert_eq!((first.phase, first.op, first.scope.as_str()), (Phase::Forward, "exp", "mlp.fc2"));
    let g = scan::first_nonfinite_grad().expect("a non-finite gradient was seen");
    // exp's output gradient is 0 (finite); the gradient it sends to its
    // input is 0·e^100 = NaN, which arrives at fc1's op.
    assert_eq!((g.phase, g.op, g.scope.as_str()), (Phase::Backward, "mul_scalar", "mlp.fc1"));
    scan::clear_nonfinite();
    assert!(scan::first_nonfinite().is_none());
    // Off: nothing is recorded.
    x.mul_scalar(1e30).unwrap().mul_scalar(1e30).unwrap();
    assert!(scan::first_nonfinite().is_none());
    assert_eq!(scan::current_scope(), "");
}
