//! Bytes saved for backward: counted once per saved view, released after
//! backward or when the graph drops. (Its own test binary: the counters are
//! process-wide.)

use mixprec_autograd::Var;
use mixprec_autograd::saved::{reset_peak, saved_bytes};
use mixprec_tensor::{DType, Tensor};

fn ones(shape: &[usize], dtype: DType) -> Tensor {
    Tensor::ones(shape, dtype).unwrap()
}

#[test]
fn saved_bytes_are_counted_once_and_released() {
    assert_eq!(saved_bytes().current, 0);
    reset_peak();
    let x = Var::new(ones(&[4, 8], DType::F32));
    let w1 = Var::parameter(ones(&[8, 16], DType::F32));
    let w2 = Var::parameter(ones(&[16, 2], DType::F32));
    // The first matmul saves x (for dw1; w1 itself is not kept, x needs no
    // gradient); relu saves its output h. The second matmul saves h again
    // (the same view: counted once) and w2 (dh = g·w2ᵀ).
    let h = x.matmul(&w1).unwrap().relu().unwrap();
    assert_eq!(saved_bytes().current, 4 * 8 * 4 + 4 * 16 * 4);
    let y = h.matmul(&w2).unwrap();
    assert_eq!(saved_bytes().current, 4 * 8 * 4 + 4 * 16 * 4 + 16 * 2 * 4);
    let loss = y.sum_all().unwrap();
    let peak = saved_bytes().current;
    loss.backward().unwrap();
    assert_eq!(saved_bytes(), mixprec_autograd::saved::SavedBytes { current: 0, peak });

    // A graph dropped without backward releases what it saved.
    reset_peak();
    let h16 = Var::parameter(ones(&[32], DType::F16)).exp().unwrap();
    assert_eq!(saved_bytes().current, 32 * 2);
    drop(h16);
    assert_eq!(saved_bytes().current, 0);
    assert_eq!(saved_bytes().peak, 64);
}
