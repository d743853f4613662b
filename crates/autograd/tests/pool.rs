//! The buffer cache: a buffer the tape lets go of is reused only when
//! nothing else holds it, so results never change and live values are
//! never overwritten.

use mixprec_autograd::nn::{Linear, Module, Relu, Sequential};
use mixprec_autograd::{Var, pool};
use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, Tensor};

fn model() -> Sequential {
    let mut rng = Generator::new(2);
    Sequential::new()
        .push(Linear::new(64, 256, &mut rng).unwrap())
        .push(Relu)
        .push(Linear::new(256, 4, &mut rng).unwrap())
}

#[test]
fn cached_buffers_never_alias_live_values() {
    let m = model();
    let x = Var::new(Tensor::randn(&[96, 64], DType::F32, &mut Generator::new(3)).unwrap());
    let targets: Vec<usize> = (0..96).map(|i| i % 4).collect();
    pool::clear();
    // A hidden activation the caller keeps past backward.
    let h =
        Sequential::new().push(Linear::new(64, 256, &mut Generator::new(2)).unwrap()).push(Relu).forward(&x).unwrap();
    let kept = h.value().to_vec_f32().unwrap();
    let run = || {
        m.zero_grad();
        let loss = m.forward(&x).unwrap().cross_entropy(&targets, Default::default()).unwrap();
        loss.backward().unwrap();
        m.parameters().iter().map(|p| p.grad().unwrap().to_vec_f32().unwrap()).collect::<Vec<_>>()
    };
    // Its graph is released (the saved copy of `h` goes back), but the
    // caller's handle keeps the buffer out of the cache.
    h.sum_all().unwrap().backward().unwrap();
    let first = run();
    assert!(pool::cached_bytes() > 0, "a 96×256 f32 buffer (96 KiB) should have been cached");
    for _ in 0..3 {
        assert_eq!(run(), first);
        assert_eq!(h.value().to_vec_f32().unwrap(), kept);
    }
    pool::clear();
    assert_eq!(pool::cached_bytes(), 0);
    assert_eq!(run(), first);
}
