//! Scaler states no run can reach are refused on restore (a corrupt
//! snapshot or checkpoint), states every run can reach are accepted, and the
//! state machine never overflows whatever state it is handed. Cases the
//! scaler fuzz target found are kept here as regressions.

use mixprec_amp::scaler::{ScaleState, ScalerConfig};
use mixprec_amp::{AmpError, GradScaler, ScalerSnapshot, StepOutcome};
use mixprec_autograd::Var;
use mixprec_autograd::tensor::Tensor;

mod common;
use common::{RecordingSgd, param};

fn snapshot(scale: f32, growth_tracker: u32) -> ScalerSnapshot {
    let config = ScalerConfig { growth_interval: 3, ..ScalerConfig::default() };
    ScalerSnapshot {
        config,
        state: ScaleState { scale, growth_tracker, peak: 0.0, peak_ratio: 1.0 },
        enabled: true,
        skipped_steps: 0,
        applied_steps: 0,
        consecutive_skips: 0,
    }
}

#[test]
fn unreachable_snapshots_are_typed_errors() {
    let mut s = GradScaler::new(ScalerConfig::default()).unwrap();
    for (scale, tracker) in [(1.0, 3), (1.0, u32::MAX), (-1.0, 0), (f32::NAN, 0), (f32::INFINITY, 0)] {
        let r = s.load_state(snapshot(scale, tracker));
        assert!(matches!(r, Err(AmpError::BadScalerState { .. })), "scale {scale} tracker {tracker}: {r:?}");
        assert_eq!(
            s.scale_state(),
            ScaleState { scale: 65536.0, growth_tracker: 0, peak: 0.0, peak_ratio: 1.0 },
            "a refused snapshot changed the state"
        );
    }
    let bad_config =
        ScalerSnapshot { config: ScalerConfig { growth_interval: 0, ..ScalerConfig::default() }, ..snapshot(1.0, 0) };
    assert!(matches!(s.load_state(bad_config), Err(AmpError::BadScalerConfig { .. })));
    // Statistics no run reaches: a negative or non-finite peak, a peak
    // ratio below 1 or non-finite.
    let stats = ScalerConfig::statistics(1024.0);
    for (peak, peak_ratio) in
        [(-1.0, 1.0), (f32::NAN, 1.0), (f32::INFINITY, 1.0), (0.5, 0.5), (0.5, f32::NAN), (0.5, f32::INFINITY)]
    {
        let snap = ScalerSnapshot {
            config: stats,
            state: ScaleState { scale: 1024.0, growth_tracker: 0, peak, peak_ratio },
            ..snapshot(1.0, 0)
        };
        let r = s.load_state(snap);
        assert!(matches!(r, Err(AmpError::BadScalerState { .. })), "peak {peak} ratio {peak_ratio}: {r:?}");
    }
    let good = ScaleState { scale: 1024.0, growth_tracker: 5000, peak: 0.5, peak_ratio: 3.0 };
    s.load_state(ScalerSnapshot { config: stats, state: good, ..snapshot(1.0, 0) }).unwrap();
    assert_eq!(s.scale_state(), good);
}

#[test]
fn reachable_snapshots_resume() {
    let mut s = GradScaler::new(ScalerConfig::default()).unwrap();
    // Repeated backoff underflows to 0: a state a run can reach, so it resumes.
    for (scale, tracker) in [(0.0, 0), (1.0e-45, 2), (65536.0, 2)] {
        s.load_state(snapshot(scale, tracker)).unwrap();
        assert_eq!(s.state(), snapshot(scale, tracker));
    }
    // A static scaler never counts, so its tracker is irrelevant.
    let fixed = ScalerSnapshot { config: ScalerConfig::fixed(8.0), ..snapshot(8.0, u32::MAX) };
    s.load_state(fixed).unwrap();
    assert_eq!(s.scale_factor(), 8.0);
}

#[test]
fn the_state_machine_saturates_instead_of_overflowing() {
    let config = ScalerConfig { growth_interval: 5, ..ScalerConfig::default() };
    let mut st = ScaleState { scale: 2.0, growth_tracker: u32::MAX, peak: 0.0, peak_ratio: 1.0 };
    st.update(&config, false);
    assert_eq!(st, ScaleState { scale: 4.0, growth_tracker: 0, peak: 0.0, peak_ratio: 1.0 });
    let max = ScalerConfig { growth_interval: u32::MAX, ..ScalerConfig::default() };
    let mut st = ScaleState { scale: 2.0, growth_tracker: u32::MAX - 1, peak: 0.0, peak_ratio: 1.0 };
    st.update(&max, false);
    assert_eq!(st, ScaleState { scale: 4.0, growth_tracker: 0, peak: 0.0, peak_ratio: 1.0 });
}

/// Fuzz finding (scaler, crash-c412e289): a NaN gradient added by a backward
/// after `unscale` and before `step` was stepped on, because the check ran
/// at `unscale`. `step` now checks an already unscaled optimizer again.
#[test]
fn a_backward_between_unscale_and_step_cannot_sneak_in_a_nan() {
    let w = param(&[1.0, 2.0]);
    let mut opt = RecordingSgd::new(vec![w.clone()], 0.1);
    let mut scaler = GradScaler::new(ScalerConfig::default()).unwrap();
    let loss = |x: f32| w.mul(&Var::new(Tensor::from_vec(vec![x, 1.0], &[2]).unwrap())).unwrap().sum_all().unwrap();
    scaler.scale(&loss(0.5)).unwrap().backward().unwrap();
    assert_eq!(scaler.unscale(&mut opt).unwrap(), None);
    scaler.scale(&loss(f32::NAN)).unwrap().backward().unwrap();
    let out = scaler.step(&mut opt).unwrap();
    assert!(matches!(out, StepOutcome::Skipped { optimizer: 0, .. }), "{out:?}");
    assert!(opt.seen.is_empty(), "stepped on {:?}", opt.seen);
    scaler.update().unwrap();
    assert_eq!(scaler.scale_state(), ScaleState { scale: 32768.0, growth_tracker: 0, peak: 0.0, peak_ratio: 1.0 });
    assert_eq!(scaler.skipped_steps(), 1);
    // A clean step after the skipped one applies.
    w.zero_grad();
    scaler.scale(&loss(0.5)).unwrap().backward().unwrap();
    scaler.unscale(&mut opt).unwrap();
    assert_eq!(scaler.step(&mut opt).unwrap(), StepOutcome::Applied);
    assert_eq!(opt.seen, vec![vec![0.5, 1.0]]);
}
