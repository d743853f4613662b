//! The tape: gradient flow, accumulation, the graph's lifetime, errors,
//! no_grad and detach.

use mixprec_autograd::{AutogradError, BackwardOptions, Var, no_grad};
use mixprec_tensor::{DType, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn grad(v: &Var) -> Vec<f32> {
    v.grad().expect("a gradient").to_vec_f32().unwrap()
}

#[test]
fn chain_rule_through_a_small_graph() {
    // L = Σ (x·w + b)², dL/dw = 2(xw + b)·x, dL/db = 2(xw + b)
    let x = Var::new(t(&[1.0, 2.0, 3.0], &[3]));
    let w = Var::parameter(t(&[0.5, -1.0, 2.0], &[3]));
    let b = Var::parameter(t(&[1.0], &[1]));
    let y = x.mul(&w).unwrap().add(&b).unwrap();
    let loss = y.mul(&y).unwrap().sum_all().unwrap();
    // y = [1.5, -1, 7]; L = 2.25 + 1 + 49
    assert_eq!(loss.item().unwrap(), 52.25);
    loss.backward().unwrap();
    assert_eq!(grad(&w), vec![3.0, -4.0, 42.0]);
    assert_eq!(grad(&b), vec![3.0 - 2.0 + 14.0]);
    assert!(x.grad().is_none());
}

#[test]
fn a_value_used_twice_gets_both_contributions() {
    // L = Σ x·x + Σ x  →  dL/dx = 2x + 1
    let x = Var::parameter(t(&[1.0, -2.0], &[2]));
    let loss = x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    assert_eq!(grad(&x), vec![3.0, -3.0]);
}

#[test]
fn gradients_accumulate_until_zero_grad() {
    let w = Var::parameter(t(&[2.0], &[1]));
    for _ in 0..3 {
        w.mul_scalar(5.0).unwrap().sum_all().unwrap().backward().unwrap();
    }
    assert_eq!(grad(&w), vec![15.0]);
    w.zero_grad();
    assert!(w.grad().is_none());
    w.mul_scalar(5.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grad(&w), vec![5.0]);
}

#[test]
fn handles_share_one_parameter() {
    let w = Var::parameter(t(&[1.0, 1.0], &[2]));
    let alias = w.clone();
    alias.mul_scalar(3.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grad(&w), vec![3.0, 3.0]);
    w.param().unwrap().update(|v, _| v.fill_(4.0));
    assert_eq!(alias.value().to_vec_f32().unwrap(), vec![4.0, 4.0]);
    assert_eq!(w.param().unwrap().version(), 1);
}

#[test]
fn second_backward_through_freed_saved_tensors_names_the_op() {
    let w = Var::parameter(t(&[1.0, 2.0], &[2]));
    let loss = w.exp().unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    match loss.backward() {
        Err(AutogradError::GraphFreed { op }) => assert_eq!(op, "exp"),
        other => panic!("expected GraphFreed, got {other:?}"),
    }
    let msg = AutogradError::GraphFreed { op: "exp" }.to_string();
    assert!(msg.contains("exp") && msg.contains("retain_graph"), "{msg}");
}

#[test]
fn retain_graph_allows_a_second_backward() {
    let w = Var::parameter(t(&[0.0, 1.0], &[2]));
    let loss = w.exp().unwrap().sum_all().unwrap();
    loss.backward_with(BackwardOptions { grad: None, retain_graph: true }).unwrap();
    loss.backward().unwrap();
    let e = std::f32::consts::E;
    assert_eq!(grad(&w), vec![2.0, 2.0 * e]);
}

#[test]
fn rules_without_saved_tensors_run_again() {
    // sum and mul_scalar save nothing: a second pass is as good as the first.
    let w = Var::parameter(t(&[1.0, 2.0], &[2]));
    let loss = w.mul_scalar(2.0).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    loss.backward().unwrap();
    assert_eq!(grad(&w), vec![4.0, 4.0]);
}

#[test]
fn non_scalar_root_needs_a_seed() {
    let w = Var::parameter(t(&[1.0, 2.0], &[2]));
    let y = w.mul_scalar(3.0).unwrap();
    assert_eq!(y.backward(), Err(AutogradError::NonScalarRoot { shape: vec![2] }));
    let bad = BackwardOptions { grad: Some(t(&[1.0], &[1])), retain_graph: true };
    assert_eq!(y.backward_with(bad), Err(AutogradError::SeedShape { expected: vec![2], got: vec![1] }));
    y.backward_with(BackwardOptions { grad: Some(t(&[1.0, -1.0], &[2])), retain_graph: false }).unwrap();
    assert_eq!(grad(&w), vec![3.0, -3.0]);
}

#[test]
fn constants_and_no_grad_record_nothing() {
    let c = Var::new(t(&[1.0], &[1]));
    assert_eq!(c.exp().unwrap().backward(), Err(AutogradError::NoGraph));
    let w = Var::parameter(t(&[1.0], &[1]));
    let y = no_grad(|| w.exp().unwrap());
    assert!(!y.requires_grad());
    assert_eq!(y.op(), None);
    assert!(mixprec_autograd::is_grad_enabled());
    let inner = no_grad(|| mixprec_autograd::enable_grad(|| w.exp().unwrap()));
    assert_eq!(inner.op(), Some("exp"));
}

#[test]
fn detach_cuts_the_graph() {
    let w = Var::parameter(t(&[3.0], &[1]));
    let y = w.mul_scalar(2.0).unwrap();
    let loss = y.detach().mul(&w).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    // d(6·w)/dw with 6 constant
    assert_eq!(grad(&w), vec![6.0]);
}

#[test]
fn frozen_parameters_get_no_gradient() {
    let w = Var::parameter(t(&[3.0], &[1]));
    let v = Var::parameter(t(&[2.0], &[1]));
    w.param().unwrap().set_requires_grad(false);
    w.mul(&v).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(w.grad().is_none());
    assert_eq!(grad(&v), vec![3.0]);
}

#[test]
fn backward_on_a_parameter_itself() {
    let w = Var::parameter(t(&[3.0], &[1]));
    w.backward().unwrap();
    assert_eq!(grad(&w), vec![1.0]);
}

#[test]
fn deep_chains_neither_recurse_in_backward_nor_in_drop() {
    let w = Var::parameter(t(&[1.0], &[1]));
    let mut y = w.clone();
    for _ in 0..200_000 {
        y = y.add_scalar(0.0).unwrap();
    }
    let loss = y.sum_all().unwrap();
    loss.backward().unwrap();
    assert_eq!(grad(&w), vec![1.0]);
    let mut z = w.clone();
    for _ in 0..200_000 {
        z = z.mul_scalar(1.0).unwrap();
    }
    drop(z);
}

#[test]
fn half_leaves_get_half_gradients_and_casts_cast_back() {
    let w = Var::parameter(Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap().to_dtype(DType::F16).unwrap());
    let loss = w.to_dtype(DType::F32).unwrap().mul_scalar(0.5).unwrap().sum_all().unwrap();
    assert_eq!(loss.dtype(), DType::F32);
    loss.backward().unwrap();
    let g = w.grad().unwrap();
    assert_eq!(g.dtype(), DType::F16);
    assert_eq!(g.to_vec_f32().unwrap(), vec![0.5, 0.5]);
    let p = Var::parameter(t(&[1.0], &[1]));
    let l = p.to_dtype(DType::BF16).unwrap().mul_scalar(3.0).unwrap().sum_all().unwrap();
    assert_eq!(l.dtype(), DType::BF16);
    l.backward().unwrap();
    assert_eq!(p.grad().unwrap().dtype(), DType::F32);
    assert_eq!(grad(&p), vec![3.0]);
}

#[test]
fn mixed_dtype_binary_ops_promote_and_send_gradients_home() {
    let h = Var::parameter(Tensor::from_vec(vec![2.0f32], &[1]).unwrap().to_dtype(DType::F16).unwrap());
    let f = Var::parameter(t(&[3.0], &[1]));
    let y = h.mul(&f).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(h.grad().unwrap().dtype(), DType::F16);
    assert_eq!(h.grad().unwrap().to_vec_f32().unwrap(), vec![3.0]);
    assert_eq!(grad(&f), vec![2.0]);
}

#[test]
fn vars_move_between_threads() {
    let w = Var::parameter(t(&[1.0, 2.0], &[2]));
    let w2 = w.clone();
    let loss = std::thread::spawn(move || w2.mul_scalar(2.0).unwrap().sum_all().unwrap()).join().unwrap();
    loss.backward().unwrap();
    assert_eq!(grad(&w), vec![2.0, 2.0]);
}
