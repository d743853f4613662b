//! The paper's third phenomenon: a long f16 dot product accumulated in f16
//! loses precision that FP32 accumulation keeps. n = 4096 products of f16
//! values, summed (a) in f16 with `half` arithmetic, one rounding per
//! addition, and (b) by the FP32-accumulating `hgemm` kernel (1×4096 by
//! 4096×1), both against the f64 sum of the exact products.

use half::f16;
use mixprec_autograd::tensor::kernels::gemm::{Transpose, hgemm};
use mixprec_autograd::tensor::random::Generator;

const N: usize = 4096;

fn case(seed: u64, signed: bool) -> (f64, f64, f64) {
    let mut rng = Generator::new(seed);
    let mut draw = || {
        let u = rng.uniform_f32();
        f16::from_f32(if signed { 2.0 * u - 1.0 } else { u })
    };
    let x: Vec<f16> = (0..N).map(|_| draw()).collect();
    let y: Vec<f16> = (0..N).map(|_| draw()).collect();
    // Products of f16 values are exact in f64; the f64 sum's own error
    // (≤ n·2^-53·Σ|xy|) is 2^-40 relative, far below both errors measured.
    let exact: f64 = x.iter().zip(&y).map(|(a, b)| a.to_f64() * b.to_f64()).sum();
    let abs_sum: f64 = x.iter().zip(&y).map(|(a, b)| (a.to_f64() * b.to_f64()).abs()).sum();
    let f16_acc = x.iter().zip(&y).fold(f16::ZERO, |acc, (a, b)| acc + *a * *b);
    let mut c = [0.0f32];
    hgemm(Transpose::No, Transpose::No, 1, 1, N, 1.0, &x, N, &y, 1, 0.0, &mut c, 1);
    ((f16_acc.to_f64() - exact).abs(), (f64::from(c[0]) - exact).abs(), abs_sum)
}

#[test]
fn f16_accumulation_error_is_at_least_100x_the_fp32_kernel_s() {
    let u = 2f64.powi(-24);
    let mut ratios = Vec::new();
    for seed in 0..16 {
        for signed in [false, true] {
            let (e16, e32, abs_sum) = case(seed, signed);
            let bound = 2.0 * N as f64 * u * abs_sum;
            assert!(e32 <= bound, "seed {seed}: FP32-accumulated error {e32:e} above the kernel bound {bound:e}");
            assert!(e16 >= 100.0 * e32, "seed {seed} signed {signed}: f16 error {e16:e} < 100 × FP32 error {e32:e}");
            if e32 > 0.0 {
                ratios.push(e16 / e32);
            }
        }
    }
    assert!(ratios.len() >= 16, "most FP32 sums carry some rounding error");
    ratios.sort_by(f64::total_cmp);
    eprintln!(
        "f16/FP32 accumulation error ratio over {} cases: min {:.3e}, median {:.3e}",
        ratios.len(),
        ratios[0],
        ratios[ratios.len() / 2]
    );
}
