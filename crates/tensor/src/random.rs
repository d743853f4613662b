//! Reproducible randomness: one named, versioned generator and samplers that
//! give the same bits from a seed on every platform.
//!
//! [`Generator`] is ChaCha8 (`rand_chacha`, whose output is fixed by the
//! cipher and checked against reference vectors) keyed from a `u64` seed by
//! SplitMix64; everything is defined on its stream of little-endian 32-bit
//! words, so the algorithm is [`ALGORITHM`] and nothing else. The samplers
//! use only IEEE-754 `+ − × ÷ √` and integer operations in a fixed order
//! (Rust never contracts `a*b + c` into an FMA), and their own logarithm,
//! sine and cosine ([`ln`], [`sin_cos_turns`]) instead of the platform's
//! libm, so `randn` gives the same bits on x86-64 and aarch64.
//!
//! How each sampler consumes words (part of the version):
//! - `next_u64`: two words, the first is the low half;
//! - uniform `f32` in `[0, 1)`: one word, `(w >> 8) · 2^-24`;
//! - uniform `f64` in `[0, 1)`: one `u64`, `(x >> 11) · 2^-53`;
//! - normals: Box–Muller on two `u64`s per *pair* of samples
//!   (`u1 = ((x1 >> 11) + 1) · 2^-53 ∈ (0, 1]`, angle `2π·(x2 >> 11)·2^-53`),
//!   `z0 = r·cos θ`, `z1 = r·sin θ` with `r = √(−2 ln u1)` in f64, then one
//!   rounding to the output type; an odd-length fill discards the last `z1`;
//! - `below(n)`: Lemire's multiply-and-reject on `u64`s;
//! - `shuffle`: Fisher–Yates from the last element down, `below(i + 1)`.
//!
//! [`CounterStream`] is the counter-based stream for dropout-style masks:
//! element `i` of a buffer always uses word `i` of a ChaCha8 stream, whatever
//! the chunking or thread count. Generator state ([`GeneratorState`]: seed,
//! stream, word position) round-trips bit-exactly for checkpoints.
//!
//! ```
//! use mixprec_tensor::random::{Generator, kaiming_uniform_bound};
//! let mut g = Generator::new(0);
//! let mut w = vec![0f32; 784 * 512];
//! let bound = kaiming_uniform_bound(784, std::f64::consts::SQRT_2) as f32;
//! g.fill_uniform_f32(&mut w, -bound, bound);
//! let state = g.state();
//! let next = g.uniform_f32();
//! assert_eq!(Generator::from_state(&state).uniform_f32(), next);
//! ```

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// The name and version of the generator and of every sampler's definition.
/// A change to any bit a seed produces must change this string.
pub const ALGORITHM: &str = "mixprec-chacha8-v1";

/// 2^-24 and 2^-53, the uniform samplers' steps.
const TWO_POW_M24: f32 = 1.0 / 16_777_216.0;
const TWO_POW_M53: f64 = 1.0 / 9_007_199_254_740_992.0;

/// The 32-byte ChaCha key of a seed: four SplitMix64 outputs, little-endian.
/// SplitMix64 spreads nearby seeds (0, 1, 2, …) over unrelated keys.
fn key_of(seed: u64) -> [u8; 32] {
    let mut state = seed;
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    key
}

fn chacha(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(key_of(seed));
    rng.set_stream(stream);
    rng
}

/// The project's random-number generator (see the module docs for the exact
/// stream). Cheap to clone; a clone continues the same stream independently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generator {
    seed: u64,
    rng: ChaCha8Rng,
}

/// Everything needed to restore a [`Generator`] bit-exactly: every field
/// combination is valid. `word_pos` counts 32-bit words from the start of
/// the stream (68 bits are significant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GeneratorState {
    /// The seed the generator was created from.
    pub seed: u64,
    /// The ChaCha stream number (0 for [`Generator::new`]).
    pub stream: u64,
    /// Words consumed so far.
    pub word_pos: u128,
}

impl GeneratorState {
    /// Bytes of [`to_bytes`](Self::to_bytes): magic `MPRG`, format version
    /// (u32), seed, stream, word position, all little-endian.
    pub const BYTES: usize = 40;
    const MAGIC: [u8; 4] = *b"MPRG";
    const FORMAT: u32 = 1;

    /// A fixed-size little-endian encoding for checkpoints.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[0..4].copy_from_slice(&Self::MAGIC);
        out[4..8].copy_from_slice(&Self::FORMAT.to_le_bytes());
        out[8..16].copy_from_slice(&self.seed.to_le_bytes());
        out[16..24].copy_from_slice(&self.stream.to_le_bytes());
        out[24..40].copy_from_slice(&self.word_pos.to_le_bytes());
        out
    }

    /// Decodes [`to_bytes`](Self::to_bytes); `None` if the length, magic or
    /// format version is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::BYTES] = bytes.try_into().ok()?;
        if bytes[0..4] != Self::MAGIC || bytes[4..8] != Self::FORMAT.to_le_bytes() {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Some(Self {
            seed: u64_at(8),
            stream: u64_at(16),
            word_pos: u128::from_le_bytes(bytes[24..40].try_into().expect("16 bytes")),
        })
    }
}

impl Generator {
    /// The generator for `seed`, on stream 0.
    pub fn new(seed: u64) -> Self {
        Self::with_stream(seed, 0)
    }

    /// The generator for `seed` on another of its 2^64 independent streams
    /// (e.g. one per data-loader worker or per purpose).
    pub fn with_stream(seed: u64, stream: u64) -> Self {
        Self { seed, rng: chacha(seed, stream) }
    }

    /// The seed this generator was created from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current state, for checkpoints.
    pub fn state(&self) -> GeneratorState {
        GeneratorState { seed: self.seed, stream: self.rng.get_stream(), word_pos: self.rng.get_word_pos() }
    }

    /// A generator that continues exactly where the one that produced `state` was.
    pub fn from_state(state: &GeneratorState) -> Self {
        let mut rng = chacha(state.seed, state.stream);
        rng.set_word_pos(state.word_pos);
        Self { seed: state.seed, rng }
    }

    /// A new, independent generator seeded from this one's next `u64`
    /// (advances this generator by two words).
    pub fn fork(&mut self) -> Generator {
        Generator::new(self.next_u64())
    }

    /// A counter-based stream keyed from this generator's next `u64`
    /// (advances this generator by two words): one per dropout call.
    pub fn counter_stream(&mut self) -> CounterStream {
        CounterStream::new(self.next_u64(), 0)
    }

    /// The next word of the stream.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// The next two words, the first as the low half.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let lo = self.next_u32() as u64;
        let hi = self.next_u32() as u64;
        lo | (hi << 32)
    }

    /// Uniform in `[0, 1)` with 24 random bits (one word).
    #[inline]
    pub fn uniform_f32(&mut self) -> f32 {
        unit_f32(self.next_u32())
    }

    /// Uniform in `[0, 1)` with 53 random bits (two words).
    #[inline]
    pub fn uniform_f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }

    /// A pair of independent standard normal samples (four words).
    #[inline]
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let x1 = self.next_u64();
        let x2 = self.next_u64();
        box_muller(x1, x2)
    }

    /// Uniform integer in `[0, n)`; `n == 0` returns 0 and draws nothing.
    /// Unbiased (Lemire's method: a `u64` per try, retried with probability < n/2^64).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Shuffles `items` in place (Fisher–Yates: for `i` from the last index
    /// down to 1, swap `i` with `below(i + 1)`).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// A uniformly random permutation of `0..n` (the shuffle of `0..n`).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }

    /// Fills `out` with `lo + (hi − lo)·u`, `u` uniform in `[0, 1)` (one word
    /// each), computed in f64 and rounded once. The result lies in `[lo, hi]`
    /// (rounding can reach `hi`); `lo == hi` gives `lo` everywhere.
    pub fn fill_uniform_f32(&mut self, out: &mut [f32], lo: f32, hi: f32) {
        let (lo, width) = (f64::from(lo), f64::from(hi) - f64::from(lo));
        for x in out {
            *x = (lo + width * f64::from(self.uniform_f32())) as f32;
        }
    }

    /// Fills `out` with `lo + (hi − lo)·u`, `u` uniform in `[0, 1)` with 53
    /// bits (two words each).
    pub fn fill_uniform_f64(&mut self, out: &mut [f64], lo: f64, hi: f64) {
        let width = hi - lo;
        for x in out {
            *x = lo + width * self.uniform_f64();
        }
    }

    /// Fills `out` with `mean + std·z`, `z` standard normal (Box–Muller pairs,
    /// four words per pair), computed in f64 and rounded once to f32.
    pub fn fill_normal_f32(&mut self, out: &mut [f32], mean: f32, std: f32) {
        let (mean, std) = (f64::from(mean), f64::from(std));
        let mut pairs = out.chunks_exact_mut(2);
        for pair in &mut pairs {
            let (z0, z1) = self.normal_pair();
            pair[0] = (mean + std * z0) as f32;
            pair[1] = (mean + std * z1) as f32;
        }
        if let [last] = pairs.into_remainder() {
            *last = (mean + std * self.normal_pair().0) as f32;
        }
    }

    /// Fills `out` with `mean + std·z`, `z` standard normal (as
    /// [`fill_normal_f32`](Self::fill_normal_f32), without the final rounding).
    pub fn fill_normal_f64(&mut self, out: &mut [f64], mean: f64, std: f64) {
        let mut pairs = out.chunks_exact_mut(2);
        for pair in &mut pairs {
            let (z0, z1) = self.normal_pair();
            pair[0] = mean + std * z0;
            pair[1] = mean + std * z1;
        }
        if let [last] = pairs.into_remainder() {
            *last = mean + std * self.normal_pair().0;
        }
    }
}

/// Kaiming (He) uniform bound `gain·√(3 / fan_in)`: `U(−b, b)` has variance
/// `gain² / fan_in` (gain √2 for ReLU; PyTorch's `Linear` default is gain
/// `√(1/3)`, i.e. `b = 1/√fan_in`). 0 when `fan_in` is 0 (nothing to fill).
pub fn kaiming_uniform_bound(fan_in: usize, gain: f64) -> f64 {
    if fan_in == 0 { 0.0 } else { gain * (3.0 / fan_in as f64).sqrt() }
}

/// Kaiming (He) normal standard deviation `gain / √fan_in`; 0 when `fan_in` is 0.
pub fn kaiming_normal_std(fan_in: usize, gain: f64) -> f64 {
    if fan_in == 0 { 0.0 } else { gain / (fan_in as f64).sqrt() }
}

/// Xavier (Glorot) uniform bound `gain·√(6 / (fan_in + fan_out))`; 0 when both are 0.
pub fn xavier_uniform_bound(fan_in: usize, fan_out: usize, gain: f64) -> f64 {
    let fans = fan_in as f64 + fan_out as f64;
    if fans == 0.0 { 0.0 } else { gain * (6.0 / fans).sqrt() }
}

/// Xavier (Glorot) normal standard deviation `gain·√(2 / (fan_in + fan_out))`; 0 when both are 0.
pub fn xavier_normal_std(fan_in: usize, fan_out: usize, gain: f64) -> f64 {
    let fans = fan_in as f64 + fan_out as f64;
    if fans == 0.0 { 0.0 } else { gain * (2.0 / fans).sqrt() }
}

/// A counter-based random stream: word `i` is a pure function of the key and
/// `i` (ChaCha8 in counter mode: word `i` is word `i % 16` of block `i / 16`).
///
/// Dropout masks take element `i` from word `i`, so a mask is the same
/// whether it is produced in one call, in chunks, or on any number of threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CounterStream {
    seed: u64,
    stream: u64,
}

impl CounterStream {
    /// The stream `stream` of the key derived from `seed` (as [`Generator`]).
    pub fn new(seed: u64, stream: u64) -> Self {
        Self { seed, stream }
    }

    /// The seed the key is derived from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The ChaCha stream number.
    pub fn stream(&self) -> u64 {
        self.stream
    }

    fn at(&self, start: u64) -> ChaCha8Rng {
        let mut rng = chacha(self.seed, self.stream);
        rng.set_word_pos(u128::from(start));
        rng
    }

    /// Writes words `start .. start + out.len()` into `out`.
    pub fn words(&self, start: u64, out: &mut [u32]) {
        let mut rng = self.at(start);
        for w in out {
            *w = rng.next_u32();
        }
    }

    /// Uniform `[0, 1)` values of elements `start ..`: `(word >> 8) · 2^-24`.
    pub fn fill_uniform_f32(&self, start: u64, out: &mut [f32]) {
        let mut rng = self.at(start);
        for x in out {
            *x = unit_f32(rng.next_u32());
        }
    }

    /// Keep flags of elements `start ..`: element `i` is kept iff its uniform
    /// value is `< keep_prob` (so `keep_prob ≤ 0` keeps none, `≥ 1` keeps all;
    /// NaN keeps none).
    pub fn fill_keep_mask(&self, start: u64, keep_prob: f32, out: &mut [bool]) {
        let threshold = keep_threshold(keep_prob);
        let mut rng = self.at(start);
        for keep in out {
            *keep = rng.next_u32() >> 8 < threshold;
        }
    }

    /// Inverted-dropout multipliers of elements `start ..` for drop
    /// probability `p`: `1 / (1 − p)` where kept (the keep flag of
    /// [`fill_keep_mask`](Self::fill_keep_mask) with `keep_prob = 1 − p`), else 0.
    /// `p == 0` gives all ones; `p ≥ 1` all zeros.
    pub fn fill_dropout_scale_f32(&self, start: u64, p: f32, out: &mut [f32]) {
        let keep_prob = 1.0 - p;
        let scale = if keep_prob > 0.0 { 1.0 / keep_prob } else { 0.0 };
        let threshold = keep_threshold(keep_prob);
        let mut rng = self.at(start);
        // Branch-free select: the keep decision is random, so a branch would
        // mispredict at the drop rate.
        let scale_bits = scale.to_bits();
        for x in out {
            let keep_mask = 0u32.wrapping_sub(u32::from(rng.next_u32() >> 8 < threshold));
            *x = f32::from_bits(scale_bits & keep_mask);
        }
    }
}

/// The integer form of `unit_f32(w) < keep_prob`: with `m = w >> 8`,
/// `m·2^-24 < p ⟺ m < ⌈p·2^24⌉` (exact: `p·2^24` is a scaling by a power of two).
fn keep_threshold(keep_prob: f32) -> u32 {
    if keep_prob.is_nan() || keep_prob <= 0.0 {
        return 0;
    }
    let scaled = (f64::from(keep_prob) * 16_777_216.0).min(16_777_216.0);
    // ⌈x⌉ for 0 < x ≤ 2^24 without libm: the truncation, plus one if
    // something was cut off.
    let t = scaled as u32;
    if f64::from(t) < scaled { t + 1 } else { t }
}

#[inline]
fn unit_f32(w: u32) -> f32 {
    (w >> 8) as f32 * TWO_POW_M24
}

#[inline]
fn unit_f64(x: u64) -> f64 {
    (x >> 11) as f64 * TWO_POW_M53
}

/// Box–Muller: `u1 = ((x1 >> 11) + 1)·2^-53 ∈ (0, 1]` (never 0, so the
/// logarithm is finite: |z| ≤ √(106 ln 2) ≈ 8.57), angle `2π·(x2 >> 11)·2^-53`.
#[inline]
fn box_muller(x1: u64, x2: u64) -> (f64, f64) {
    let u1 = ((x1 >> 11) + 1) as f64 * TWO_POW_M53;
    let r = (-2.0 * ln(u1)).sqrt();
    let (s, c) = sin_cos_turns(x2 >> 11);
    (r * c, r * s)
}

/// 1/n! for n = 0..=19, each correctly rounded (n! is exact in f64 up to 22!).
const INV_FACT: [f64; 20] = {
    let mut t = [0.0; 20];
    let mut fact = 1.0f64;
    let mut n = 0;
    while n < 20 {
        if n > 0 {
            fact *= n as f64;
        }
        t[n] = 1.0 / fact;
        n += 1;
    }
    t
};

/// 1/(2n + 1) for n = 0..=10, correctly rounded.
const INV_ODD: [f64; 11] = {
    let mut t = [0.0; 11];
    let mut n = 0;
    while n < 11 {
        t[n] = 1.0 / (2 * n + 1) as f64;
        n += 1;
    }
    t
};

/// `(sin θ, cos θ)` for `θ = 2π·m/2^53` (only the low 53 bits of `m` count):
/// the polynomials are within 1 ulp of libm's sin/cos of the reduced
/// argument, and the result within 7e-16 of libm's `sin(2π·u)` (tested).
///
/// The angle is reduced exactly in integers: `m = q·2^51 + d` with `q` the
/// nearest quarter turn and `|d| ≤ 2^50`, so `x = d·(π/2)/2^51 ∈ [−π/4, π/4]`
/// (one rounding), then Taylor polynomials through x^19 (sin) and x^18 (cos),
/// whose truncation error is below 2^-60 there.
pub fn sin_cos_turns(m: u64) -> (f64, f64) {
    const HALF_PI_OVER_2_51: f64 = std::f64::consts::FRAC_PI_2 / 2_251_799_813_685_248.0;
    let m = m & ((1 << 53) - 1);
    let q = (m + (1 << 50)) >> 51;
    let d = m as i64 - (q << 51) as i64;
    let x = d as f64 * HALF_PI_OVER_2_51;
    let z = x * x;
    let mut ps = INV_FACT[19];
    let mut pc = INV_FACT[18];
    let mut k = 17;
    while k >= 3 {
        ps = INV_FACT[k] - z * ps;
        pc = INV_FACT[k - 1] - z * pc;
        k -= 2;
    }
    // ps = 1/3! − z/5! + …, pc = 1/2! − z/4! + …
    let sin = x - x * z * ps;
    let cos = 1.0 - z * pc;
    match q & 3 {
        0 => (sin, cos),
        1 => (cos, -sin),
        2 => (-sin, -cos),
        _ => (-cos, sin),
    }
}

/// Natural logarithm of a finite `x > 0` (normal or subnormal), within 2 ulp
/// (tested against the platform's libm); `x ≤ 0`, NaN or +Inf give NaN.
///
/// `x = 2^k·m` with `m ∈ [√2/2, √2)`, `ln m = 2·atanh(s)`, `s = (m − 1)/(m + 1)`,
/// `|s| ≤ 0.1716`, by its odd series through s^21 (truncation below 2^-56
/// relative), then `k·ln 2` added in two parts (the high part times `k` is exact).
pub fn ln(x: f64) -> f64 {
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with its low 21 significand bits zero
    // (so k·LN2_HI is exact for every exponent k).
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    if !(x > 0.0 && x < f64::INFINITY) {
        return f64::NAN;
    }
    let mut bits = x.to_bits();
    let mut k: i64 = 0;
    if bits < (1 << 52) {
        // Subnormal: scale into the normal range exactly.
        bits = (x * 18_014_398_509_481_984.0).to_bits();
        k = -54;
    }
    k += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    // m − 1 is exact (Sterbenz), so s carries two roundings.
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let mut p = INV_ODD[10];
    for c in INV_ODD[1..10].iter().rev() {
        p = c + z * p;
    }
    // ln m = 2s + 2s·z·p, written around f to keep the leading term exact:
    // 2s = f − s·f.
    let ln_m = f - s * f + 2.0 * s * z * p;
    let kf = k as f64;
    kf * LN2_HI + (kf * LN2_LO + ln_m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        let key = |x: f64| {
            let b = x.to_bits() as i64;
            if b < 0 { i64::MIN - b } else { b }
        };
        key(a).abs_diff(key(b))
    }

    #[test]
    fn keep_threshold_is_exact_at_its_boundary() {
        let unit = |m: u32| m as f32 * TWO_POW_M24;
        let mut g = Generator::new(5);
        let edges = [0.1f32, 1.0 / 3.0, 0.5, 1.0, 1e-9, TWO_POW_M24, 1.5 * TWO_POW_M24, 1.0 - TWO_POW_M24, 0.999_999];
        for p in edges.into_iter().chain((0..10_000).map(|_| g.uniform_f32())) {
            let t = keep_threshold(p);
            assert!(t <= 1 << 24);
            if t > 0 {
                assert!(unit(t - 1) < p, "p {p}: m = t − 1 = {} must be kept", t - 1);
            }
            if t < 1 << 24 {
                assert!(unit(t) >= p, "p {p}: m = t = {t} must be dropped");
            }
        }
        for p in [0.0, -1.0, f32::NAN, f32::NEG_INFINITY] {
            assert_eq!(keep_threshold(p), 0, "{p}");
        }
        for p in [1.0, 2.0, f32::INFINITY] {
            assert_eq!(keep_threshold(p), 1 << 24, "{p}");
        }
    }

    #[test]
    fn inverse_factorials_are_exact_reciprocals() {
        assert_eq!(INV_FACT[0], 1.0);
        assert_eq!(INV_FACT[3], 1.0 / 6.0);
        assert_eq!(INV_FACT[19], 1.0 / 121_645_100_408_832_000.0);
    }

    #[test]
    fn ln_is_within_two_ulp_of_libm() {
        let mut g = Generator::new(7);
        let mut worst = 0;
        for i in 0..200_000 {
            // Random bit patterns over all positive finite doubles, then the
            // Box–Muller domain (0, 1] and values near 1.
            let x = match i % 3 {
                0 => f64::from_bits(g.next_u64() >> 1),
                1 => ((g.next_u64() >> 11) + 1) as f64 * TWO_POW_M53,
                _ => 1.0 + (g.uniform_f64() - 0.5) * 1e-3,
            };
            if !(x > 0.0 && x.is_finite()) {
                continue;
            }
            worst = worst.max(ulps(ln(x), x.ln()));
        }
        assert!(worst <= 2, "worst ln error {worst} ulp");
        for x in [1.0, 2.0, 0.5, f64::MIN_POSITIVE, 5e-324, f64::MAX, TWO_POW_M53, 1.0 - TWO_POW_M53] {
            assert!(ulps(ln(x), x.ln()) <= 2, "ln({x:e}) = {} vs {}", ln(x), x.ln());
        }
        assert_eq!(ln(1.0), 0.0);
        for x in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(ln(x).is_nan(), "ln({x})");
        }
    }

    #[test]
    fn sin_cos_polynomials_are_within_one_ulp_of_libm() {
        // With q = 0 (m = d mod 2^53), sin_cos_turns returns the polynomials
        // at the reduced argument x = d·(π/2)/2^51, which libm can take too.
        const C: f64 = std::f64::consts::FRAC_PI_2 / 2_251_799_813_685_248.0;
        let mut g = Generator::new(8);
        let mut worst = 0u64;
        let edges = [0i64, 1, -1, 1 << 50, -(1 << 50), (1 << 50) - 1, 12345];
        let randoms = (0..200_000).map(|_| (g.next_u64() >> 13) as i64 - (1 << 50));
        for d in edges.into_iter().chain(randoms) {
            let x = d as f64 * C;
            let (s, c) = sin_cos_turns(d as u64 & ((1 << 53) - 1));
            worst = worst.max(ulps(s, x.sin())).max(ulps(c, x.cos()));
        }
        assert!(worst <= 1, "worst sin/cos error {worst} ulp");
    }

    #[test]
    fn sin_cos_turns_matches_libm_on_full_turns() {
        // libm's own argument 2π·u is rounded (up to 4.4e-16 off), so compare absolutely.
        let mut g = Generator::new(9);
        let mut worst = 0f64;
        let edges = [1u64, 1 << 50, (1 << 50) + 1, (1 << 51) - 1, 3 << 50, 5 << 50, 7 << 50, (1 << 53) - 1];
        for m in edges.into_iter().chain((0..200_000).map(|_| g.next_u64() >> 11)) {
            let theta = std::f64::consts::TAU * (m as f64 * TWO_POW_M53);
            let (s, c) = sin_cos_turns(m);
            worst = worst.max((s - theta.sin()).abs()).max((c - theta.cos()).abs());
        }
        assert!(worst <= 4.0 * f64::EPSILON, "worst absolute error {worst:e}");
        assert_eq!(sin_cos_turns(0), (0.0, 1.0));
        assert_eq!(sin_cos_turns(1 << 51), (1.0, 0.0));
        assert_eq!(sin_cos_turns(1 << 52), (0.0, -1.0));
        assert_eq!(sin_cos_turns(3 << 51), (-1.0, 0.0));
    }
}
