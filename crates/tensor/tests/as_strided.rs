//! `Tensor::as_strided`: explicit shapes, strides and offsets are checked
//! against the storage (typed errors, no overflow), and the views built on
//! them read exactly the elements the strides name. Cases the layout fuzz
//! target found are kept here as regressions.

use mixprec_tensor::{DType, Tensor, TensorError};

fn base(len: usize) -> Tensor {
    Tensor::from_vec((0..len).map(|i| i as f32).collect(), &[len]).unwrap()
}

#[test]
fn strided_views_read_the_named_elements() {
    let b = base(12);
    let v = b.as_strided(&[2, 3], &[1, 4], 1).unwrap();
    assert_eq!(v.to_vec_f32().unwrap(), vec![1.0, 5.0, 9.0, 2.0, 6.0, 10.0]);
    // Overlapping and broadcast (stride 0) views are allowed.
    let o = b.as_strided(&[3, 2], &[1, 1], 0).unwrap();
    assert_eq!(o.to_vec_f32().unwrap(), vec![0.0, 1.0, 1.0, 2.0, 2.0, 3.0]);
    let z = b.as_strided(&[2, 2], &[0, 11], 0).unwrap();
    assert_eq!(z.to_vec_f32().unwrap(), vec![0.0, 11.0, 0.0, 11.0]);
    // The offset counts from the storage, not from the view.
    let n = b.narrow(0, 6, 6).unwrap().as_strided(&[2], &[1], 0).unwrap();
    assert_eq!(n.to_vec_f32().unwrap(), vec![0.0, 1.0]);
    assert_eq!(
        v.to_dtype(DType::F16).unwrap().t().unwrap().contiguous().to_vec_f32().unwrap(),
        vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0]
    );
}

#[test]
fn views_past_the_storage_or_overflowing_are_errors() {
    let b = base(12);
    let out = |r: Result<Tensor, TensorError>| matches!(r, Err(TensorError::OutOfStorage { .. }));
    assert!(out(b.as_strided(&[2, 3], &[1, 4], 4)));
    assert!(out(b.as_strided(&[13], &[1], 0)));
    assert!(out(b.as_strided(&[0], &[1], 13)));
    assert!(b.as_strided(&[0], &[1], 12).is_ok());
    assert!(matches!(b.as_strided(&[2, 3], &[1], 0), Err(TensorError::ShapeMismatch { .. })));
    assert!(matches!(b.as_strided(&[2, 2], &[usize::MAX, 1], 0), Err(TensorError::ShapeOverflow { .. })));
    assert!(matches!(b.as_strided(&[2], &[1], usize::MAX), Err(TensorError::ShapeOverflow { .. })));
    assert!(matches!(b.as_strided(&[usize::MAX, 2], &[0, 0], 0), Err(TensorError::ShapeOverflow { .. })));
    let e = b.as_strided(&[2, 3], &[1, 4], 4).unwrap_err().to_string();
    assert!(e.contains("as_strided") && e.contains("[2, 3]") && e.contains("12"), "{e}");
}

/// Fuzz finding (layout, crash-c7dea462): an empty tensor whose axes before
/// the zero overflow when multiplied was refused a reshape to another empty
/// shape ("18446744073709551615 elements"). Element counts are now 0 for any
/// shape with a zero-sized axis, whatever the order of its axes.
#[test]
fn empty_shapes_with_huge_axes_are_empty_in_any_order() {
    let x = 3_298_534_883_328usize;
    let t = Tensor::zeros(&[0, x, x, x, x, x], DType::F32).unwrap();
    assert_eq!(t.numel(), 0);
    let r = t.reshape(&[x, x, x, x, 0, x]).unwrap();
    assert_eq!((r.numel(), r.shape()), (0, &[x, x, x, x, 0, x][..]));
    assert!(r.to_vec_f32().unwrap().is_empty());
    assert_eq!(r.unsqueeze(0).unwrap().numel(), 0);
    assert!(r.contiguous().to_vec_f32().unwrap().is_empty());
    assert!(r.add(&r).unwrap().to_vec_f32().unwrap().is_empty());
    // Merging the huge axes overflows: a typed error, not a wrapped size.
    assert!(matches!(r.flatten(0, 3), Err(TensorError::ShapeOverflow { .. })));
    assert_eq!(r.flatten(3, 4).unwrap().shape(), &[x, x, x, 0, x]);
    // Summing the empty axis away leaves x^5 elements: too large.
    assert!(matches!(r.sum(4, false), Err(TensorError::ShapeOverflow { .. })));
    assert_eq!(r.sum(0, true).unwrap().numel(), 0);
    let s = Tensor::zeros(&[2, 3], DType::F32).unwrap().as_strided(&[x, x, 0], &[1, 1, 1], 0).unwrap();
    assert_eq!(s.narrow(0, 1, 2).unwrap().numel(), 0);
}
