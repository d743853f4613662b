//! The scale trajectory equals PyTorch's `GradScaler` bit for bit on scripted
//! sequences of clean / Inf / NaN steps, with default and non-default
//! growth, backoff and interval (fixture: scripts/gradscaler_fixture.py).

use mixprec_amp::scaler::{ScaleState, ScalerConfig};
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

#[test]
fn static_scale_never_moves() {
    let config = ScalerConfig::fixed(128.0);
    let mut s = ScaleState::new(&config);
    for i in 0..5000 {
        s.update(&config, i % 7 == 0);
    }
    assert_eq!(s.scale, 128.0);
}
