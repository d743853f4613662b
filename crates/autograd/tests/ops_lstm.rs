//! lstm_cell and lstm: a literal step, the sequence form against a loop of
//! cells, typed errors, and gradchecks (the backward is the primitives').

mod common;

use common::*;
use mixprec_autograd::Var;
use mixprec_autograd::ops::{LstmParams, lstm, lstm_embedded};
use mixprec_tensor::{DType, Tensor};
use proptest::prelude::*;

fn params(v: &[Var]) -> LstmParams {
    LstmParams { w_ih: v[0].clone(), w_hh: v[1].clone(), b_ih: Some(v[2].clone()), b_hh: Some(v[3].clone()) }
}

fn random_layer(i: usize, h: usize, seed: u64) -> Vec<Tensor> {
    vec![
        uniform(&[4 * h, i], -0.8, 0.8, seed),
        uniform(&[4 * h, h], -0.8, 0.8, seed ^ 1),
        uniform(&[4 * h], -0.5, 0.5, seed ^ 2),
        uniform(&[4 * h], -0.5, 0.5, seed ^ 3),
    ]
}

#[test]
fn lstm_cell_literal() {
    // Zero weights: gates are the biases. b = [i, f, g, o] = [0, ln 3, 0.5, 0] gives
    // i = o = 1/2, f = 3/4, g = tanh(1/2): c' = 3/4·c + tanh(1/2)/2, h' = tanh(c')/2.
    let z = |s: &[usize]| Var::parameter(Tensor::zeros(s, DType::F64).unwrap());
    let p = LstmParams {
        w_ih: z(&[4, 1]),
        w_hh: z(&[4, 1]),
        b_ih: Some(Var::parameter(t64(&[0.0, 3f64.ln(), 0.5, 0.0], &[4]))),
        b_hh: None,
    };
    let (x, h, c) =
        (Var::constant(t64(&[5.0], &[1, 1])), Var::constant(t64(&[7.0], &[1, 1])), param(&[2.0], &[1, 1], DType::F64));
    let (h2, c2) = x.lstm_cell(&h, &c, &p).unwrap();
    let cw = 0.75 * 2.0 + 0.5f64.tanh() / 2.0;
    close(&val64(&c2), &[cw], 1e-12);
    close(&val64(&h2), &[cw.tanh() / 2.0], 1e-12);
    // dh'/dc = o·(1 − tanh²c')·f
    h2.sum_all().unwrap().backward().unwrap();
    close(&grad64(&c), &[0.5 * (1.0 - cw.tanh().powi(2)) * 0.75], 1e-12);
}

#[test]
fn lstm_is_a_loop_of_cells() {
    let (t, b, i, h) = (4, 3, 5, 6);
    let x = Var::constant(uniform(&[t, b, i], -1.0, 1.0, 1));
    let l0: Vec<Var> = random_layer(i, h, 10).into_iter().map(Var::parameter).collect();
    let l1: Vec<Var> = random_layer(h, h, 20).into_iter().map(Var::parameter).collect();
    let h0 = Var::constant(uniform(&[2, b, h], -1.0, 1.0, 2));
    let c0 = Var::constant(uniform(&[2, b, h], -1.0, 1.0, 3));
    let (y, hn, cn) = lstm(&x, Some((&h0, &c0)), &[params(&l0), params(&l1)]).unwrap();
    assert_eq!((y.shape(), hn.shape(), cn.shape()), (&[t, b, h][..], &[2, b, h][..], &[2, b, h][..]));
    let mut input: Vec<Var> = (0..t).map(|s| x.narrow(0, s, 1).unwrap().reshape(&[b, i]).unwrap()).collect();
    let mut last = Vec::new();
    for (li, l) in [&l0, &l1].into_iter().enumerate() {
        let mut hh = h0.narrow(0, li, 1).unwrap().reshape(&[b, h]).unwrap();
        let mut cc = c0.narrow(0, li, 1).unwrap().reshape(&[b, h]).unwrap();
        for xt in input.iter_mut() {
            (hh, cc) = xt.lstm_cell(&hh, &cc, &params(l)).unwrap();
            *xt = hh.clone();
        }
        last.push((hh, cc));
    }
    for (s, xt) in input.iter().enumerate() {
        close(&val64(&y.narrow(0, s, 1).unwrap()), &val64(xt), 1e-6);
    }
    close(&val64(&hn.narrow(0, 1, 1).unwrap()), &val64(&last[1].0), 1e-6);
    close(&val64(&cn.narrow(0, 0, 1).unwrap()), &val64(&last[0].1), 1e-6);
}

/// The embedded form is the same function as embedding then lstm, value
/// and gradient (f32: the same GEMM sums; the table's rows gathered).
#[test]
fn lstm_embedded_is_embedding_then_lstm() {
    let (t, b, v, i, h) = (5, 3, 7, 4, 6);
    let indices: Vec<usize> = (0..t * b).map(|k| (k * 5 + 3) % v).collect();
    let to32 = |x: Tensor| x.to_dtype(DType::F32).unwrap();
    let run = |embedded: bool| {
        let emb = Var::parameter(to32(uniform(&[v, i], -1.0, 1.0, 1)));
        let layers: Vec<Vec<Var>> = [(i, 10), (h, 20)]
            .into_iter()
            .map(|(n, seed)| random_layer(n, h, seed).into_iter().map(|x| Var::parameter(to32(x))).collect())
            .collect();
        let ps = [params(&layers[0]), params(&layers[1])];
        let (y, hn, cn) = if embedded {
            lstm_embedded(&emb, &indices, [t, b], None, &ps).unwrap()
        } else {
            lstm(&emb.embedding(&indices, &[t, b]).unwrap(), None, &ps).unwrap()
        };
        let loss = y
            .sum_all()
            .unwrap()
            .add(&hn.sum_all().unwrap())
            .unwrap()
            .add(&cn.mul_scalar(0.5).unwrap().sum_all().unwrap())
            .unwrap();
        loss.backward().unwrap();
        let mut out = vec![val64(&y), grad64(&emb)];
        out.extend(layers.iter().flatten().map(grad64));
        out
    };
    let (want, got) = (run(false), run(true));
    for (w, g) in want.iter().zip(&got) {
        close(g, w, 1e-5);
    }
}

#[test]
fn lstm_embedded_rejects_bad_indices() {
    let l: Vec<Var> = random_layer(3, 2, 1).into_iter().map(Var::parameter).collect();
    let emb = Var::parameter(uniform(&[4, 3], -1.0, 1.0, 1));
    assert!(lstm_embedded(&emb, &[0, 1, 2], [2, 2], None, &[params(&l)]).is_err());
    assert!(lstm_embedded(&emb, &[0, 1, 2, 4], [2, 2], None, &[params(&l)]).is_err());
    assert!(lstm_embedded(&emb.reshape(&[12]).unwrap(), &[0, 1, 2, 3], [2, 2], None, &[params(&l)]).is_err());
    let wide = Var::parameter(uniform(&[4, 5], -1.0, 1.0, 1));
    assert!(lstm_embedded(&wide, &[0, 1, 2, 3], [2, 2], None, &[params(&l)]).is_err());
    assert!(lstm_embedded(&emb, &[0, 1, 2, 3], [2, 2], None, &[params(&l)]).is_ok());
}

#[test]
fn lstm_rejects_bad_shapes() {
    let l: Vec<Var> = random_layer(3, 2, 1).into_iter().map(Var::parameter).collect();
    let x = Var::constant(uniform(&[2, 1, 4], -1.0, 1.0, 1));
    assert!(lstm(&x, None, &[params(&l)]).is_err());
    assert!(lstm(&x.reshape(&[2, 4]).unwrap(), None, &[params(&l)]).is_err());
    assert!(lstm(&x, None, &[]).is_err());
    let bad = LstmParams { w_hh: l[0].clone(), ..params(&l) };
    assert!(lstm(&Var::constant(uniform(&[2, 1, 3], -1.0, 1.0, 1)), None, &[bad]).is_err());
    let h = Var::constant(uniform(&[1, 2], -1.0, 1.0, 1));
    assert!(Var::constant(uniform(&[1, 4], -1.0, 1.0, 1)).lstm_cell(&h, &h, &params(&l)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_lstm_cell(b in 1usize..3, i in 1usize..4, h in 1usize..4, seed in any::<u64>()) {
        let mut inputs = vec![uniform(&[b, i], -1.0, 1.0, seed), uniform(&[b, h], -1.0, 1.0, seed ^ 5), uniform(&[b, h], -1.0, 1.0, seed ^ 6)];
        inputs.extend(random_layer(i, h, seed ^ 7));
        check(|v| {
            let (h2, c2) = v[0].lstm_cell(&v[1], &v[2], &params(&v[3..]))?;
            h2.add(&c2.mul_scalar(0.5)?)
        }, &inputs);
    }

    #[test]
    fn gradcheck_lstm_embedded(t in 1usize..4, b in 1usize..3, v in 1usize..4, i in 1usize..3, h in 1usize..3, seed in any::<u64>(), init in any::<bool>()) {
        let indices: Vec<usize> = (0..t * b).map(|k| (k + seed as usize) % v).collect();
        let mut inputs = vec![uniform(&[v, i], -1.0, 1.0, seed)];
        inputs.extend(random_layer(i, h, seed ^ 1));
        inputs.extend(random_layer(h, h, seed ^ 2));
        if init {
            inputs.push(uniform(&[2, b, h], -1.0, 1.0, seed ^ 3));
            inputs.push(uniform(&[2, b, h], -1.0, 1.0, seed ^ 4));
        }
        check(|x| {
            let state = if x.len() > 9 { Some((&x[9], &x[10])) } else { None };
            let (y, hn, cn) = lstm_embedded(&x[0], &indices, [t, b], state, &[params(&x[1..5]), params(&x[5..9])])?;
            y.sum_all()?.add(&hn.sum_all()?)?.add(&cn.mul_scalar(0.5)?.sum_all()?)
        }, &inputs);
    }

    /// Either bias alone, or none: the layer sums whichever it has once.
    #[test]
    fn gradcheck_lstm_one_or_no_bias(t in 1usize..4, b in 1usize..3, i in 1usize..3, h in 1usize..3, which in 0usize..3, seed in any::<u64>()) {
        let mut inputs = vec![uniform(&[t, b, i], -1.0, 1.0, seed)];
        let layer = random_layer(i, h, seed ^ 1);
        inputs.extend(layer[..2].iter().cloned());
        if which < 2 {
            inputs.push(layer[2 + which].clone());
        }
        check(|v| {
            let bias = v.get(3).cloned();
            let (b_ih, b_hh) = if which == 0 { (bias, None) } else { (None, bias) };
            let p = LstmParams { w_ih: v[1].clone(), w_hh: v[2].clone(), b_ih, b_hh };
            let (y, hn, cn) = lstm(&v[0], None, &[p])?;
            y.sum_all()?.add(&hn.sum_all()?)?.add(&cn.mul_scalar(0.5)?.sum_all()?)
        }, &inputs);
    }

    #[test]
    fn gradcheck_lstm_two_layers(t in 1usize..4, b in 1usize..3, i in 1usize..3, h in 1usize..3, seed in any::<u64>(), init in any::<bool>()) {
        let mut inputs = vec![uniform(&[t, b, i], -1.0, 1.0, seed)];
        inputs.extend(random_layer(i, h, seed ^ 1));
        inputs.extend(random_layer(h, h, seed ^ 2));
        if init {
            inputs.push(uniform(&[2, b, h], -1.0, 1.0, seed ^ 3));
            inputs.push(uniform(&[2, b, h], -1.0, 1.0, seed ^ 4));
        }
        check(|v| {
            let state = if v.len() > 9 { Some((&v[9], &v[10])) } else { None };
            let (y, hn, cn) = lstm(&v[0], state, &[params(&v[1..5]), params(&v[5..9])])?;
            y.sum_all()?.add(&hn.sum_all()?)?.add(&cn.mul_scalar(0.5)?.sum_all()?)
        }, &inputs);
    }
}
