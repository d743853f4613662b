//! f32 ↔ f16/bf16 casts on every path against the scalar reference and
//! `half`: bit-exact for every non-NaN input, NaN to NaN, nothing written
//! outside the destination. The input bytes are raw bit patterns (every NaN
//! payload, subnormal and rounding tie is reachable); the first byte picks an
//! unaligned start so the SIMD heads and tails are exercised.
#![no_main]

use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;
use mixprec_fuzz::paths;
use mixprec_kernels::scalar::convert::{bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits};

/// Guard elements on each side of a destination: an overrun inside the same
/// allocation is invisible to ASan, so the guards are checked by value.
const GUARD: usize = 16;

/// Runs `f` on `src` into the middle of a guarded buffer of `sentinel`s;
/// returns the written part after checking the guards are intact.
fn guarded<S, D: Copy + Bits>(what: &str, src: &[S], sentinel: D, f: impl Fn(&[S], &mut [D])) -> Vec<D> {
    let mut buf = vec![sentinel; src.len() + 2 * GUARD];
    f(src, &mut buf[GUARD..GUARD + src.len()]);
    let (head, rest) = buf.split_at(GUARD);
    let (body, tail) = rest.split_at(src.len());
    assert!(head.iter().chain(tail).all(|&d| d.bits() == sentinel.bits()), "{what} wrote outside its destination");
    body.to_vec()
}

/// Bit patterns, so NaN sentinels compare equal to themselves.
trait Bits {
    fn bits(self) -> u32;
}

impl Bits for f16 {
    fn bits(self) -> u32 {
        self.to_bits().into()
    }
}

impl Bits for bf16 {
    fn bits(self) -> u32 {
        self.to_bits().into()
    }
}

impl Bits for f32 {
    fn bits(self) -> u32 {
        self.to_bits()
    }
}

fn same_f32(got: f32, want: f32) -> bool {
    if want.is_nan() { got.is_nan() } else { got.to_bits() == want.to_bits() }
}

fuzz_target!(|data: &[u8]| {
    let Some((&skip, rest)) = data.split_first() else { return };
    let skip = usize::from(skip % 16);
    let w32 = rest.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let w16 = rest.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    // Padded sources sliced at `skip`: the kernels see unaligned starts.
    let f32s: Vec<f32> = std::iter::repeat_n(0.0, skip).chain(w32.map(f32::from_bits)).collect();
    let h16: Vec<f16> = std::iter::repeat_n(f16::ZERO, skip).chain(w16.clone().map(f16::from_bits)).collect();
    let b16: Vec<bf16> = std::iter::repeat_n(bf16::ZERO, skip).chain(w16.map(bf16::from_bits)).collect();
    let (src32, src_h, src_b) = (&f32s[skip..], &h16[skip..], &b16[skip..]);

    for k in paths() {
        let label = k.label();
        let out = guarded("f32_to_f16", src32, f16::from_bits(0x7E01), k.convert.f32_to_f16.f);
        for (&x, &h) in src32.iter().zip(&out) {
            if x.is_nan() {
                assert!(h.is_nan(), "{label} f32_to_f16({:#010x}) = {:#06x}, want NaN", x.to_bits(), h.to_bits());
            } else {
                let want = f32_to_f16_bits(x);
                assert_eq!(want, f16::from_f32(x).to_bits(), "scalar f32_to_f16 differs from half at {x:e}");
                assert_eq!(h.to_bits(), want, "{label} f32_to_f16({:#010x})", x.to_bits());
            }
        }
        let out = guarded("f32_to_bf16", src32, bf16::from_bits(0x7FC1), k.convert.f32_to_bf16.f);
        for (&x, &b) in src32.iter().zip(&out) {
            if x.is_nan() {
                assert!(b.is_nan(), "{label} f32_to_bf16({:#010x}) = {:#06x}, want NaN", x.to_bits(), b.to_bits());
            } else {
                let want = f32_to_bf16_bits(x);
                assert_eq!(want, bf16::from_f32(x).to_bits(), "scalar f32_to_bf16 differs from half at {x:e}");
                assert_eq!(b.to_bits(), want, "{label} f32_to_bf16({:#010x})", x.to_bits());
            }
        }
        let sentinel = f32::from_bits(0x7FC0_0001);
        let out = guarded("f16_to_f32", src_h, sentinel, k.convert.f16_to_f32.f);
        for (&h, &x) in src_h.iter().zip(&out) {
            let want = f16_bits_to_f32(h.to_bits());
            assert!(same_f32(want, h.to_f32()), "scalar f16_to_f32 differs from half at {:#06x}", h.to_bits());
            assert!(same_f32(x, want), "{label} f16_to_f32({:#06x}) = {x:e}, want {want:e}", h.to_bits());
        }
        let out = guarded("bf16_to_f32", src_b, sentinel, k.convert.bf16_to_f32.f);
        for (&b, &x) in src_b.iter().zip(&out) {
            let want = bf16_bits_to_f32(b.to_bits());
            assert!(same_f32(want, b.to_f32()), "scalar bf16_to_f32 differs from half at {:#06x}", b.to_bits());
            assert!(same_f32(x, want), "{label} bf16_to_f32({:#06x}) = {x:e}, want {want:e}", b.to_bits());
        }
    }
});
