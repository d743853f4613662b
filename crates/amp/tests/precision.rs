//! Precision modes: parsing, their dtypes, and the scopes that install the
//! op lists into autograd's autocast mechanism (nesting, forced regions,
//! the per-scope parameter cast cache).

use mixprec_amp::{Precision, autocast, autocast_guard};
use mixprec_autograd::Var;
use mixprec_autograd::tensor::{DType, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn tokens_round_trip_and_unknown_ones_are_typed_errors() {
    for p in Precision::ALL {
        assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        assert_eq!(p.to_string(), p.name());
    }
    assert_eq!("O2".parse::<Precision>().unwrap(), Precision::MasterWeights);
    assert_eq!("o3".parse::<Precision>().unwrap(), Precision::PureF16);
    let e = "fp8".parse::<Precision>().unwrap_err();
    assert!(e.to_string().contains("\"fp8\""), "{e}");
}

#[test]
fn modes_name_their_dtypes() {
    use Precision::*;
    let table = [
        (F32, "O0", None, DType::F32, false, false),
        (Autocast, "O1", Some(DType::F16), DType::F32, false, true),
        (MasterWeights, "O2", Some(DType::F16), DType::F16, true, true),
        (PureF16, "O3", Some(DType::F16), DType::F16, false, false),
        (AutocastBf16, "O1", Some(DType::BF16), DType::F32, false, false),
        (MasterWeightsBf16, "O2", Some(DType::BF16), DType::BF16, true, false),
    ];
    for (p, level, low, param, masters, scaling) in table {
        assert_eq!((p.opt_level(), p.low_dtype(), p.param_dtype()), (level, low, param), "{p}");
        assert_eq!((p.has_master_weights(), p.default_loss_scaling()), (masters, scaling), "{p}");
    }
}

#[test]
fn autocast_runs_gemms_low_and_losses_in_fp32() {
    let x = Var::new(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let w = Var::parameter(t(&[0.5, 0.25, -1.0, 2.0], &[2, 2]));
    for (p, low) in [(Precision::Autocast, DType::F16), (Precision::AutocastBf16, DType::BF16)] {
        autocast(p, || {
            let y = x.matmul(&w).unwrap();
            assert_eq!(y.dtype(), low);
            assert_eq!(y.relu().unwrap().dtype(), low, "relu passes through");
            assert_eq!(y.log_softmax(-1).unwrap().dtype(), DType::F32);
            assert_eq!(y.sum_all().unwrap().dtype(), DType::F32);
            assert_eq!(y.add(&x).unwrap().dtype(), DType::F32, "add promotes to the widest input");
        });
    }
    // O0: nothing is cast.
    autocast(Precision::F32, || assert_eq!(x.matmul(&w).unwrap().dtype(), DType::F32));
}

#[test]
fn a_region_forced_to_fp32_inside_a_mixed_one() {
    let x = Var::new(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let w1 = Var::parameter(t(&[0.5, 0.25, -1.0, 2.0], &[2, 2]));
    let w2 = Var::parameter(t(&[1.0, -1.0, 0.5, 0.5], &[2, 2]));
    let _outer = autocast_guard(Precision::Autocast);
    let h = x.matmul(&w1).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    let y = autocast(Precision::F32, || h.matmul(&w2).unwrap().relu().unwrap());
    assert_eq!(y.dtype(), DType::F32, "the forced layer casts its f16 input up");
    // Back in the outer scope.
    assert_eq!(y.matmul(&w2).unwrap().dtype(), DType::F16);
    let loss = y.sum_all().unwrap();
    loss.backward().unwrap();
    assert_eq!(w2.grad().unwrap().dtype(), DType::F32);
    assert_eq!(w1.grad().unwrap().dtype(), DType::F32);
}

#[test]
fn a_scope_casts_each_parameter_once_until_it_is_updated() {
    let w = Var::parameter(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let x = Var::new(t(&[1.0, 0.0, 0.0, 1.0], &[2, 2]));
    let casts_of_w = |y: &Var| y.with_value(|v| v.storage_id());
    let _g = autocast_guard(Precision::Autocast);
    let first = mixprec_autograd::autocast::cast_inputs("matmul", [&w]).unwrap();
    let again = mixprec_autograd::autocast::cast_inputs("linear", [&w]).unwrap();
    assert_eq!(casts_of_w(&first[0]), casts_of_w(&again[0]), "one cast per scope");
    let _ = x.matmul(&w).unwrap();
    w.param().unwrap().update(|v, _| v.mul_scalar_(2.0));
    let after = mixprec_autograd::autocast::cast_inputs("matmul", [&w]).unwrap();
    assert_ne!(casts_of_w(&first[0]), casts_of_w(&after[0]), "an update invalidates the cast");
    assert_eq!(after[0].value().to_vec_f32().unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
}
