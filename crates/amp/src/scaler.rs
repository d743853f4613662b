//! Loss scaling with PyTorch `GradScaler` semantics (the paper's steps 6–9).
//!
//! The scale multiplies the loss before backward so small activation
//! gradients stay inside FP16's range; gradients are divided by it before
//! the update. Dynamic scaling: any Inf/NaN gradient skips the step and
//! multiplies the scale by `backoff_factor`; after `growth_interval`
//! consecutive clean steps it is multiplied by `growth_factor`, unless that
//! would overflow to Inf (then only the counter resets). The scale is an f32,
//! as in PyTorch, so trajectories match it bit for bit.
//!
//! Beyond PyTorch: a scale floor and a limit on consecutive skipped steps
//! (reaching either stops training with a diagnosis, see
//! [`crate::GradScaler::update`]), and statistics-driven scaling
//! ([`StatsConfig`], the paper's §3.2 suggestion): the scale follows the
//! observed maximum gradient magnitude, and how far above it overflows
//! showed a step's maximum to reach, instead of probing by overflow.

/// Settings of a [`ScaleState`]; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalerConfig {
    /// Starting scale (PyTorch: 2^16).
    pub init_scale: f32,
    /// Multiplier after `growth_interval` clean steps (PyTorch: 2). An f64,
    /// as PyTorch's (a Python float): the product is formed in f64 and
    /// rounded to the f32 scale once.
    pub growth_factor: f64,
    /// Multiplier after a step with Inf/NaN gradients (PyTorch: 0.5); f64 as above.
    pub backoff_factor: f64,
    /// Consecutive clean steps before growth (PyTorch: 2000).
    pub growth_interval: u32,
    /// Whether the scale changes at all (false: static scaling).
    pub dynamic: bool,
    /// The smallest scale allowed (0: no floor). A backoff below it stops
    /// training: `GradScaler::update` returns `AmpError::ScaleCollapsed`.
    pub min_scale: f32,
    /// The most consecutive skipped steps allowed (0: no limit); one more
    /// stops training as the floor does.
    pub max_consecutive_skips: u32,
    /// Statistics-driven scaling instead of the growth-interval rule
    /// (`None`: PyTorch's rule). Only with `dynamic`.
    pub statistics: Option<StatsConfig>,
}

/// Statistics-driven scaling. The scaler observes the gradients it
/// unscales; a step that overflows holds Inf, so its maximum is bounded,
/// not observed, and the maximum is spiky (a step's can be several times
/// the steps' before it). So the rule keeps two numbers: `peak`, the
/// largest observed magnitude (each clean step's maximum |g|, unscaled,
/// against the previous peak decayed by `peak_decay`), and `peak_ratio`
/// (≥ 1), how far above `peak` a step's maximum has been shown to reach,
/// learned from overflows. After each clean step the scale becomes the
/// largest power of two with `scale × peak_ratio × peak ≤ 65504 /
/// headroom`: it drops before an overflow when gradients grow and grows as
/// soon as the headroom allows (the peak halves in ~34 steps at the default
/// decay), staying within `2 × headroom` of 65504 for the estimated
/// maximum.
///
/// An overflow at scale `s` shows that the step's maximum reached `65504 / s`:
/// `peak_ratio` becomes at least `65504 / (s × peak)`, which puts the
/// scale at `s / headroom` or lower, and the scale at least halves. The
/// ratio is relaxed only by probing, as PyTorch grows its scale: after
/// [`ScalerConfig::growth_interval`] clean steps in a row it is divided by
/// [`ScalerConfig::growth_factor`] (not below 1), so with steady gradients
/// the scale returns to a value that overflowed only after that many clean
/// steps, and an overflow there teaches the ratio again. Before the first
/// clean step there are no statistics and an overflow multiplies the scale
/// by `overflow_backoff` instead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatsConfig {
    /// Margin kept below 65504 (≥ 1): the maximum may grow this much
    /// between steps without overflowing.
    pub headroom: f32,
    /// Per-step decay of the remembered peak (in `[0, 1]`; 0: this step's
    /// maximum alone).
    pub peak_decay: f32,
    /// Multiplier of the scale after a step with Inf/NaN (in `(0, 1)`).
    pub overflow_backoff: f64,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { headroom: 1.5, peak_decay: 0.98, overflow_backoff: 1.0 / 256.0 }
    }
}

/// f16's largest finite value.
const F16_MAX: f64 = 65504.0;

impl Default for ScalerConfig {
    fn default() -> Self {
        ScalerConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            dynamic: true,
            min_scale: 0.0,
            max_consecutive_skips: 0,
            statistics: None,
        }
    }
}

impl ScalerConfig {
    /// A fixed scale that never changes (steps with Inf/NaN are still skipped).
    pub fn fixed(scale: f32) -> Self {
        ScalerConfig { init_scale: scale, dynamic: false, ..ScalerConfig::default() }
    }

    /// Statistics-driven scaling from `init_scale` with default settings.
    pub fn statistics(init_scale: f32) -> Self {
        ScalerConfig { init_scale, statistics: Some(StatsConfig::default()), ..ScalerConfig::default() }
    }

    /// The same settings with a scale floor and a consecutive-skip limit
    /// (0 turns either off).
    pub fn with_limits(self, min_scale: f32, max_consecutive_skips: u32) -> Self {
        ScalerConfig { min_scale, max_consecutive_skips, ..self }
    }

    /// Whether a floor or a skip limit is set.
    pub fn has_limits(&self) -> bool {
        self.min_scale > 0.0 || self.max_consecutive_skips > 0
    }
}

/// The scale, the count of consecutive clean steps and the statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleState {
    /// The current loss scale.
    pub scale: f32,
    /// Consecutive clean steps since the last change (statistics-driven
    /// scaling: since the last overflow or relaxation of `peak_ratio`).
    pub growth_tracker: u32,
    /// Statistics-driven scaling: the remembered peak gradient magnitude
    /// (unscaled; 0 before the first clean step).
    pub peak: f32,
    /// Statistics-driven scaling: how far above `peak` a step's maximum
    /// gradient magnitude has been shown to reach, learned from overflows
    /// (finite, ≥ 1; 1 until an overflow after the first clean step).
    pub peak_ratio: f32,
}

impl ScaleState {
    /// The state a scaler starts in.
    pub fn new(config: &ScalerConfig) -> Self {
        ScaleState { scale: config.init_scale, growth_tracker: 0, peak: 0.0, peak_ratio: 1.0 }
    }

    /// Whether the statistics could come from a run: a peak finite and ≥ 0,
    /// a ratio finite and ≥ 1.
    pub fn statistics_valid(&self) -> bool {
        self.peak.is_finite() && self.peak >= 0.0 && self.peak_ratio.is_finite() && self.peak_ratio >= 1.0
    }

    /// Advances by one step under `config`'s rule: PyTorch's
    /// ([`ScaleState::update`]) or, with [`ScalerConfig::statistics`], from
    /// `max_abs`, this step's largest unscaled gradient magnitude (ignored
    /// when `found_inf`).
    pub fn update_observed(&mut self, config: &ScalerConfig, found_inf: bool, max_abs: f32) {
        let Some(st) = config.statistics.filter(|_| config.dynamic) else {
            return self.update(config, found_inf);
        };
        if found_inf {
            self.growth_tracker = 0;
            if self.peak == 0.0 {
                // No statistics yet (the first steps): back off by a large step.
                self.scale = (self.scale as f64 * st.overflow_backoff) as f32;
                return;
            }
            // This step's maximum, unobserved, reached 65504 / scale: at
            // least this multiple of the peak (in f64: no overflow to Inf).
            let taught = F16_MAX / (self.scale as f64 * self.peak as f64);
            self.peak_ratio = taught.max(self.peak_ratio as f64).min(f32::MAX as f64) as f32;
            // The rule puts the scale at scale / headroom or lower; with a
            // headroom near 1 that may round back to the same power of two.
            self.scale = self.rule_scale(&st).min(self.scale * 0.5);
            return;
        }
        self.growth_tracker = self.growth_tracker.saturating_add(1);
        if self.growth_tracker >= config.growth_interval {
            // Probe: trust the observed gradients a step more.
            self.growth_tracker = 0;
            self.peak_ratio = ((self.peak_ratio as f64 / config.growth_factor) as f32).max(1.0);
        }
        let decayed = self.peak * st.peak_decay;
        self.peak = max_abs.max(decayed);
        if !(self.peak > 0.0 && self.peak.is_finite()) {
            // Nothing nonzero seen yet: no statistics, keep the scale.
            self.peak = 0.0;
            return;
        }
        self.scale = self.rule_scale(&st);
    }

    /// The largest power of two with `scale × peak_ratio × peak ≤ 65504 /
    /// headroom`, within f32's normal range (`peak` > 0).
    fn rule_scale(&self, st: &StatsConfig) -> f32 {
        let room = F16_MAX / (st.headroom as f64 * self.peak_ratio as f64 * self.peak as f64);
        // Its binary exponent, read from the bits: exact.
        let exp = ((room.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        2f32.powi(exp.clamp(-126, 127))
    }

    /// Advances by one step; `found_inf` is whether any gradient of any
    /// optimizer was Inf or NaN this step (PyTorch's `_amp_update_scale_`).
    pub fn update(&mut self, config: &ScalerConfig, found_inf: bool) {
        if !config.dynamic {
            return;
        }
        if found_inf {
            self.scale = (self.scale as f64 * config.backoff_factor) as f32;
            self.growth_tracker = 0;
        } else {
            // `>=` and saturation only matter for states no run reaches
            // (a tracker at or past the interval): they grow at once
            // instead of counting on to an overflow.
            let successful = self.growth_tracker.saturating_add(1);
            if successful >= config.growth_interval {
                let grown = (self.scale as f64 * config.growth_factor) as f32;
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.growth_tracker = 0;
            } else {
                self.growth_tracker = successful;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default statistics rule with a shorter probe interval.
    fn stats(growth_interval: u32) -> ScalerConfig {
        ScalerConfig { growth_interval, ..ScalerConfig::statistics(2f32.powi(24)) }
    }

    fn clean_steps(st: &mut ScaleState, c: &ScalerConfig, n: u32, max_abs: f32) {
        for _ in 0..n {
            st.update_observed(c, false, max_abs);
        }
    }

    fn is_power_of_two(x: f32) -> bool {
        x > 0.0 && x.to_bits() & 0x7f_ffff == 0
    }

    #[test]
    fn the_scale_is_the_largest_power_of_two_within_the_headroom() {
        let c = stats(2000);
        for max_abs in [1e-6f32, 3e-3, 0.01, 0.37, 1.0, 5.0, 1000.0] {
            let mut st = ScaleState::new(&c);
            clean_steps(&mut st, &c, 1, max_abs);
            let scaled = st.scale as f64 * max_abs as f64;
            assert!(is_power_of_two(st.scale), "{max_abs}: {}", st.scale);
            // Below 65504 with the headroom, and within 2× of that bound.
            assert!(scaled <= F16_MAX / 1.5 && scaled > F16_MAX / 3.0, "{max_abs}: scale {} × max {scaled}", st.scale);
            assert_eq!((st.peak, st.peak_ratio, st.growth_tracker), (max_abs, 1.0, 1));
        }
    }

    #[test]
    fn an_overflow_before_any_statistics_backs_off_by_the_large_step() {
        let c = stats(2000);
        let mut st = ScaleState::new(&c);
        st.update_observed(&c, true, 0.0);
        assert_eq!(st, ScaleState { scale: 2f32.powi(16), growth_tracker: 0, peak: 0.0, peak_ratio: 1.0 });
        // A clean step with no nonzero gradient is no statistic either.
        st.update_observed(&c, false, 0.0);
        st.update_observed(&c, true, 0.0);
        assert_eq!(st.scale, 2f32.powi(8));
    }

    #[test]
    fn growing_gradients_lower_the_scale_before_an_overflow_and_shrinking_ones_raise_it() {
        let c = stats(2000);
        let mut st = ScaleState::new(&c);
        clean_steps(&mut st, &c, 1, 0.01);
        let s0 = st.scale;
        assert_eq!(s0, 2f32.powi(22));
        // Four times larger gradients: four times smaller scale at once.
        st.update_observed(&c, false, 0.04);
        assert_eq!(st.scale, s0 / 4.0);
        // Back to 0.01: the peak decays (×0.98 a step, a quarter in 69
        // steps) and the scale follows, long before the probe interval.
        clean_steps(&mut st, &c, 30, 0.01);
        assert_eq!(st.scale, s0 / 4.0);
        clean_steps(&mut st, &c, 50, 0.01);
        assert_eq!((st.scale, st.peak), (s0, 0.01));
    }

    #[test]
    fn an_overflow_is_remembered_until_the_probe_interval() {
        let c = stats(100);
        let mut st = ScaleState::new(&c);
        clean_steps(&mut st, &c, 1, 0.01);
        let s0 = st.scale;
        // Some unobserved gradient overflowed at s0: it was ≥ 65504 / s0,
        // 1.56× the peak.
        st.update_observed(&c, true, 0.0);
        let taught = (F16_MAX / (s0 as f64 * 0.01f32 as f64)) as f32;
        assert_eq!(st, ScaleState { scale: s0 / 2.0, growth_tracker: 0, peak: 0.01, peak_ratio: taught });
        // Same observed gradients: the scale does not return to s0 before
        // 100 clean steps in a row ...
        for step in 1..100 {
            st.update_observed(&c, false, 0.01);
            assert_eq!(st.scale, s0 / 2.0, "clean step {step}");
        }
        // ... and then probes it once.
        st.update_observed(&c, false, 0.01);
        assert_eq!((st.scale, st.peak_ratio, st.growth_tracker), (s0, 1.0, 0));
        // An overflow in between restarts the count.
        st.update_observed(&c, true, 0.0);
        clean_steps(&mut st, &c, 60, 0.01);
        st.update_observed(&c, true, 0.0);
        assert_eq!(st.scale, s0 / 4.0);
        clean_steps(&mut st, &c, 99, 0.01);
        assert_eq!(st.scale, s0 / 4.0);
    }

    #[test]
    fn overflows_in_a_row_compound_the_ratio() {
        let c = stats(2000);
        let mut st = ScaleState::new(&c);
        clean_steps(&mut st, &c, 1, 0.01);
        let s0 = st.scale;
        for k in 1..=5 {
            st.update_observed(&c, true, 0.0);
            assert_eq!(st.scale, s0 / 2f32.powi(k), "overflow {k}");
            assert!(st.peak_ratio >= 1.5 * 2f32.powi(k - 1), "overflow {k}: ratio {}", st.peak_ratio);
        }
        // The learned ratio scales with the observed peak: gradients four
        // times smaller allow four times the scale without a probe.
        let s5 = st.scale;
        clean_steps(&mut st, &c, 100, 0.0025);
        assert_eq!(st.scale, s5 * 4.0);
    }

    #[test]
    fn the_ratio_relaxes_by_the_growth_factor_and_never_below_one() {
        let c = ScalerConfig { growth_factor: 4.0, ..stats(10) };
        let mut st = ScaleState::new(&c);
        clean_steps(&mut st, &c, 1, 1.0);
        st.peak_ratio = 40.0;
        clean_steps(&mut st, &c, 9, 1.0);
        assert_eq!(st.peak_ratio, 10.0);
        clean_steps(&mut st, &c, 10, 1.0);
        assert_eq!(st.peak_ratio, 2.5);
        clean_steps(&mut st, &c, 10, 1.0);
        assert_eq!(st.peak_ratio, 1.0);
        clean_steps(&mut st, &c, 1000, 1.0);
        assert_eq!((st.peak_ratio, st.scale), (1.0, 32768.0));
    }

    #[test]
    fn with_no_headroom_an_overflow_still_halves_the_scale() {
        let c = ScalerConfig {
            statistics: Some(StatsConfig { headroom: 1.0, ..StatsConfig::default() }),
            ..ScalerConfig::statistics(1024.0)
        };
        let mut st = ScaleState::new(&c);
        clean_steps(&mut st, &c, 1, 0.75);
        assert_eq!(st.scale, 65536.0);
        st.update_observed(&c, true, 0.0);
        assert_eq!(st.scale, 32768.0);
        st.update_observed(&c, true, 0.0);
        assert_eq!(st.scale, 16384.0);
    }

    #[test]
    fn extreme_statistics_stay_finite() {
        let c = stats(2000);
        let mut st = ScaleState::new(&c);
        clean_steps(&mut st, &c, 1, f32::from_bits(1));
        assert_eq!(st.scale, 2f32.powi(127));
        // 65504 / (2^-126 × 1e-30) is past f32's range: the ratio saturates.
        let mut st = ScaleState { scale: 2f32.powi(-126), growth_tracker: 0, peak: 1e-30, peak_ratio: 1.0 };
        st.update_observed(&c, true, 0.0);
        assert_eq!((st.peak_ratio, st.scale), (f32::MAX, f32::from_bits(1 << 22)));
        assert!(st.statistics_valid());
        clean_steps(&mut st, &c, 1, 3e38);
        assert_eq!((st.peak, st.scale), (3e38, 2f32.powi(-126)));
        assert!(st.statistics_valid());
    }
}
