//! The `avx512fp16` path: AVX-512-FP16 on top of the avx512 path, whose
//! table it starts from. Native FP16 instructions are used only where their
//! result equals FP32-compute-then-round (DESIGN.md): f16 → f16 `+ − × ÷ √`,
//! `1/x`, `x²`, negation, absolute value and ReLU (32 lanes per instruction;
//! a scalar operand only if its f32 value is an f16), and classification;
//! everything else keeps the avx512 kernels, hgemm included (its conversion
//! while packing outruns the in-register widening of `gemm.rs`), except that
//! bgemm widens while packing instead of using `vdpbf16ps`. Casts keep
//! avx512's `vcvtps2ph`/`vcvtph2ps` (the `vcvtps2phx` forms are the same
//! operation at the same speed).
//! `install` overrides the entries of the table this path implements.

pub mod gemm;

use std::arch::x86_64::*;

use half::f16;

use crate::dispatch::{Features, Kernels, kernel};
use crate::ew::{BinaryOp, Operand, UnaryOp};
use crate::slice::{Dst, Src};

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

/// f16 lanes of one operand over a block.
#[derive(Clone, Copy)]
enum V16<'a> {
    Slice(&'a [f16]),
    Splat(u16),
}

/// The f16 bits of `v` rounded to f32, if that is exactly an f16 value.
fn f16_scalar(v: f64) -> Option<u16> {
    let x = v as f32;
    let h = f16::from_f32(x);
    (h.to_f32() == x || (x.is_nan() && h.is_nan())).then_some(h.to_bits())
}

fn all_f16(o: &Operand<'_>) -> bool {
    match o {
        Operand::Full(Src::F16(_)) | Operand::Row(Src::F16(_)) | Operand::Col(Src::F16(_)) => true,
        Operand::Scalar(v) => f16_scalar(*v).is_some(),
        _ => false,
    }
}

fn view<'a>(o: &Operand<'a>, i: usize, j: usize, at: usize, len: usize) -> V16<'a> {
    match *o {
        Operand::Full(Src::F16(x)) => V16::Slice(&x[at..at + len]),
        Operand::Row(Src::F16(x)) => V16::Slice(&x[j..j + len]),
        Operand::Col(Src::F16(x)) => V16::Splat(x[i].to_bits()),
        Operand::Scalar(v) => V16::Splat(f16_scalar(v).unwrap_or(0)),
        _ => unreachable!("checked by all_f16"),
    }
}

/// Up to 32 f16 lanes at `k` (`m` of them, the rest zero).
#[inline(always)]
fn load(v: V16<'_>, k: usize, m: usize) -> __m512h {
    match v {
        V16::Slice(x) => {
            assert!(x.len() >= k + m && m <= 32);
            let mask: __mmask32 = if m == 32 { !0 } else { (1u32 << m) - 1 };
            // SAFETY: AVX-512 BW (in every entry's features); masked-off lanes are not
            // accessed, the `m` others are within the slice (asserted).
            unsafe { _mm512_castsi512_ph(_mm512_maskz_loadu_epi16(mask, x[k..].as_ptr().cast())) }
        }
        // SAFETY: AVX-512F (in every entry's features); registers only.
        V16::Splat(h) => unsafe { _mm512_castsi512_ph(_mm512_set1_epi16(h as i16)) },
    }
}

/// `o[k] = f(a[k], b[k])` on f16 lanes, 32 at a time.
#[inline(always)]
fn map2(a: V16<'_>, b: V16<'_>, o: &mut [f16], f: impl Fn(__m512h, __m512h) -> __m512h) {
    let n = o.len();
    let mut k = 0;
    while k < n {
        let m = (n - k).min(32);
        let r = f(load(a, k, m), load(b, k, m));
        let mask: __mmask32 = if m == 32 { !0 } else { (1u32 << m) - 1 };
        // SAFETY: AVX-512 BW; masked-off lanes are not written, the `m` others
        // are within `o` (k + m ≤ n).
        unsafe { _mm512_mask_storeu_epi16(o[k..].as_mut_ptr().cast(), mask, _mm512_castph_si512(r)) };
        k += m;
    }
}

/// The native binary body: every operand and the result are f16.
#[target_feature(enable = "avx512fp16,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
fn binary_native(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, d: &mut [f16]) {
    let per_row = [&a, &b].iter().any(|o| matches!(o, Operand::Row(_) | Operand::Col(_)));
    let (rows, width) = if per_row { (rows, n) } else { (usize::from(rows * n > 0), rows * n) };
    for i in 0..rows {
        let mut j = 0;
        while j < width {
            let len = crate::simd::ew::BLOCK.min(width - j);
            let at = i * width + j;
            let (va, vb) = (view(&a, i, j, at, len), view(&b, i, j, at, len));
            let o = &mut d[at..at + len];
            match op {
                BinaryOp::Add => map2(va, vb, o, |x, y| _mm512_add_ph(x, y)),
                BinaryOp::Sub => map2(va, vb, o, |x, y| _mm512_sub_ph(x, y)),
                BinaryOp::Mul => map2(va, vb, o, |x, y| _mm512_mul_ph(x, y)),
                BinaryOp::Div => map2(va, vb, o, |x, y| _mm512_div_ph(x, y)),
                _ => unreachable!("only ops native FP16 computes exactly"),
            }
            j += len;
        }
    }
}

/// `ew::binary` with native FP16 where it is exact, else the avx512 body.
pub(crate) fn binary_avx512fp16(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) {
    let native = matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div);
    match dst {
        Dst::F16(d) if native && all_f16(&a) && all_f16(&b) => {
            // SAFETY: reachable only through the avx512fp16 table, which
            // `dispatch::table` hands out only when the CPU has AVX-512-FP16.
            unsafe { binary_native(op, rows, n, a, b, d) }
        }
        dst => crate::x86::avx512::binary_avx512(op, rows, n, a, b, dst),
    }
}

/// The native unary body on f16 → f16.
#[target_feature(enable = "avx512fp16,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
fn unary_native(op: UnaryOp, x: &[f16], d: &mut [f16]) {
    let one = _mm512_castsi512_ph(_mm512_set1_epi16(f16::ONE.to_bits() as i16));
    let zero = _mm512_setzero_ph();
    let sign = _mm512_set1_epi16(i16::MIN);
    let z = V16::Splat(0);
    let mut j = 0;
    while j < x.len() {
        let len = crate::simd::ew::BLOCK.min(x.len() - j);
        let (v, o) = (V16::Slice(&x[j..j + len]), &mut d[j..j + len]);
        match op {
            UnaryOp::Neg => map2(v, z, o, |a, _| _mm512_castsi512_ph(_mm512_xor_si512(_mm512_castph_si512(a), sign))),
            UnaryOp::Abs => {
                map2(v, z, o, |a, _| _mm512_castsi512_ph(_mm512_andnot_si512(sign, _mm512_castph_si512(a))))
            }
            UnaryOp::Sqrt => map2(v, z, o, |a, _| _mm512_sqrt_ph(a)),
            UnaryOp::Recip => map2(v, z, o, |a, _| _mm512_div_ph(one, a)),
            UnaryOp::Square => map2(v, z, o, |a, _| _mm512_mul_ph(a, a)),
            // vmaxph(a, 0) is `a > 0 ? a : 0`: +0 for −0, but 0 for NaN; keep NaN.
            UnaryOp::Relu => map2(v, z, o, |a, _| {
                let nan = _mm512_cmp_ph_mask::<_CMP_UNORD_Q>(a, a);
                _mm512_mask_blend_ph(nan, _mm512_max_ph(a, zero), a)
            }),
            _ => unreachable!("only ops native FP16 computes exactly"),
        }
        j += len;
    }
}

/// `ew::unary` with native FP16 where it is exact, else the avx512 body.
pub(crate) fn unary_avx512fp16(op: UnaryOp, x: Src<'_>, dst: Dst<'_>) {
    let native =
        matches!(op, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sqrt | UnaryOp::Recip | UnaryOp::Square | UnaryOp::Relu);
    match (x, dst) {
        (Src::F16(x), Dst::F16(d)) if native => {
            // SAFETY: reachable only through the avx512fp16 table (CPU has AVX-512-FP16).
            unsafe { unary_native(op, x, d) }
        }
        (x, dst) => crate::x86::avx512::unary_avx512(op, x, dst),
    }
}

/// Overrides the entries this path implements.
pub(crate) fn install(k: &mut Kernels, _features: Features) {
    // bgemm widens bf16 while packing into the FP32 kernel, as hgemm does:
    // on the AVX-512-FP16 Xeon `vdpbf16ps` runs at half the FP32 FMA rate
    // (84.6 against 169.6 GFLOP/s per core, docs/kernels.md), the opposite of
    // Zen 4, so the pair kernel the avx512 table installs would halve bgemm.
    k.gemm.bgemm = crate::x86::avx512::gemm::table(false).bgemm;
    k.amp.has_non_finite_f16 = kernel!(has_non_finite_f16_avx512fp16);
    k.ew.binary = kernel!(binary_avx512fp16);
    k.ew.unary = kernel!(unary_avx512fp16);
}
