//! Constructors, conversions and views: values, sharing and typed errors.

use half::{bf16, f16};
use mixprec_tensor::{DType, Tensor, TensorError};

#[test]
fn constructors_round_once_and_check_lengths() {
    let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.strides(), &[3, 1]);
    assert_eq!(t.dtype(), DType::F32);
    let e = Tensor::from_vec(vec![1.0f32; 5], &[2, 3]).unwrap_err();
    assert_eq!(e, TensorError::DataLength { op: "from_slice", len: 5, shape: vec![2, 3], expected: 6 });
    assert!(matches!(Tensor::zeros(&[usize::MAX, 2], DType::F32), Err(TensorError::ShapeOverflow { .. })));
    let h = Tensor::full(&[3], 0.1, DType::F16).unwrap();
    assert_eq!(h.to_vec::<f16>().unwrap(), vec![f16::from_f32(0.1); 3]);
    let b = Tensor::from_slice(&[bf16::ONE, bf16::MAX], &[2]).unwrap();
    assert_eq!(b.to_vec_f32().unwrap(), vec![1.0, bf16::MAX.to_f32()]);
    assert!(matches!(b.to_vec::<f32>(), Err(TensorError::DTypeMismatch { .. })));
    let r = Tensor::arange(0.0, 1.0, 0.25, DType::F64).unwrap();
    assert_eq!(r.to_vec::<f64>().unwrap(), vec![0.0, 0.25, 0.5, 0.75]);
    assert_eq!(Tensor::arange(5.0, 0.0, -2.0, DType::F32).unwrap().to_vec_f32().unwrap(), vec![5.0, 3.0, 1.0]);
    assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F32).is_err());
    assert!(Tensor::arange(0.0, f64::INFINITY, 1.0, DType::F32).is_err());
    assert_eq!(Tensor::scalar(2.5, DType::BF16).item().unwrap(), 2.5);
}

#[test]
fn to_dtype_rounds_once_to_nearest_even() {
    // 1 + 2^-11 + 2^-40 is just above an f16 tie: it must round up, which a
    // double rounding through f32 would not.
    let x = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
    let t = Tensor::from_vec(vec![x, 65520.0, -0.0, f64::NAN, 1e-8], &[5]).unwrap();
    let h = t.to_dtype(DType::F16).unwrap().to_vec::<f16>().unwrap();
    assert_eq!(h[0].to_f64(), 1.0 + 2f64.powi(-10));
    assert!(h[1].is_infinite());
    assert_eq!(h[2].to_bits(), 0x8000);
    assert!(h[3].is_nan());
    assert_eq!(h[4], f16::from_f64(1e-8)); // a subnormal, kept
    let bf = Tensor::from_slice(&h, &[5]).unwrap().to_dtype(DType::BF16).unwrap();
    assert_eq!(bf.to_vec::<bf16>().unwrap()[0], bf16::from_f64(1.0 + 2f64.powi(-10)));
}

#[test]
fn views_share_storage_and_copy_only_when_needed() {
    let t = Tensor::arange(0.0, 24.0, 1.0, DType::F32).unwrap().reshape(&[2, 3, 4]).unwrap();
    let p = t.permute(&[2, 0, 1]).unwrap();
    assert!(p.shares_storage(&t) && !p.is_contiguous());
    assert_eq!(p.shape(), &[4, 2, 3]);
    assert_eq!(p.get(&[1, 1, 2]).unwrap(), 21.0);
    assert!(matches!(p.reshape(&[24]), Err(TensorError::NotContiguous { .. })));
    let c = p.contiguous();
    assert!(!c.shares_storage(&t) && c.is_contiguous());
    assert_eq!(c.reshape(&[24]).unwrap().to_vec_f32().unwrap()[..4], [0.0, 4.0, 8.0, 12.0]);
    assert!(t.contiguous().shares_storage(&t));

    let n = t.narrow(2, 1, 2).unwrap();
    assert_eq!(n.to_vec_f32().unwrap(), vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0, 13.0, 14.0, 17.0, 18.0, 21.0, 22.0]);
    assert!(matches!(t.narrow(2, 3, 2), Err(TensorError::BadRange { .. })));
    let u = t.unsqueeze(-1).unwrap();
    assert_eq!(u.shape(), &[2, 3, 4, 1]);
    assert_eq!(u.squeeze(3).unwrap().shape(), &[2, 3, 4]);
    assert!(matches!(t.squeeze(0), Err(TensorError::NotSingleton { .. })));
    let b = Tensor::arange(0.0, 3.0, 1.0, DType::F16).unwrap().reshape(&[3, 1]).unwrap();
    let bb = b.broadcast_to(&[2, 3, 2]).unwrap();
    assert_eq!(bb.to_vec_f32().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
    assert!(matches!(b.broadcast_to(&[2, 2]), Err(TensorError::BadBroadcast { .. })));
    assert!(matches!(t.transpose(0, 3), Err(TensorError::BadAxis { op: "transpose", axis: 3, rank: 3 })));
    assert!(matches!(t.permute(&[0, 0, 1]), Err(TensorError::BadPermutation { .. })));
    assert_eq!(t.flatten(0, 1).unwrap().shape(), &[6, 4]);
    assert_eq!(t.index_axis(1, 2).unwrap().to_vec_f32().unwrap(), vec![8.0, 9.0, 10.0, 11.0, 20.0, 21.0, 22.0, 23.0]);
}

#[test]
fn strided_conversion_reads_the_view() {
    let t = Tensor::arange(0.0, 6.0, 1.0, DType::F64).unwrap().reshape(&[2, 3]).unwrap().t().unwrap();
    for dt in DType::ALL {
        assert_eq!(t.to_dtype(dt).unwrap().to_vec_f32().unwrap(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0], "{dt}");
    }
}

#[test]
fn data_mut_copies_on_write() {
    let a = Tensor::zeros(&[2, 2], DType::F32).unwrap();
    let mut v = a.t().unwrap();
    v.data_mut::<f32>().unwrap()[1] = 7.0;
    assert_eq!(a.to_vec_f32().unwrap(), vec![0.0; 4]);
    assert_eq!(v.to_vec_f32().unwrap(), vec![0.0, 7.0, 0.0, 0.0]);
    assert!(v.data_mut::<f16>().is_err());
}
