//! conv2d, max_pool2d, avg_pool2d: literal cases derived by hand, a direct
//! (unlowered) f64 convolution as the oracle for random geometry and
//! dtypes, and finite-difference gradchecks (pooling away from ties).

mod common;

use common::*;
use mixprec_autograd::Var;
use mixprec_tensor::{DType, Tensor};
use proptest::prelude::*;

fn sum_backward(y: &Var) {
    y.sum_all().unwrap().backward().unwrap();
}

#[test]
fn conv2d_literal() {
    // y[i, j] = x[i, j] + x[i+1, j+1] + 1 (a 2×2 diagonal kernel and a bias).
    let x = param(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], &[1, 1, 3, 3], DType::F32);
    let w = param(&[1.0, 0.0, 0.0, 1.0], &[1, 1, 2, 2], DType::F32);
    let b = param(&[1.0], &[1], DType::F32);
    let y = x.conv2d(&w, Some(&b), [1, 1], [0, 0], [1, 1]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(val64(&y), vec![7.0, 9.0, 13.0, 15.0]);
    sum_backward(&y);
    // dW[i, j] = Σ of the window it multiplies; dx counts the uses.
    assert_eq!(grad64(&w), vec![12.0, 16.0, 24.0, 28.0]);
    assert_eq!(grad64(&x), vec![1.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0, 1.0]);
    assert_eq!(grad64(&b), vec![4.0]);
}

#[test]
fn conv2d_padding_stride_dilation_literal() {
    // A 1×1 input padded by 1 under a 3×3 all-ones kernel: only the centre tap sees it.
    let x = param(&[2.0], &[1, 1, 1, 1], DType::F32);
    let w = param(&[1.0; 9], &[1, 1, 3, 3], DType::F32);
    let y = x.conv2d(&w, None, [1, 1], [1, 1], [1, 1]).unwrap();
    assert_eq!((y.shape(), val64(&y)), (&[1usize, 1, 1, 1][..], vec![2.0]));
    sum_backward(&y);
    assert_eq!(grad64(&w), vec![0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
    // Stride 2, dilation 2 over a 5×5 ramp: taps at rows/cols 0, 2, 4.
    let v: Vec<f64> = (0..25).map(f64::from).collect();
    let x = Var::constant(t64(&v, &[1, 1, 5, 5]).to_dtype(DType::F32).unwrap());
    let w = Var::constant(t32(&[1.0, 0.0, 0.0, 0.0], &[1, 1, 2, 2]));
    let y = x.conv2d(&w, None, [2, 2], [0, 0], [2, 2]).unwrap();
    assert_eq!((y.shape(), val64(&y)), (&[1usize, 1, 2, 2][..], vec![0.0, 2.0, 10.0, 12.0]));
}

#[test]
fn conv2d_rejects_bad_arguments() {
    let x = Var::constant(Tensor::zeros(&[1, 2, 4, 4], DType::F32).unwrap());
    let w = Var::constant(Tensor::zeros(&[3, 2, 3, 3], DType::F32).unwrap());
    assert!(
        x.conv2d(&Var::constant(Tensor::zeros(&[3, 1, 3, 3], DType::F32).unwrap()), None, [1, 1], [0, 0], [1, 1])
            .is_err()
    );
    assert!(
        x.conv2d(&w, Some(&Var::constant(Tensor::zeros(&[2], DType::F32).unwrap())), [1, 1], [0, 0], [1, 1]).is_err()
    );
    assert!(x.conv2d(&w, None, [0, 1], [0, 0], [1, 1]).is_err());
    assert!(x.conv2d(&w, None, [1, 1], [0, 0], [3, 3]).is_err());
    assert!(x.reshape(&[2, 4, 4]).unwrap().conv2d(&w, None, [1, 1], [0, 0], [1, 1]).is_err());
    assert!(x.max_pool2d([2, 2], [2, 2], [2, 2], [1, 1]).is_err());
    assert!(x.avg_pool2d([5, 5], [1, 1], [0, 0]).is_err());
}

#[test]
fn pool_literals() {
    let v: Vec<f64> = vec![1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 7.0, 8.0, -1.0, -2.0, 9.0, 6.0, -3.0, -4.0, 6.0, 9.5];
    let x = param(&v, &[1, 1, 4, 4], DType::F32);
    let y = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
    assert_eq!(val64(&y), vec![5.0, 8.0, -1.0, 9.5]);
    sum_backward(&y);
    let mut want = vec![0.0; 16];
    for i in [1, 7, 8, 15] {
        want[i] = 1.0;
    }
    assert_eq!(grad64(&x), want);

    let x = param(&v, &[1, 1, 4, 4], DType::F32);
    let y = x.avg_pool2d([2, 2], [2, 2], [0, 0]).unwrap();
    assert_eq!(val64(&y), vec![13.0 / 4.0, 17.0 / 4.0, -10.0 / 4.0, 30.5 / 4.0]);
    sum_backward(&y);
    assert_eq!(grad64(&x), vec![0.25; 16]);

    // Padding: -inf for max (never chosen), 0 counted in the divisor for avg.
    let x = param(&[-1.0, -2.0, -3.0, -4.0], &[1, 1, 2, 2], DType::F32);
    let y = x.max_pool2d([2, 2], [1, 1], [1, 1], [1, 1]).unwrap();
    assert_eq!(val64(&y), vec![-1.0, -1.0, -2.0, -1.0, -1.0, -2.0, -3.0, -3.0, -4.0]);
    let y = x.avg_pool2d([2, 2], [2, 2], [1, 1]).unwrap();
    assert_eq!(val64(&y), vec![-0.25, -0.5, -0.75, -1.0]);
}

#[test]
fn max_pool_propagates_nan_and_takes_the_first_of_ties() {
    let x = param(&[1.0, f64::NAN, 3.0, 2.0, 4.0, 4.0, 0.0, 0.0], &[1, 2, 2, 2], DType::F32);
    let y = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
    let v = val64(&y);
    assert!(v[0].is_nan());
    assert_eq!(v[1], 4.0);
    sum_backward(&y);
    assert_eq!(grad64(&x), vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
}

/// 2×2 max pooling of stride 2 by the row-major scan (the first NaN, else
/// the first maximum): the outputs and each output's input position.
fn max_pool_2x2_scan(x: &[f64], planes: usize, h: usize, w: usize) -> (Vec<f64>, Vec<usize>) {
    let (oh, ow) = (h / 2, w / 2);
    let (mut y, mut at) = (Vec::new(), Vec::new());
    for p in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<(f64, usize)> = None;
                for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let k = p * h * w + (2 * oy + i) * w + 2 * ox + j;
                    let v = x[k];
                    if best.is_none_or(|(b, _)| !b.is_nan() && (v > b || v.is_nan())) {
                        best = Some((v, k));
                    }
                }
                let (v, k) = best.unwrap();
                y.push(v);
                at.push(k);
            }
        }
    }
    (y, at)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The 2×2 fast path (branch-free compare tree, tiled backward) on values
    /// with many ties and NaNs, even and odd planes, against the scan.
    #[test]
    fn max_pool_2x2_matches_the_scan(n in 1usize..3, c in 1usize..3, h in 2usize..9, w in 2usize..9, seed in any::<u64>()) {
        let shape = [n, c, h, w];
        let mut rng = mixprec_tensor::random::Generator::new(seed);
        let v: Vec<f64> = (0..n * c * h * w)
            .map(|_| match rng.next_u32() % 8 { 0 => f64::NAN, r => f64::from(r % 3) - 1.0 })
            .collect();
        let x = param(&v, &shape, DType::F32);
        let y = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
        let (want, at) = max_pool_2x2_scan(&v, n * c, h, w);
        let got = val64(&y);
        prop_assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{} vs {}", a, b);
        }
        let gy: Vec<f64> = (0..want.len()).map(|i| i as f64 + 1.0).collect();
        y.mul(&Var::constant(t64(&gy, y.shape()).to_dtype(DType::F32).unwrap())).unwrap().sum_all().unwrap().backward().unwrap();
        let mut gx = vec![0.0; v.len()];
        for (o, &k) in at.iter().enumerate() {
            gx[k] += gy[o];
        }
        prop_assert_eq!(grad64(&x), gx);
    }
}

/// The direct definition of conv2d, in f64.
#[allow(clippy::too_many_arguments)]
fn conv_oracle(x: &Tensor, w: &Tensor, b: &[f64], s: usize, p: usize, d: usize) -> (Vec<usize>, Vec<f64>) {
    let (xs, ws) = (x.shape().to_vec(), w.shape().to_vec());
    let (xv, wv) = (x.to_vec_f64().unwrap(), w.to_vec_f64().unwrap());
    let (n, c, h, wd, o, kh, kw) = (xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3]);
    let oh = (h + 2 * p - d * (kh - 1) - 1) / s + 1;
    let ow = (wd + 2 * p - d * (kw - 1) - 1) / s + 1;
    let mut y = vec![0.0; n * o * oh * ow];
    for ni in 0..n {
        for oi in 0..o {
            for yy in 0..oh {
                for xx in 0..ow {
                    let mut acc = b[oi];
                    for ci in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (yy * s + i * d) as isize - p as isize;
                                let ix = (xx * s + j * d) as isize - p as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                acc += xv[((ni * c + ci) * h + iy as usize) * wd + ix as usize]
                                    * wv[((oi * c + ci) * kh + i) * kw + j];
                            }
                        }
                    }
                    y[((ni * o + oi) * oh + yy) * ow + xx] = acc;
                }
            }
        }
    }
    (vec![n, o, oh, ow], y)
}

#[derive(Clone, Debug)]
struct ConvCase {
    n: usize,
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (1usize..3, 1usize..4, 1usize..4, 1usize..4, 1usize..3, 0usize..2, 1usize..3, 0usize..4, 0usize..4).prop_map(
        |(n, c, o, k, s, p, d, eh, ew)| {
            let span = d * (k - 1) + 1;
            ConvCase { n, c, o, h: span + eh, w: span + ew, k, s, p: p.min(k / 2), d }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_matches_the_direct_definition(cs in conv_case(), seed in any::<u64>(), bias in any::<bool>()) {
        let x = uniform(&[cs.n, cs.c, cs.h, cs.w], -1.0, 1.0, seed);
        let w = uniform(&[cs.o, cs.c, cs.k, cs.k], -1.0, 1.0, seed ^ 1);
        let b = uniform(&[cs.o], -1.0, 1.0, seed ^ 2);
        let bv = if bias { b.to_vec_f64().unwrap() } else { vec![0.0; cs.o] };
        // f16/bf16: inputs rounded first (the oracle sees the rounded values), FP32 sums, one rounding.
        for (dtype, rel) in [(DType::F64, 1e-12), (DType::F32, 1e-5), (DType::F16, 2f64.powi(-10)), (DType::BF16, 2f64.powi(-7))] {
            let (xr, wr) = (x.to_dtype(dtype).unwrap(), w.to_dtype(dtype).unwrap());
            let br = Tensor::from_vec(bv.clone(), &[cs.o]).unwrap().to_dtype(dtype).unwrap();
            let (shape, want) = conv_oracle(&xr, &wr, &br.to_vec_f64().unwrap(), cs.s, cs.p, cs.d);
            let bvar = Var::constant(br);
            let y = Var::constant(xr).conv2d(&Var::constant(wr), bias.then_some(&bvar), [cs.s; 2], [cs.p; 2], [cs.d; 2]).unwrap();
            prop_assert_eq!(y.shape(), &shape[..]);
            prop_assert_eq!(y.dtype(), dtype);
            let scale = (cs.c * cs.k * cs.k) as f64 + 1.0;
            for (a, e) in val64(&y).iter().zip(&want) {
                prop_assert!((a - e).abs() <= rel * e.abs() + 1e-6 * scale, "{dtype}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn gradcheck_conv2d(cs in conv_case(), seed in any::<u64>()) {
        let x = uniform(&[cs.n, cs.c, cs.h, cs.w], -1.0, 1.0, seed);
        let w = uniform(&[cs.o, cs.c, cs.k, cs.k], -1.0, 1.0, seed ^ 1);
        let b = uniform(&[cs.o], -1.0, 1.0, seed ^ 2);
        check(|v| v[0].conv2d(&v[1], Some(&v[2]), [cs.s; 2], [cs.p; 2], [cs.d; 2]), &[x.clone(), w.clone(), b]);
        check(|v| v[0].conv2d(&v[1], None, [cs.s; 2], [cs.p; 2], [cs.d; 2]), &[x, w]);
    }

    #[test]
    fn gradcheck_pools(n in 1usize..3, c in 1usize..3, h in 2usize..7, w in 2usize..7, k in 1usize..4,
                       s in 1usize..3, p in 0usize..2, d in 1usize..3, seed in any::<u64>()) {
        let p = p.min(k / 2);
        prop_assume!(h + 2 * p > d * (k - 1) && w + 2 * p > d * (k - 1));
        // Distinct values 0.05 apart: no ties within ±h.
        let x = distinct(&[n, c, h, w], seed);
        check(|v| v[0].max_pool2d([k, k], [s, s], [p, p], [d, d]), std::slice::from_ref(&x));
        if h + 2 * p >= k && w + 2 * p >= k {
            check(|v| v[0].avg_pool2d([k, k], [s, s], [p, p]), &[x]);
        }
    }
}

#[test]
fn half_pools_are_exact_or_rounded_once() {
    let v: Vec<f64> = (0..16).map(|i| f64::from(i) * 0.3 - 2.0).collect();
    for dtype in [DType::F16, DType::BF16] {
        let xt = t64(&v, &[1, 1, 4, 4]).to_dtype(dtype).unwrap();
        let xr = xt.to_vec_f64().unwrap();
        let x = Var::constant(xt);
        let y = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
        assert_eq!((y.dtype(), val64(&y)), (dtype, vec![xr[5], xr[7], xr[13], xr[15]]));
        let y = x.avg_pool2d([2, 2], [2, 2], [0, 0]).unwrap();
        let mean = (xr[0] + xr[1] + xr[4] + xr[5]) / 4.0;
        assert_eq!(val64(&y)[0], dtype.round(mean));
    }
}

/// Stride 1 with outputs as wide as the input (3×3 padding 1, 5×5 padding
/// 2, dilation 2 padding 2, 1×1): im2col and col2im move whole shifted
/// planes and clear the wrapped columns. Against the direct definition,
/// and gradchecked, including a batch of 9 (more than one task of images,
/// the last one partial).
#[test]
fn conv2d_same_width_geometries() {
    for (i, &(k, p, d, n, h, w)) in [
        (3, 1, 1, 2, 5, 6),
        (5, 2, 1, 1, 4, 7),
        (3, 2, 2, 2, 6, 5),
        (1, 0, 1, 2, 3, 4),
        (3, 1, 1, 9, 4, 3),
        (3, 1, 1, 1, 1, 1),
    ]
    .iter()
    .enumerate()
    {
        let seed = 40 + i as u64;
        let (c, o) = (2, 3);
        let x = uniform(&[n, c, h, w], -1.0, 1.0, seed);
        let wt = uniform(&[o, c, k, k], -1.0, 1.0, seed ^ 1);
        let b = uniform(&[o], -1.0, 1.0, seed ^ 2);
        for (dtype, rel) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            let (xr, wr) = (x.to_dtype(dtype).unwrap(), wt.to_dtype(dtype).unwrap());
            let (shape, want) = conv_oracle(&xr, &wr, &b.to_vec_f64().unwrap(), 1, p, d);
            assert_eq!(shape[3], w, "a same-width geometry");
            let bvar = Var::constant(b.to_dtype(dtype).unwrap());
            let y = Var::constant(xr).conv2d(&Var::constant(wr), Some(&bvar), [1, 1], [p, p], [d, d]).unwrap();
            for (a, e) in val64(&y).iter().zip(&want) {
                assert!(
                    (a - e).abs() <= rel * e.abs() + 1e-6 * (c * k * k + 1) as f64,
                    "{dtype} k{k} p{p} d{d}: {a} vs {e}"
                );
            }
        }
        check(|v| v[0].conv2d(&v[1], Some(&v[2]), [1, 1], [p, p], [d, d]), &[x, wt, b]);
    }
}
