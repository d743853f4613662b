//! The loss scaler's user API: scale / unscale / step / update, with
//! several optimizers and losses, gradient accumulation, unscale before
//! clipping, misuse as typed errors, state export and restore; and the
//! property test: random Inf/NaN in random gradients over random step
//! sequences never reaches an update, and the scale follows the reference
//! state machine (PyTorch's rule, or the statistics-driven rule fed the
//! largest finite gradient magnitude, NaN and ±Inf skipped).

use mixprec_amp::scaler::{ScaleState, ScalerConfig, StatsConfig};
use mixprec_amp::{AmpError, GradScaler, NonFinite, NonFiniteKind, StepOutcome};
use mixprec_autograd::Var;
use mixprec_autograd::tensor::{DType, Tensor};
use proptest::prelude::*;

mod common;
use common::{RecordingSgd, konst, param, poke};

/// `Σ x·w` over the pairs: dL/dw = x.
fn dot_loss(pairs: &[(&Var, &Var)]) -> Var {
    let mut loss: Option<Var> = None;
    for (x, w) in pairs {
        let term = x.mul(w).unwrap().sum_all().unwrap();
        loss = Some(match loss {
            None => term,
            Some(l) => l.add(&term).unwrap(),
        });
    }
    loss.unwrap()
}

#[test]
fn scale_multiplies_the_loss_and_unscale_restores_the_gradient_exactly() {
    let w = param(&[1.0, 2.0, 3.0]);
    let x = konst(&[0.5, -1.5e-6, 3.0e-8]);
    let mut opt = RecordingSgd::new(vec![w.clone()], 0.5);
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    let scaled = scaler.scale(&dot_loss(&[(&x, &w)])).unwrap();
    assert_eq!(scaled.item().unwrap(), 65536.0 * dot_loss(&[(&x, &w)]).item().unwrap());
    scaled.backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec_f32().unwrap(), vec![0.5 * 65536.0, -1.5e-6 * 65536.0, 3.0e-8 * 65536.0]);
    assert_eq!(scaler.unscale(&mut opt).unwrap(), None);
    assert_eq!(w.grad().unwrap().to_vec_f32().unwrap(), vec![0.5, -1.5e-6, 3.0e-8]);
    assert_eq!(scaler.step(&mut opt).unwrap(), StepOutcome::Applied);
    scaler.update().unwrap();
    assert_eq!(opt.seen, vec![vec![0.5, -1.5e-6, 3.0e-8]]);
    assert_eq!(scaler.scale_state(), ScaleState { scale: 65536.0, growth_tracker: 1, peak: 0.0, peak_ratio: 1.0 });
}

#[test]
fn misuse_is_a_typed_error() {
    let w = param(&[1.0]);
    let mut opt = RecordingSgd::new(vec![w.clone()], 0.1);
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    assert!(matches!(scaler.update(), Err(AmpError::NothingToUpdate)));
    scaler.scale(&w.sum_all().unwrap()).unwrap().backward().unwrap();
    scaler.unscale(&mut opt).unwrap();
    assert!(matches!(scaler.unscale(&mut opt), Err(AmpError::AlreadyUnscaled)));
    scaler.step(&mut opt).unwrap();
    assert!(matches!(scaler.step(&mut opt), Err(AmpError::AlreadyStepped)));
    assert!(matches!(scaler.unscale(&mut opt), Err(AmpError::UnscaleAfterStep)));
    scaler.update().unwrap();
    // The next step starts clean.
    scaler.unscale(&mut opt).unwrap();
    for bad in [
        ScalerConfig { init_scale: 0.0, ..ScalerConfig::default() },
        ScalerConfig { init_scale: f32::INFINITY, ..ScalerConfig::default() },
        ScalerConfig { growth_factor: 1.0, ..ScalerConfig::default() },
        ScalerConfig { backoff_factor: 1.0, ..ScalerConfig::default() },
        ScalerConfig { growth_interval: 0, ..ScalerConfig::default() },
    ] {
        assert!(matches!(GradScaler::new(bad), Err(AmpError::BadScalerConfig { .. })), "{bad:?}");
    }
}

#[test]
fn a_low_precision_gradient_is_refused_with_its_index() {
    let w32 = param(&[1.0]);
    let w16 = Var::parameter(Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap().to_dtype(DType::F16).unwrap());
    w16.to_dtype(DType::F32).unwrap().sum_all().unwrap().backward().unwrap();
    let mut opt = RecordingSgd::new(vec![w32, w16], 0.1);
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    let e = scaler.unscale(&mut opt).unwrap_err();
    assert!(matches!(e, AmpError::LowPrecisionGradient { param: 1, dtype: DType::F16 }), "{e}");
    // The failed unscale is not recorded: the step can still run once fixed.
    assert!(matches!(scaler.update(), Err(AmpError::NothingToUpdate)));
}

#[test]
fn two_optimizers_two_losses_one_scaler_skip_only_the_one_with_inf() {
    let (a, b) = (param(&[1.0, 2.0]), param(&[3.0]));
    let (xa, xb) = (konst(&[0.25, 0.5]), konst(&[2.0]));
    let mut oa = RecordingSgd::new(vec![a.clone()], 0.5);
    let mut ob = RecordingSgd::new(vec![b.clone()], 0.5);
    let mut scaler = GradScaler::new(ScalerConfig { init_scale: 1024.0, ..ScalerConfig::default() }).unwrap();
    let l1 = dot_loss(&[(&xa, &a)]);
    let l2 = dot_loss(&[(&xb, &b)]);
    scaler.scale(&l1).unwrap().backward().unwrap();
    scaler.scale(&l2).unwrap().backward().unwrap();
    poke(&b, 0, f32::NAN);
    let before_b = ob.values();
    assert_eq!(scaler.step(&mut oa).unwrap(), StepOutcome::Applied);
    let out = scaler.step(&mut ob).unwrap();
    assert_eq!(out, StepOutcome::Skipped { optimizer: 1, found: NonFinite { param: 0, kind: NonFiniteKind::NaN } });
    assert!(!out.applied());
    assert_eq!(ob.values(), before_b);
    assert_eq!(a.value().to_vec_f32().unwrap(), vec![1.0 - 0.125, 2.0 - 0.25]);
    scaler.update().unwrap();
    assert_eq!(scaler.scale_factor(), 512.0);
    assert_eq!(scaler.skipped_steps(), 1);
}

#[test]
fn accumulation_over_micro_batches_unscales_the_sum_once() {
    let w = param(&[1.0, -1.0]);
    let mut opt = RecordingSgd::new(vec![w.clone()], 1.0);
    let mut scaler = GradScaler::new(ScalerConfig { init_scale: 4096.0, ..ScalerConfig::default() }).unwrap();
    let micro = [[0.5f32, 0.25], [0.125, -2.0], [1.0, 1.0], [-0.75, 0.5]];
    for x in &micro {
        // Each micro-batch's loss is divided by their count, as a mean would be.
        let l = dot_loss(&[(&konst(x), &w)]).div_scalar(micro.len() as f64).unwrap();
        scaler.scale(&l).unwrap().backward().unwrap();
    }
    scaler.step(&mut opt).unwrap();
    scaler.update().unwrap();
    let want: Vec<f32> = (0..2).map(|i| micro.iter().map(|x| x[i] / 4.0).sum()).collect();
    assert_eq!(opt.seen, vec![want]);
}

#[test]
fn clipping_after_unscale_sees_the_true_gradient_norm() {
    let w = param(&[0.0, 0.0]);
    let mut opt = RecordingSgd::new(vec![w.clone()], 1.0);
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    scaler.scale(&dot_loss(&[(&konst(&[3.0, 4.0]), &w)])).unwrap().backward().unwrap();
    scaler.unscale(&mut opt).unwrap();
    let g = w.grad().unwrap().to_vec_f32().unwrap();
    let norm = g.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert_eq!(norm, 5.0, "the unscaled norm, not 65536 times it");
    // Clip to norm 1 (the gradient is then (0.6, 0.8)), then step.
    w.param().unwrap().update_grad(|g| g.mul_scalar_(1.0 / 5.0));
    assert_eq!(scaler.step(&mut opt).unwrap(), StepOutcome::Applied);
    scaler.update().unwrap();
    assert_eq!(w.value().to_vec_f32().unwrap(), vec![-0.6, -0.8]);
}

#[test]
fn a_disabled_scaler_only_steps() {
    let w = param(&[1.0]);
    let mut opt = RecordingSgd::new(vec![w.clone()], 1.0);
    let mut scaler = GradScaler::disabled();
    let l = w.mul_scalar(2.0).unwrap().sum_all().unwrap();
    let s = scaler.scale(&l).unwrap();
    assert_eq!(s.item().unwrap(), 2.0);
    s.backward().unwrap();
    assert_eq!(scaler.step(&mut opt).unwrap(), StepOutcome::Applied);
    scaler.update().unwrap();
    assert_eq!(w.value().to_vec_f32().unwrap(), vec![-1.0]);
    assert_eq!(scaler.scale_factor(), 1.0);
}

/// Runs `steps` steps of a one-parameter model, injecting Inf on the
/// steps `bad` says, and returns the scale after each.
fn run(scaler: &mut GradScaler, w: &Var, opt: &mut RecordingSgd, bad: &[bool]) -> Vec<(u32, u32)> {
    let x = konst(&[1.0]);
    bad.iter()
        .map(|&b| {
            opt.zero_grad();
            scaler.scale(&dot_loss(&[(&x, w)])).unwrap().backward().unwrap();
            if b {
                poke(w, 0, f32::INFINITY);
            }
            scaler.step(opt).unwrap();
            scaler.update().unwrap();
            let s = scaler.scale_state();
            (s.scale.to_bits(), s.growth_tracker)
        })
        .collect()
}

#[test]
fn exported_state_resumes_bit_exactly() {
    let config = ScalerConfig {
        init_scale: 3.0,
        growth_factor: 1.7,
        backoff_factor: 0.3,
        growth_interval: 3,
        dynamic: true,
        ..ScalerConfig::default()
    };
    let pattern: Vec<bool> = (0..80).map(|i| (i * 7 + 3) % 11 == 0).collect();
    let w = param(&[0.0]);
    let mut opt = RecordingSgd::new(vec![w.clone()], 0.0);
    let mut a = GradScaler::new(config).unwrap();
    run(&mut a, &w, &mut opt, &pattern[..40]);
    let snap = a.state();
    let mut b = GradScaler::new(ScalerConfig::default()).unwrap();
    b.load_state(snap).unwrap();
    assert_eq!(b.state(), snap);
    let ta = run(&mut a, &w, &mut opt, &pattern[40..]);
    let tb = run(&mut b, &w, &mut opt, &pattern[40..]);
    assert_eq!(ta, tb);
    assert_eq!(a.state(), b.state());
    assert_eq!(a.skipped_steps(), pattern.iter().filter(|b| **b).count() as u64);
    let bad = mixprec_amp::ScalerSnapshot {
        state: ScaleState { scale: f32::NAN, growth_tracker: 0, peak: 0.0, peak_ratio: 1.0 },
        ..snap
    };
    assert!(b.load_state(bad).is_err());
}

#[derive(Clone, Debug)]
struct StepPlan {
    micro_batches: usize,
    /// (optimizer, parameter, element, value) injected into scaled gradients.
    inject: Vec<(usize, usize, usize, f32)>,
    /// Which optimizers are unscaled explicitly before `step`.
    explicit_unscale: Vec<bool>,
}

fn step_plan(n_opt: usize) -> impl Strategy<Value = StepPlan> {
    let value = prop_oneof![Just(f32::INFINITY), Just(f32::NEG_INFINITY), Just(f32::NAN)];
    (
        1usize..4,
        prop::collection::vec((0..n_opt, 0usize..3, 0usize..5, value), 0..3).prop_map(|v| v),
        prop::collection::vec(any::<bool>(), n_opt),
        any::<bool>(),
    )
        .prop_map(|(micro_batches, inject, explicit_unscale, clean)| StepPlan {
            micro_batches,
            inject: if clean { Vec::new() } else { inject },
            explicit_unscale,
        })
}

fn plans() -> impl Strategy<Value = (ScalerConfig, usize, Vec<StepPlan>)> {
    (
        1usize..4,
        1u32..6,
        prop_oneof![Just(2.0f64), Just(3.0), Just(1.5)],
        prop_oneof![Just(0.5f64), Just(0.25), Just(0.7)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(n_opt, interval, growth, backoff, dynamic, stats)| {
            let config = ScalerConfig {
                init_scale: 65536.0,
                growth_factor: growth,
                backoff_factor: backoff,
                growth_interval: interval,
                dynamic,
                statistics: stats.then(StatsConfig::default),
                ..ScalerConfig::default()
            };
            (Just(config), Just(n_opt), prop::collection::vec(step_plan(n_opt), 1..40))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_update_ever_sees_a_non_finite_gradient((config, n_opt, steps) in plans()) {
        // Each optimizer owns three parameters of five elements; the data
        // spans magnitudes from 2^-30 to 2^20, so large scales also
        // overflow to Inf without any injection.
        let xs: Vec<Vec<Var>> = (0..n_opt).map(|o| (0..3).map(|p| {
            let v: Vec<f32> = (0..5).map(|e| ((o * 15 + p * 5 + e) as f32 * 0.37).sin() * 2f32.powi(((o + p * 7 + e * 11) % 51) as i32 - 30)).collect();
            konst(&v)
        }).collect()).collect();
        let ws: Vec<Vec<Var>> = (0..n_opt).map(|_| (0..3).map(|_| param(&[0.5; 5])).collect()).collect();
        let mut opts: Vec<RecordingSgd> = ws.iter().map(|w| RecordingSgd::new(w.clone(), 2f32.powi(-40))).collect();
        let mut scaler = GradScaler::new(config).unwrap();
        let mut reference = ScaleState::new(&config);
        for plan in &steps {
            opts.iter().for_each(RecordingSgd::zero_grad);
            for _ in 0..plan.micro_batches {
                let pairs: Vec<(&Var, &Var)> = xs.iter().flatten().zip(ws.iter().flatten()).collect();
                scaler.scale(&dot_loss(&pairs)).unwrap().backward().unwrap();
            }
            for &(o, p, e, v) in &plan.inject {
                poke(&ws[o][p], e, v);
            }
            // What the scaler must decide, from the gradients themselves.
            let inv = (1.0 / scaler.scale_factor() as f64) as f32;
            let expect_skip: Vec<bool> = ws.iter().map(|w| w.iter().any(|p| {
                p.grad().unwrap().to_vec_f32().unwrap().iter().any(|g| !g.is_finite() || !(g * inv).is_finite())
            })).collect();
            // The statistic: the largest finite |g| of the scaled gradients, unscaled in f64.
            let max_scaled = ws.iter().flatten().flat_map(|p| p.grad().unwrap().to_vec_f32().unwrap())
                .filter(|g| g.is_finite()).map(f32::abs).fold(0.0f32, f32::max);
            let max_abs = (max_scaled as f64 / scaler.scale_factor() as f64) as f32;
            let before: Vec<Vec<Vec<f32>>> = opts.iter().map(RecordingSgd::values).collect();
            for (o, opt) in opts.iter_mut().enumerate() {
                if plan.explicit_unscale[o] {
                    let found = scaler.unscale(opt).unwrap();
                    prop_assert_eq!(found.is_some(), expect_skip[o]);
                }
            }
            for (o, opt) in opts.iter_mut().enumerate() {
                let out = scaler.step(opt).unwrap();
                prop_assert_eq!(out.applied(), !expect_skip[o]);
                if expect_skip[o] {
                    prop_assert_eq!(&opt.values(), &before[o]);
                }
            }
            scaler.update().unwrap();
            reference.update_observed(&config, expect_skip.iter().any(|s| *s), max_abs);
            let st = scaler.scale_state();
            prop_assert_eq!(st.scale.to_bits(), reference.scale.to_bits());
            prop_assert_eq!(st.growth_tracker, reference.growth_tracker);
            prop_assert_eq!((st.peak.to_bits(), st.peak_ratio.to_bits()), (reference.peak.to_bits(), reference.peak_ratio.to_bits()));
        }
        for opt in &opts {
            prop_assert!(opt.seen.iter().flatten().all(|g| g.is_finite()), "an update saw a non-finite gradient");
        }
    }
}
