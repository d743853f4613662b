//! The loss scaler (`GradScaler`) driven by arbitrary sequences of
//! backward / unscale / step / update / zero_grad / state export and restore
//! over two optimizers, with gradients that overflow or hold Inf/NaN, against
//! a model written from PyTorch's `GradScaler` semantics: same errors, same
//! found-Inf decisions, no optimizer ever steps on a non-finite gradient,
//! same scale, growth tracker and skipped-step count after every call.
//! With statistics-driven scaling the model takes the scale from the scaler
//! after each update and checks the rule's invariants instead: valid
//! statistics, an overflow after the first statistics at least halves the
//! scale, a clean step with statistics leaves a power of two.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mixprec_amp::scaler::{ScaleState, ScalerConfig, StatsConfig};
use mixprec_amp::{AmpError, AmpOptimizer, GradScaler, ScalerSnapshot, StepOutcome};
use mixprec_autograd::Var;
use mixprec_autograd::tensor::Tensor;

#[derive(Arbitrary, Debug)]
struct Case {
    init_scale: u8,
    growth: u8,
    backoff: u8,
    interval: u8,
    dynamic: bool,
    stats: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    /// Backward `Σ x·w` scaled, for optimizer 0 or 1: dL/dw = x·scale, added to the gradient.
    Backward(bool, u8),
    Unscale(bool),
    Step(bool),
    Update,
    ZeroGrad(bool),
    /// Export the state, change it, and load it back.
    Reload {
        scale: u8,
        tracker: u32,
        skipped: u8,
        enabled: bool,
        peak: u8,
        ratio: u8,
    },
}

const XS: [f32; 8] = [0.5, -3.0, 1.0e-3, f32::NAN, f32::INFINITY, 1.0e35, -2.0e-30, 0.0];
const SCALES: [f32; 8] = [65536.0, 1.0, 3.0, 1.0e-30, 3.0e38, 0.0, f32::INFINITY, 2.0e-45];
/// Restored statistics: peaks and peak ratios, valid and not.
const PEAKS: [f32; 4] = [0.0, 0.375, -1.0, f32::NAN];
const RATIOS: [f32; 4] = [1.0, 2.5, 0.5, f32::INFINITY];

/// One single-element parameter per optimizer; records whether it stepped.
struct Opt {
    params: Vec<Var>,
    steps: usize,
}

impl AmpOptimizer for Opt {
    fn amp_params(&self) -> &[Var] {
        &self.params
    }
    fn amp_step(&mut self) -> mixprec_amp::Result<()> {
        self.steps += 1;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    None,
    Unscaled,
    Stepped,
}

/// The model: PyTorch `GradScaler` state and per-optimizer bookkeeping.
#[derive(Clone, Debug)]
struct Model {
    config: ScalerConfig,
    enabled: bool,
    scale: f32,
    tracker: u32,
    skipped: u64,
    grad: [Option<f32>; 2],
    stage: [Stage; 2],
    found: [bool; 2],
    steps: [usize; 2],
}

fn config_ok(c: &ScalerConfig) -> bool {
    c.init_scale.is_finite()
        && c.init_scale > 0.0
        && (!c.dynamic
            || (c.growth_factor > 1.0
                && c.growth_factor.is_finite()
                && c.backoff_factor > 0.0
                && c.backoff_factor < 1.0
                && c.growth_interval > 0))
}

impl Model {
    fn unscale(&mut self, o: usize) -> Result<bool, &'static str> {
        match self.stage[o] {
            Stage::Unscaled => return Err("AlreadyUnscaled"),
            Stage::Stepped => return Err("UnscaleAfterStep"),
            Stage::None => {}
        }
        self.stage[o] = Stage::Unscaled;
        let inv = (1.0 / f64::from(self.scale)) as f32;
        if let Some(g) = self.grad[o].as_mut() {
            let r = *g * inv;
            self.found[o] = !g.is_finite() || !r.is_finite();
            *g = r;
        }
        Ok(self.found[o])
    }

    fn update(&mut self) -> Result<(), &'static str> {
        if self.stage == [Stage::None; 2] {
            return Err("NothingToUpdate");
        }
        let found = self.found.iter().zip(&self.stage).any(|(&f, &s)| f && s != Stage::None);
        if found {
            self.skipped += 1;
        }
        if self.config.dynamic {
            if found {
                self.scale = (f64::from(self.scale) * self.config.backoff_factor) as f32;
                self.tracker = 0;
            } else if u64::from(self.tracker) + 1 >= u64::from(self.config.growth_interval) {
                let grown = (f64::from(self.scale) * self.config.growth_factor) as f32;
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.tracker = 0;
            } else {
                self.tracker += 1;
            }
        }
        self.stage = [Stage::None; 2];
        self.found = [false; 2];
        Ok(())
    }
}

fn name(e: &AmpError) -> &'static str {
    match e {
        AmpError::AlreadyUnscaled => "AlreadyUnscaled",
        AmpError::UnscaleAfterStep => "UnscaleAfterStep",
        AmpError::AlreadyStepped => "AlreadyStepped",
        AmpError::NothingToUpdate => "NothingToUpdate",
        AmpError::BadScalerConfig { .. } => "BadScalerConfig",
        _ => "other",
    }
}

fn same(a: Option<f32>, b: Option<f32>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

fuzz_target!(|case: Case| {
    let config = ScalerConfig {
        init_scale: SCALES[usize::from(case.init_scale % 8)],
        growth_factor: [2.0, 1.5, 1.0, 1e30, f64::INFINITY, 0.5][usize::from(case.growth % 6)],
        backoff_factor: [0.5, 0.25, 1.0, 1e-30, 0.0, 0.99][usize::from(case.backoff % 6)],
        growth_interval: u32::from(case.interval % 6),
        dynamic: case.dynamic,
        statistics: case.stats.then(StatsConfig::default),
        ..ScalerConfig::default()
    };
    let mut scaler = match GradScaler::new(config) {
        Ok(s) => {
            assert!(config_ok(&config), "accepted {config:?}");
            s
        }
        Err(e) => {
            assert!(!config_ok(&config) && matches!(e, AmpError::BadScalerConfig { .. }), "{config:?}: {e}");
            return;
        }
    };
    let mut opts: Vec<Opt> = (0..2)
        .map(|_| Opt { params: vec![Var::parameter(Tensor::from_vec(vec![1.0f32], &[1]).unwrap())], steps: 0 })
        .collect();
    let mut m = Model {
        config,
        enabled: true,
        scale: config.init_scale,
        tracker: 0,
        skipped: 0,
        grad: [None; 2],
        stage: [Stage::None; 2],
        found: [false; 2],
        steps: [0; 2],
    };
    for op in case.ops.iter().take(64) {
        let got: Result<(), String> = match *op {
            Op::Backward(o, x) => {
                let o = usize::from(o);
                let x = XS[usize::from(x % 8)];
                let w = &opts[o].params[0];
                let loss = w.mul(&Var::new(Tensor::from_vec(vec![x], &[1]).unwrap())).unwrap().sum_all().unwrap();
                scaler.scale(&loss).unwrap().backward().unwrap();
                let s = if m.enabled { m.scale } else { 1.0 };
                let g = x * s;
                m.grad[o] = Some(m.grad[o].map_or(g, |old| old + g));
                Ok(())
            }
            Op::Unscale(o) => {
                let o = usize::from(o);
                let want = if m.enabled { m.unscale(o) } else { Ok(false) };
                match (scaler.unscale(&mut opts[o]), want) {
                    (Ok(f), Ok(w)) => {
                        assert_eq!(f.is_some(), w, "unscale({o}) found {f:?}, model {w}");
                        Ok(())
                    }
                    (Err(e), Err(w)) => {
                        assert_eq!(name(&e), w);
                        Ok(())
                    }
                    (g, w) => Err(format!("unscale({o}) = {g:?}, model {w:?}")),
                }
            }
            Op::Step(o) => {
                let o = usize::from(o);
                let want: Result<bool, &str> = if !m.enabled {
                    Ok(true)
                } else if m.stage[o] == Stage::Stepped {
                    Err("AlreadyStepped")
                } else {
                    if m.stage[o] == Stage::None {
                        m.unscale(o).expect("a fresh optimizer unscales");
                    } else if !m.found[o] {
                        // Gradients added since `unscale` are checked again.
                        m.found[o] = m.grad[o].is_some_and(|g| !g.is_finite());
                    }
                    m.stage[o] = Stage::Stepped;
                    Ok(!m.found[o])
                };
                if want == Ok(true) {
                    m.steps[o] += 1;
                }
                let enabled = m.enabled;
                let before = opts[o].steps;
                let got = scaler.step(&mut opts[o]);
                if enabled && opts[o].steps != before {
                    let g = opts[o].params[0].grad().map(|g| g.to_vec_f32().unwrap()[0]);
                    assert!(g.is_none_or(f32::is_finite), "stepped on a non-finite gradient {g:?}");
                }
                match (got, want) {
                    (Ok(StepOutcome::Applied), Ok(true)) | (Ok(StepOutcome::Skipped { .. }), Ok(false)) => Ok(()),
                    (Err(e), Err(w)) if name(&e) == w => Ok(()),
                    (g, w) => Err(format!("step({o}) = {g:?}, model {w:?}")),
                }
            }
            Op::Update => {
                let before = scaler.scale_state();
                // The settings in force (a restored snapshot may have changed them).
                let stats = scaler.config().statistics.is_some() && scaler.config().dynamic;
                let want = if m.enabled { m.update() } else { Ok(()) };
                let found = m.enabled && m.skipped != scaler.skipped_steps();
                let got = scaler.update();
                if stats && m.enabled && got.is_ok() {
                    let st = scaler.scale_state();
                    assert!(st.statistics_valid(), "statistics after update: {st:?}");
                    if found && before.peak > 0.0 {
                        assert!(st.scale <= before.scale * 0.5, "overflow did not halve: {before:?} -> {st:?}");
                        assert_eq!(st.peak, before.peak, "an overflow changed the peak");
                    }
                    if !found && st.peak > 0.0 {
                        assert_eq!(st.scale.to_bits() & 0x7f_ffff, 0, "not a power of two: {st:?}");
                    }
                    m.scale = st.scale;
                    m.tracker = st.growth_tracker;
                }
                match (got, want) {
                    (Ok(()), Ok(())) => Ok(()),
                    (Err(e), Err(w)) if name(&e) == w => Ok(()),
                    (g, w) => Err(format!("update() = {g:?}, model {w:?}")),
                }
            }
            Op::ZeroGrad(o) => {
                let o = usize::from(o);
                opts[o].params[0].zero_grad();
                m.grad[o] = None;
                Ok(())
            }
            Op::Reload { scale, tracker, skipped, enabled, peak, ratio } => {
                let snap = scaler.state();
                assert_eq!(snap.enabled, m.enabled);
                assert_eq!(snap.skipped_steps, m.skipped);
                let new = ScalerSnapshot {
                    state: ScaleState {
                        scale: SCALES[usize::from(scale % 8)],
                        growth_tracker: tracker,
                        peak: PEAKS[usize::from(peak % 4)],
                        peak_ratio: RATIOS[usize::from(ratio % 4)],
                    },
                    skipped_steps: u64::from(skipped),
                    enabled,
                    ..snap
                };
                let ok = !enabled
                    || (config_ok(&snap.config)
                        && new.state.scale.is_finite()
                        && new.state.scale >= 0.0
                        && new.state.statistics_valid()
                        && (!snap.config.dynamic
                            || snap.config.statistics.is_some()
                            || tracker < snap.config.growth_interval));
                match scaler.load_state(new) {
                    Ok(()) if ok => {
                        m.enabled = enabled;
                        if !enabled {
                            m.config = ScalerConfig::fixed(1.0);
                        }
                        m.scale = new.state.scale;
                        m.tracker = tracker;
                        m.skipped = u64::from(skipped);
                        m.stage = [Stage::None; 2];
                        m.found = [false; 2];
                        Ok(())
                    }
                    Err(AmpError::BadScalerConfig { .. } | AmpError::BadScalerState { .. }) if !ok => Ok(()),
                    g => Err(format!("load_state({new:?}) = {g:?}, model accepts: {ok}")),
                }
            }
        };
        if let Err(e) = got {
            panic!("{e}\nmodel {m:?}");
        }
        let st = scaler.scale_state();
        if m.enabled {
            assert_eq!(st.scale.to_bits(), m.scale.to_bits(), "scale after {op:?}: model {m:?}");
            assert_eq!(st.growth_tracker, m.tracker, "tracker after {op:?}: model {m:?}");
        }
        assert_eq!(scaler.skipped_steps(), m.skipped, "skipped after {op:?}");
        assert_eq!(scaler.is_enabled(), m.enabled);
        for o in 0..2 {
            let g = opts[o].params[0].grad().map(|g| g.to_vec_f32().unwrap()[0]);
            assert!(same(g, m.grad[o]), "grad {o} after {op:?}: {g:?}, model {:?}", m.grad[o]);
            assert_eq!(opts[o].steps, m.steps[o], "steps of {o} after {op:?}");
        }
    }
});
