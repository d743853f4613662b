//! The `avx512fp16` path: AVX-512-FP16 on top of the avx512 path, whose
//! table it starts from. Native FP16 instructions are used only where their
//! result equals FP32-compute-then-round (DESIGN.md): classification and
//! conversions here; hgemm widens f16 panels in registers (`gemm.rs`).
//! Casts keep avx512's `vcvtps2ph`/`vcvtph2ps` (the `vcvtps2phx` forms are
//! the same operation at the same speed).
//! `install` overrides the entries of the table this path implements.

pub mod gemm;

use std::arch::x86_64::*;

use half::f16;

use crate::dispatch::{Features, Kernels, kernel};

/// Whether any f16 is ±Inf or NaN: `vfpclassph` on 32 raw f16 lanes per
/// instruction, no widening. Subnormals and ±0 are finite.
pub(crate) fn has_non_finite_f16_avx512fp16(x: &[f16]) -> bool {
    #[target_feature(enable = "avx512fp16,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    fn imp(x: &[f16]) -> bool {
        let mut bad: __mmask32 = 0;
        let mut chunks = x.chunks_exact(32);
        for c in &mut chunks {
            // SAFETY: AVX-512F is enabled here; 64 bytes are readable (a full chunk).
            // (`_mm512_loadu_ph` takes the unstable `f16` type: load as integers.)
            let v = _mm512_castsi512_ph(unsafe { _mm512_loadu_si512(c.as_ptr().cast()) });
            // fpclass 0x99: QNaN | +Inf | -Inf | SNaN.
            bad |= _mm512_fpclass_ph_mask::<0x99>(v);
        }
        let t = chunks.remainder();
        if !t.is_empty() {
            let m: __mmask32 = (1u32 << t.len()) - 1;
            // SAFETY: AVX-512 BW is enabled here; lanes beyond the tail are masked off
            // (not accessed); padding lanes read as +0, which is finite.
            let v = unsafe { _mm512_castsi512_ph(_mm512_maskz_loadu_epi16(m, t.as_ptr().cast())) };
            bad |= _mm512_fpclass_ph_mask::<0x99>(v);
        }
        bad != 0
    }
    // SAFETY: reachable only through the avx512fp16 table, which `dispatch::table`
    // hands out only when the CPU has AVX-512-FP16 (and the avx512 path's features).
    unsafe { imp(x) }
}

/// Overrides the entries this path implements.
pub(crate) fn install(k: &mut Kernels, _features: Features) {
    k.gemm.hgemm = gemm::hgemm();
    k.amp.has_non_finite_f16 = kernel!(has_non_finite_f16_avx512fp16);
}
