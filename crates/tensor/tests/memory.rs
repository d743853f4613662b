//! Exact memory accounting. The counters are process-wide, so every test in
//! this binary holds one lock: nothing else allocates tensors meanwhile.

use std::sync::Mutex;

use mixprec_tensor::memory::{self, Bytes};
use mixprec_tensor::{DType, Tensor};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn live_and_peak_bytes_per_dtype_are_exact() {
    let _g = lock();
    let base = memory::stats();
    memory::reset_peak();
    let a = Tensor::zeros(&[100, 3], DType::F32).unwrap(); // 1200 bytes
    let b = Tensor::ones(&[7], DType::F16).unwrap(); // 14 bytes
    let c = Tensor::full(&[2, 2, 2], 0.5, DType::F64).unwrap(); // 64 bytes
    let d = Tensor::zeros(&[5], DType::BF16).unwrap(); // 10 bytes
    let s = memory::stats();
    assert_eq!(s.dtype(DType::F32).live, base.dtype(DType::F32).live + 1200);
    assert_eq!(s.dtype(DType::F16).live, base.dtype(DType::F16).live + 14);
    assert_eq!(s.dtype(DType::F64).live, base.dtype(DType::F64).live + 64);
    assert_eq!(s.dtype(DType::BF16).live, base.dtype(DType::BF16).live + 10);
    assert_eq!(s.total.live, base.total.live + 1288);
    assert_eq!(s.total.peak, s.total.live);

    // Views and clones share storage: no new bytes.
    let v = a.t().unwrap().narrow(0, 1, 2).unwrap();
    let w = a.clone();
    assert_eq!(memory::stats().total.live, s.total.live);

    // Dropping one handle keeps the storage; dropping all frees it.
    drop(a);
    assert_eq!(memory::stats().dtype(DType::F32).live, s.dtype(DType::F32).live);
    drop(w);
    drop(v);
    let after = memory::stats();
    assert_eq!(after.dtype(DType::F32).live, base.dtype(DType::F32).live);
    assert_eq!(after.dtype(DType::F32).peak, s.dtype(DType::F32).live);
    assert_eq!(after.total.peak, s.total.live);

    // A conversion allocates the new dtype; the peak counts both at once.
    memory::reset_peak();
    let h = c.to_dtype(DType::F16).unwrap(); // 16 bytes
    let st = memory::stats();
    assert_eq!(st.dtype(DType::F16).live, base.dtype(DType::F16).live + 14 + 16);
    assert_eq!(st.total.peak, st.total.live);
    drop((b, c, d, h));
    let end = memory::stats();
    assert_eq!(end.total.live, base.total.live);
    assert_eq!(end.total.peak, base.total.live + 1288 - 1200 + 16);
    memory::reset_peak();
    assert_eq!(memory::stats().total, Bytes { live: base.total.live, peak: base.total.live });
}

#[test]
fn copy_on_write_allocates_only_when_shared() {
    let _g = lock();
    let mut a = Tensor::zeros(&[256], DType::F32).unwrap();
    let base = memory::stats().total.live;
    a.fill_(2.0); // sole owner: in place
    assert_eq!(memory::stats().total.live, base);
    let b = a.clone();
    a.fill_(3.0); // shared: a gets its own 1024 bytes
    assert_eq!(memory::stats().total.live, base + 1024);
    assert_eq!(b.to_vec::<f32>().unwrap()[0], 2.0);
    assert_eq!(a.to_vec::<f32>().unwrap()[0], 3.0);
    drop(b);
    assert_eq!(memory::stats().total.live, base);
}
