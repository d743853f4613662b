//! The scale trajectory equals PyTorch's `GradScaler` bit for bit on scripted
//! sequences of clean / Inf / NaN steps, with default and non-default
//! growth, backoff and interval (fixture: scripts/gradscaler_fixture.py).

use mixprec_amp::scaler::{ScaleState, ScalerConfig};
use mixprec_amp::{GradScaler, StepOutcome};
use mixprec_autograd::Var;
use mixprec_autograd::tensor::Tensor;
use serde_json::Value;

#[test]
fn trajectories_match_pytorch_gradscaler() {
    let text = include_str!("fixtures/gradscaler_trajectories.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 18);
    let mut steps = 0;
    for case in cases {
        let c = &case["config"];
        let config = ScalerConfig {
            init_scale: c["init_scale"].as_f64().unwrap() as f32,
            growth_factor: c["growth_factor"].as_f64().unwrap(),
            backoff_factor: c["backoff_factor"].as_f64().unwrap(),
            growth_interval: c["growth_interval"].as_u64().unwrap() as u32,
            dynamic: true,
            ..ScalerConfig::default()
        };
        let mut state = ScaleState::new(&config);
        for (i, step) in case["trajectory"].as_array().unwrap().iter().enumerate() {
            let events: Vec<&str> = step["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
            let applied: Vec<bool> = step["applied"].as_array().unwrap().iter().map(|a| a.as_bool().unwrap()).collect();
            // PyTorch skips exactly the optimizers whose own gradients were non-finite.
            for (e, a) in events.iter().zip(&applied) {
                assert_eq!(*a, *e == "ok", "{} step {i}: applied", c["name"]);
            }
            state.update(&config, events.iter().any(|e| *e != "ok"));
            let want = step["scale"].as_f64().unwrap() as f32;
            assert_eq!(
                state.scale.to_bits(),
                want.to_bits(),
                "{} step {i}: scale {} vs {want}",
                c["name"],
                state.scale
            );
            assert_eq!(state.growth_tracker as u64, step["growth_tracker"].as_u64().unwrap(), "{} step {i}", c["name"]);
            steps += 1;
        }
    }
    assert!(steps > 5000);
}

/// A minimal optimizer for the API replay: `w ← w − g`, counting its steps.
struct Sub {
    params: Vec<Var>,
    steps: usize,
}

impl mixprec_amp::AmpOptimizer for Sub {
    fn amp_params(&self) -> &[Var] {
        &self.params
    }
    fn amp_step(&mut self) -> mixprec_amp::Result<()> {
        self.steps += 1;
        Ok(())
    }
}

/// The same trajectories through the user API: one parameter per
/// optimizer, its gradient made Inf/NaN as the fixture's event says;
/// `GradScaler::step` must apply exactly the optimizers PyTorch applied and
/// the scale must follow PyTorch's bit for bit.
#[test]
fn the_scaler_api_replays_pytorch_step_by_step() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/gradscaler_trajectories.json")).unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        let c = &case["config"];
        let config = ScalerConfig {
            init_scale: c["init_scale"].as_f64().unwrap() as f32,
            growth_factor: c["growth_factor"].as_f64().unwrap(),
            backoff_factor: c["backoff_factor"].as_f64().unwrap(),
            growth_interval: c["growth_interval"].as_u64().unwrap() as u32,
            dynamic: true,
            ..ScalerConfig::default()
        };
        let mut scaler = GradScaler::new(config).unwrap();
        let traj = case["trajectory"].as_array().unwrap();
        let n = traj[0]["events"].as_array().unwrap().len();
        let mut opts: Vec<Sub> = (0..n)
            .map(|_| Sub { params: vec![Var::parameter(Tensor::from_vec(vec![0.0f32; 3], &[3]).unwrap())], steps: 0 })
            .collect();
        for (i, step) in traj.iter().enumerate() {
            for (o, e) in opts.iter().zip(step["events"].as_array().unwrap()) {
                let bad = match e.as_str().unwrap() {
                    "inf" => f32::INFINITY,
                    "-inf" => f32::NEG_INFINITY,
                    "nan" => f32::NAN,
                    _ => 1.0,
                };
                let g = Tensor::from_vec(vec![1.0f32, bad, 2.0], &[3]).unwrap();
                o.params[0].param().unwrap().set_grad(Some(g)).unwrap();
            }
            for (o, a) in opts.iter_mut().zip(step["applied"].as_array().unwrap()) {
                let out = scaler.step(o).unwrap();
                assert_eq!(out.applied(), a.as_bool().unwrap(), "{} step {i}", c["name"]);
                assert!(out == StepOutcome::Applied || !a.as_bool().unwrap());
            }
            scaler.update().unwrap();
            let want = step["scale"].as_f64().unwrap() as f32;
            assert_eq!(scaler.scale_factor().to_bits(), want.to_bits(), "{} step {i}", c["name"]);
            assert_eq!(scaler.scale_state().growth_tracker as u64, step["growth_tracker"].as_u64().unwrap());
        }
        let applied: usize =
            traj.iter().map(|s| s["applied"].as_array().unwrap().iter().filter(|a| a.as_bool().unwrap()).count()).sum();
        assert_eq!(opts.iter().map(|o| o.steps).sum::<usize>(), applied, "{}", c["name"]);
    }
}

#[test]
fn static_scale_never_moves() {
    let config = ScalerConfig::fixed(128.0);
    let mut s = ScaleState::new(&config);
    for i in 0..5000 {
        s.update(&config, i % 7 == 0);
    }
    assert_eq!(s.scale, 128.0);
}
