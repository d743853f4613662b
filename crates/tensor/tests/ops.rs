//! Every eager op against an f64 oracle on random shapes (zero-sized axes
//! included), every dtype, broadcast, strided and transposed views, with the
//! bounds of docs/numerics.md: `+ − × ÷`, min/max and comparisons bit-exact
//! (FP32 arithmetic rounded once), unary math within 1 ulp (4 ulp of f32 on
//! SIMD paths), reductions and matmul within `2·n·u·Σ|terms|` plus one
//! rounding to the output dtype.

mod common;

use common::{SplitMix, acc_unit, close, dtype_strategy, random_tensor, same, ulp};
use mixprec_kernels::ew::{BinaryOp, UnaryOp};
use mixprec_kernels::reduce::ReduceOp;
use mixprec_tensor::{DType, Tensor};
use proptest::prelude::*;

fn shape_strategy(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1 => Just(0usize), 8 => 1usize..6], 0..=max_rank)
}

/// Two shapes that broadcast to `out`: axes set to 1 or dropped from the front.
/// Each axis is kept by both, or set to 1 in one of them; one of them may
/// lose leading axes (which the other then keeps).
fn broadcast_pair(out: &[usize], rng: &mut SplitMix) -> (Vec<usize>, Vec<usize>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for &d in out {
        match rng.below(4) {
            0 => (a.push(1), b.push(d)),
            1 => (a.push(d), b.push(1)),
            _ => (a.push(d), b.push(d)),
        };
    }
    let drop = rng.below(out.len() + 1);
    if rng.below(2) == 0 {
        a.drain(..drop);
        b = out.to_vec();
    } else {
        b.drain(..drop);
        a = out.to_vec();
    }
    (a, b)
}

fn exact_binary(op: BinaryOp) -> bool {
    !matches!(op, BinaryOp::Pow)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn binary_ops_broadcast_and_round_once(
        out in shape_strategy(4), da in dtype_strategy(), db in dtype_strategy(), seed in any::<u64>()
    ) {
        let mut rng = SplitMix(seed);
        let (sa, sb) = broadcast_pair(&out, &mut rng);
        let a = random_tensor(&mut rng, &sa, da, 8.0);
        let b = random_tensor(&mut rng, &sb, db, 8.0);
        let dout = da.promote(db);
        let wide = dout == DType::F64;
        let av = a.broadcast_to(&out).unwrap().to_vec_f64().unwrap();
        let bv = b.broadcast_to(&out).unwrap().to_vec_f64().unwrap();
        for op in BinaryOp::ALL {
            let r = a.binary(op, &b).unwrap();
            prop_assert_eq!(r.shape(), &out[..]);
            prop_assert_eq!(r.dtype(), dout);
            let got = r.to_vec_f64().unwrap();
            for i in 0..got.len() {
                let exact = op.apply_f64(av[i], bv[i]);
                let want = dout.round(if wide { exact } else { exact as f32 as f64 });
                if exact_binary(op) {
                    prop_assert!(same(got[i], want), "{:?} {:?}{:?} {} {}: got {} want {}", op, sa, sb, av[i], bv[i], got[i], want);
                } else {
                    let ulps = if dout == DType::F32 { 4.0 } else { 1.0 };
                    prop_assert!(close(dout, got[i], exact, ulps * ulp(dout, exact)), "{:?} {} {}: {} vs {}", op, av[i], bv[i], got[i], exact);
                }
            }
        }
    }

    #[test]
    fn scalar_and_in_place_forms_match_the_tensor_forms(
        shape in shape_strategy(3), d in dtype_strategy(), s in -4.0f64..4.0, seed in any::<u64>()
    ) {
        let mut rng = SplitMix(seed);
        let a = random_tensor(&mut rng, &shape, d, 8.0);
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Lt] {
            // A Python scalar is rounded to the compute type (f32 unless f64),
            // the result keeps the tensor's dtype.
            let sc = if d == DType::F64 { s } else { s as f32 as f64 };
            let st = Tensor::scalar(sc, if d == DType::F64 { DType::F64 } else { DType::F32 });
            let want = a.binary(op, &st).unwrap().to_dtype(d).unwrap();
            let got = a.binary_scalar(op, s).unwrap();
            prop_assert_eq!(got.dtype(), d);
            let (g, w) = (got.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
            for i in 0..g.len() {
                prop_assert!(same(g[i], w[i]), "{:?}: {} vs {}", op, g[i], w[i]);
            }
            let rev = a.scalar_binary(s, op).unwrap().to_vec_f64().unwrap();
            let wrev = st.binary(op, &a).unwrap().to_dtype(d).unwrap().to_vec_f64().unwrap();
            for i in 0..rev.len() {
                prop_assert!(same(rev[i], wrev[i]));
            }
            let mut inplace = a.clone();
            inplace.binary_scalar_(op, s);
            let ip = inplace.to_vec_f64().unwrap();
            for i in 0..ip.len() {
                prop_assert!(same(ip[i], w[i]));
            }
        }
        // In place with a broadcast operand of another dtype: computed in the
        // promoted type, rounded once to this dtype; the original is untouched.
        if !shape.is_empty() {
            let row = random_tensor(&mut rng, &shape[shape.len() - 1..], DType::F32, 2.0);
            let before = a.to_vec_f64().unwrap();
            let mut acc = a.clone();
            acc.add_(&row).unwrap();
            let want = a.add(&row).unwrap().to_dtype(d).unwrap().to_vec_f64().unwrap();
            let got = acc.to_vec_f64().unwrap();
            for i in 0..got.len() {
                prop_assert!(same(got[i], want[i]));
            }
            prop_assert_eq!(a.to_vec_f64().unwrap(), before);
        }
    }

    #[test]
    fn unary_ops_are_within_their_bounds(shape in shape_strategy(3), d in dtype_strategy(), seed in any::<u64>()) {
        let mut rng = SplitMix(seed);
        let x = random_tensor(&mut rng, &shape, d, 6.0);
        let xv = x.to_vec_f64().unwrap();
        for op in UnaryOp::ALL {
            let y = x.unary(op).unwrap();
            prop_assert_eq!(y.dtype(), d);
            prop_assert_eq!(y.shape(), x.shape());
            let got = y.to_vec_f64().unwrap();
            for i in 0..got.len() {
                let exact = mixprec_kernels::scalar::ew::unary_f64(op, xv[i]);
                if op.is_exact() {
                    let want = d.round(if d == DType::F64 { exact } else { exact as f32 as f64 });
                    prop_assert!(same(got[i], want), "{:?}({}) = {}, want {}", op, xv[i], got[i], want);
                } else {
                    let ulps = if d == DType::F32 { 4.0 } else { 1.0 };
                    prop_assert!(close(d, got[i], exact, ulps * ulp(d, exact)), "{:?}({}) = {}, exact {}", op, xv[i], got[i], exact);
                }
            }
            let mut ip = x.clone();
            ip.unary_(op);
            let ipv = ip.to_vec_f64().unwrap();
            for i in 0..got.len() {
                prop_assert!(same(ipv[i], got[i]));
            }
        }
    }

    #[test]
    fn reductions_over_any_axis_are_within_the_bound(
        shape in shape_strategy(4), d in dtype_strategy(), axis_pick in any::<usize>(), keepdim in any::<bool>(), seed in any::<u64>()
    ) {
        prop_assume!(!shape.is_empty());
        let mut rng = SplitMix(seed);
        let x = random_tensor(&mut rng, &shape, d, 50.0);
        let xv = x.to_vec_f64().unwrap();
        let ax = axis_pick % shape.len();
        let (outer, n, inner): (usize, usize, usize) =
            (shape[..ax].iter().product(), shape[ax], shape[ax + 1..].iter().product());
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::SumSq] {
            let r = x.reduce(op, ax as isize - shape.len() as isize, keepdim);
            if n == 0 && outer * inner > 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
                prop_assert!(r.is_err());
                continue;
            }
            let r = r.unwrap();
            let mut want_shape = shape.clone();
            if keepdim { want_shape[ax] = 1 } else { want_shape.remove(ax); }
            prop_assert_eq!(r.shape(), &want_shape[..]);
            let got = r.to_vec_f64().unwrap();
            for o in 0..outer {
                for i in 0..inner {
                    let line: Vec<f64> = (0..n).map(|j| xv[(o * n + j) * inner + i]).collect();
                    let abs: f64 = line.iter().map(|v| v.abs()).sum();
                    let (want, mag) = match op {
                        ReduceOp::Sum => (line.iter().sum::<f64>(), abs),
                        ReduceOp::Mean => (line.iter().sum::<f64>() / n as f64, abs / n as f64),
                        ReduceOp::SumSq => (line.iter().map(|v| v * v).sum(), line.iter().map(|v| v * v).sum()),
                        ReduceOp::Max => (line.iter().copied().fold(f64::NEG_INFINITY, f64::max), 0.0),
                        ReduceOp::Min => (line.iter().copied().fold(f64::INFINITY, f64::min), 0.0),
                    };
                    let g = got[o * inner + i];
                    let bound = 2.0 * n as f64 * acc_unit(d) * mag + ulp(d, want);
                    prop_assert!(close(d, g, want, bound), "{:?} axis {} of {:?}: got {} want {}", op, ax, shape, g, want);
                }
            }
        }
        // argmax against the first maximum.
        if n > 0 {
            let am = x.argmax(ax as isize, false).unwrap().to_vec_f32().unwrap();
            for o in 0..outer {
                for i in 0..inner {
                    let line: Vec<f64> = (0..n).map(|j| xv[(o * n + j) * inner + i]).collect();
                    let mut best = 0;
                    for j in 1..n { if line[j] > line[best] { best = j; } }
                    prop_assert_eq!(am[o * inner + i] as usize, best);
                }
            }
        }
    }

    #[test]
    fn multi_axis_and_sum_to_match_repeated_sums(shape in shape_strategy(4), seed in any::<u64>()) {
        prop_assume!(shape.len() >= 2);
        let mut rng = SplitMix(seed);
        let x = random_tensor(&mut rng, &shape, DType::F64, 4.0);
        let both = x.reduce_axes(ReduceOp::Sum, &[0, -1], true).unwrap();
        let seq = x.sum(0, true).unwrap().sum(-1, true).unwrap();
        prop_assert_eq!(both.shape(), seq.shape());
        for (a, b) in both.to_vec_f64().unwrap().iter().zip(seq.to_vec_f64().unwrap()) {
            prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()));
        }
        let mut target = shape.clone();
        target[0] = 1;
        let st = x.sum_to(&target[1..]).unwrap();
        let want = x.sum(0, false).unwrap();
        prop_assert_eq!(st.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
        let total = x.sum_all().unwrap();
        prop_assert_eq!(total.rank(), 0);
        let flat: f64 = x.to_vec_f64().unwrap().iter().sum();
        prop_assert!((total.item().unwrap() - flat).abs() <= 1e-12 * (1.0 + flat.abs()) * x.numel() as f64);
    }

    #[test]
    fn softmax_over_any_axis_is_within_the_bound(shape in shape_strategy(3), d in dtype_strategy(), axis_pick in any::<usize>(), seed in any::<u64>()) {
        prop_assume!(!shape.is_empty());
        let mut rng = SplitMix(seed);
        let x = random_tensor(&mut rng, &shape, d, 10.0);
        let xv = x.to_vec_f64().unwrap();
        let ax = axis_pick % shape.len();
        let (outer, n, inner): (usize, usize, usize) =
            (shape[..ax].iter().product(), shape[ax], shape[ax + 1..].iter().product());
        let sm = x.softmax(ax as isize).unwrap().to_vec_f64().unwrap();
        let lsm = x.log_softmax(ax as isize).unwrap().to_vec_f64().unwrap();
        let u = acc_unit(d);
        for o in 0..outer {
            for i in 0..inner {
                let idx = |j: usize| (o * n + j) * inner + i;
                let m = (0..n).map(|j| xv[idx(j)]).fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = (0..n).map(|j| (xv[idx(j)] - m).exp()).sum();
                for j in 0..n {
                    let dd = (xv[idx(j)] - m).abs();
                    let y = (xv[idx(j)] - m).exp() / s;
                    let b = (2.0 * n as f64 + 6.0 + dd) * u * y + ulp(d, y);
                    prop_assert!(close(d, sm[idx(j)], y, b), "softmax {} vs {}", sm[idx(j)], y);
                    let ly = (xv[idx(j)] - m) - s.ln();
                    let lb = (2.0 * n as f64 + 6.0) * u + 2.0 * u * (dd + s.ln().abs()) + ulp(d, ly);
                    prop_assert!(close(d, lsm[idx(j)], ly, lb), "log_softmax {} vs {}", lsm[idx(j)], ly);
                }
            }
        }
    }

    #[test]
    fn matmul_of_views_is_within_the_bound(
        b in 1usize..4, m in 0usize..7, k in 0usize..9, n in 0usize..7,
        da in dtype_strategy(), db in dtype_strategy(), ta in any::<bool>(), tb in any::<bool>(),
        form in 0usize..5, seed in any::<u64>()
    ) {
        let mut rng = SplitMix(seed);
        // Operands, possibly stored transposed and viewed back.
        let make = |rng: &mut SplitMix, shape: &[usize], d: DType, trans: bool| {
            let r = shape.len();
            if trans && r >= 2 {
                let mut st = shape.to_vec();
                st.swap(r - 2, r - 1);
                random_tensor(rng, &st, d, 2.0).transpose(-1, -2).unwrap()
            } else {
                random_tensor(rng, shape, d, 2.0)
            }
        };
        let (sa, sb): (Vec<usize>, Vec<usize>) = match form {
            0 => (vec![m, k], vec![k, n]),
            1 => (vec![b, m, k], vec![b, k, n]),
            2 => (vec![b, m, k], vec![k, n]),
            3 => (vec![m, k], vec![b, k, n]),
            _ => (vec![1, m, k], vec![b, k, n]),
        };
        let a = make(&mut rng, &sa, da, ta);
        let bt = make(&mut rng, &sb, db, tb);
        let c = a.matmul(&bt).unwrap();
        let dout = da.promote(db);
        prop_assert_eq!(c.dtype(), dout);
        let batched = sa.len() == 3 || sb.len() == 3;
        let bsz = if sa.len() == 3 { sa[0] } else { 1 }.max(if sb.len() == 3 { sb[0] } else { 1 });
        let want_shape = if batched { vec![bsz, m, n] } else { vec![m, n] };
        prop_assert_eq!(c.shape(), &want_shape[..]);
        let a3 = if a.rank() == 2 { a.unsqueeze(0).unwrap() } else { a.clone() };
        let b3 = if bt.rank() == 2 { bt.unsqueeze(0).unwrap() } else { bt.clone() };
        let (av, bv, cv) = (a3.to_vec_f64().unwrap(), b3.to_vec_f64().unwrap(), c.to_vec_f64().unwrap());
        let u = acc_unit(dout);
        for z in 0..bsz {
            let za = if a3.shape()[0] == 1 { 0 } else { z };
            let zb = if b3.shape()[0] == 1 { 0 } else { z };
            for i in 0..m {
                for j in 0..n {
                    let (mut want, mut mag) = (0.0, 0.0);
                    for p in 0..k {
                        let t = av[(za * m + i) * k + p] * bv[(zb * k + p) * n + j];
                        want += t;
                        mag += t.abs();
                    }
                    let got = cv[(z * m + i) * n + j];
                    let bound = 2.0 * k as f64 * u * mag + ulp(dout, want);
                    prop_assert!(close(dout, got, want, bound), "({},{},{}) got {} want {}", z, i, j, got, want);
                }
            }
        }
    }

    #[test]
    fn cat_stack_select_and_index_select_move_values_exactly(
        shape in shape_strategy(3), d1 in dtype_strategy(), d2 in dtype_strategy(), axis_pick in any::<usize>(), seed in any::<u64>()
    ) {
        prop_assume!(!shape.is_empty());
        let mut rng = SplitMix(seed);
        let ax = axis_pick % shape.len();
        let mut s2 = shape.clone();
        s2[ax] = rng.below(4);
        let a = random_tensor(&mut rng, &shape, d1, 5.0);
        let b = random_tensor(&mut rng, &s2, d2, 5.0);
        let c = Tensor::cat(&[&a, &b], ax as isize).unwrap();
        prop_assert_eq!(c.dtype(), d1.promote(d2));
        prop_assert_eq!(c.narrow(ax as isize, 0, shape[ax]).unwrap().to_vec_f64().unwrap(), a.to_vec_f64().unwrap());
        prop_assert_eq!(c.narrow(ax as isize, shape[ax], s2[ax]).unwrap().to_vec_f64().unwrap(), b.to_vec_f64().unwrap());

        let a2 = random_tensor(&mut rng, &shape, d2, 5.0);
        let s = Tensor::stack(&[&a, &a2], ax as isize).unwrap();
        prop_assert_eq!(s.index_axis(ax as isize, 1).unwrap().to_vec_f64().unwrap(), a2.to_vec_f64().unwrap());

        let cond = a.gt(&a2).unwrap();
        let w = Tensor::select(&cond, &a, &a2).unwrap();
        let mx = a.maximum(&a2).unwrap();
        prop_assert_eq!(w.to_vec_f64().unwrap(), mx.to_vec_f64().unwrap());

        let idx: Vec<usize> = (0..rng.below(5)).map(|_| rng.below(shape[ax].max(1))).collect();
        if shape[ax] > 0 {
            let g = a.index_select(ax as isize, &idx).unwrap();
            for (j, &i) in idx.iter().enumerate() {
                prop_assert_eq!(g.index_axis(ax as isize, j).unwrap().to_vec_f64().unwrap(), a.index_axis(ax as isize, i).unwrap().to_vec_f64().unwrap());
            }
        }
    }
}

#[test]
fn half_matmul_returns_half_with_one_rounding() {
    // 4096 products of 1·1 summed: an f16 accumulator would stop at 2048.
    let a = Tensor::ones(&[1, 4096], DType::F16).unwrap();
    let b = Tensor::ones(&[4096, 1], DType::F16).unwrap();
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.dtype(), DType::F16);
    assert_eq!(c.to_vec_f32().unwrap(), vec![4096.0]);
    // 2049 = 2048 + 1 rounds once to 2048 (ties to even), not twice.
    let a = Tensor::ones(&[1, 2049], DType::BF16).unwrap();
    let b = Tensor::ones(&[2049, 1], DType::BF16).unwrap();
    assert_eq!(a.matmul(&b).unwrap().to_vec_f32().unwrap(), vec![2048.0]);
    // Vectors.
    let v = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    assert_eq!(v.matmul(&v).unwrap().shape(), &[] as &[usize]);
    assert_eq!(v.matmul(&v).unwrap().item().unwrap(), 14.0);
    let m = Tensor::arange(0.0, 6.0, 1.0, DType::F32).unwrap().reshape(&[3, 2]).unwrap();
    assert_eq!(v.matmul(&m).unwrap().to_vec_f32().unwrap(), vec![16.0, 22.0]);
    assert_eq!(m.t().unwrap().matmul(&v).unwrap().to_vec_f32().unwrap(), vec![16.0, 22.0]);
}

#[test]
fn f16_arithmetic_rounds_once_from_fp32() {
    // 2049 is not an f16; 2048 + 1 rounds to 2048 (tie to even) and
    // 2048 + 3 to 2052: FP32 compute, one rounding.
    let a = Tensor::full(&[2], 2048.0, DType::F16).unwrap();
    let b = Tensor::from_vec(vec![1.0f32, 3.0], &[2]).unwrap().to_dtype(DType::F16).unwrap();
    assert_eq!(a.add(&b).unwrap().to_vec_f32().unwrap(), vec![2048.0, 2052.0]);
    // f16 + f32 promotes to f32: exact.
    let c = Tensor::from_vec(vec![1.0f32, 3.0], &[2]).unwrap();
    let s = a.add(&c).unwrap();
    assert_eq!(s.dtype(), DType::F32);
    assert_eq!(s.to_vec_f32().unwrap(), vec![2049.0, 2051.0]);
    // f16 + bf16 → f32.
    assert_eq!(a.add(&b.to_dtype(DType::BF16).unwrap()).unwrap().dtype(), DType::F32);
    // Overflow past 65504 gives Inf in f16.
    let big = Tensor::full(&[1], 60000.0, DType::F16).unwrap();
    assert!(big.add(&big).unwrap().to_vec_f32().unwrap()[0].is_infinite());
}

#[test]
fn randn_seed0_hash_is_pinned_at_the_tensor_level() {
    use mixprec_tensor::random::Generator;
    use sha2::{Digest, Sha256};
    let t = Tensor::randn(&[10_000], DType::F32, &mut Generator::new(0)).unwrap();
    let bytes: Vec<u8> = t.to_vec::<f32>().unwrap().iter().flat_map(|x| x.to_bits().to_le_bytes()).collect();
    let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    // The same stream as the generator's own pinned hash (tests/random.rs).
    assert_eq!(hex, "70578b64af242b82f96df32b61d79682420c8b279fc5250584204a6e34282c48");
    let u = Tensor::rand(&[4096], DType::F16, &mut Generator::new(1)).unwrap().to_vec_f32().unwrap();
    assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
    let mean: f32 = u.iter().sum::<f32>() / u.len() as f32;
    assert!((mean - 0.5).abs() < 0.03, "{mean}");
    let a = Tensor::randn(&[3, 5], DType::BF16, &mut Generator::new(7)).unwrap();
    let b = Tensor::randn(&[3, 5], DType::BF16, &mut Generator::new(7)).unwrap();
    assert_eq!(a.to_vec_f32().unwrap(), b.to_vec_f32().unwrap());
}
