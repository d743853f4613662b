//! Packing buffers are reused: once warmed up, GEMM calls allocate nothing
//! (counted by a global allocator; this binary holds only this test).

use half::f16;
use mixprec_count_alloc::{Counting, allocations, count_this_thread};
use mixprec_kernels::gemm::{self, Epilogue, Output, Transpose};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_calls_do_not_allocate() {
    // Under qemu-user (AARCH64_QEMU_CPU set) arithmetic is ~50× slower: a
    // smaller product still spans several KC blocks of every buffer kind.
    let emulated = std::env::var_os("AARCH64_QEMU_CPU").is_some();
    let (m, n, k) = if emulated { (100, 170, 300) } else { (300, 700, 900) };
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let ah = vec![f16::from_f32(0.5); m * k];
    let bh = vec![f16::from_f32(0.25); k * n];
    let mut c = vec![0.0f32; m * n];
    let mut h = vec![f16::ZERO; m * n];
    let bias = vec![1.0f32; n];
    // Only the pool's threads count: the test harness's own thread allocates
    // when it reports a slow test (as under qemu).
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).start_handler(|_| count_this_thread()).build().unwrap();
    pool.install(|| {
        let calls = |c: &mut [f32], h: &mut [f16]| {
            gemm::sgemm(Transpose::No, Transpose::No, m, n, k, 1.0, &a, k, &b, n, 0.0, c, n);
            gemm::sgemm(Transpose::Yes, Transpose::Yes, m, n, k, 1.0, &a, m, &b, k, 1.0, c, n);
            gemm::sgemm(Transpose::No, Transpose::No, 20, 30, 40, 1.0, &a, k, &b, n, 0.0, c, n);
            gemm::hgemm(Transpose::No, Transpose::Yes, m, n, k, 1.0, &ah, k, &bh, k, 0.0, c, n);
            let epi = Epilogue { bias: Some(&bias), relu: true };
            gemm::gemm_ex(Transpose::No, Transpose::No, m, n, k, 1.0, &ah, k, &bh, n, 0.0, Output::F16(h), n, epi);
        };
        // Packing buffers belong to the threads that pack; which pool thread
        // packs what depends on scheduling, so warm up until every thread has
        // grown its buffers (three clean rounds in a row), then measure.
        let mut clean = 0;
        for _ in 0..100 {
            clean = if allocations(|| calls(&mut c, &mut h)) == 0 { clean + 1 } else { 0 };
            if clean == 3 {
                break;
            }
        }
        assert_eq!(clean, 3, "GEMM calls kept allocating after 100 warm-up rounds");
        let n = allocations(|| {
            for _ in 0..5 {
                calls(&mut c, &mut h);
            }
        });
        assert_eq!(n, 0, "{n} allocations in 25 steady-state GEMM calls");
    });
    assert!(c[0].is_finite() && h[0].to_f32() > 0.0);
}
