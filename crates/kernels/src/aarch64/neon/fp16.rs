//! NEON kernels for CPUs with FEAT_FP16 and FEAT_FHM, installed over the
//! plain `neon` ones when those features are present.
//!
//! - f16·f16 dot products widen in the multiplier: `fmlal`/`fmlal2` multiply
//!   f16 pairs exactly and accumulate in f32 with one rounding, i.e. the
//!   FP32 FMA of the widened values, at the f16 vector width.
//! - Elementwise ops whose operands and result are all f16 run in native
//!   FP16 arithmetic only where that equals FP32-compute-then-round
//!   (DESIGN.md): `+ − × ÷ √`, `1/x`, `x²`, negation, absolute value, ReLU,
//!   and IEEE `maximum`/`minimum` (FMAX/FMIN propagate NaN and order ±0 as
//!   they do). A scalar operand qualifies only if its f32 value is an f16.
//!   Everything else takes the `neon` path.

use std::arch::aarch64::*;

use half::f16;

use crate::ew::{BinaryOp, Operand, UnaryOp};
use crate::simd::ew;
use crate::slice::{Dst, Src};

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

/// Eight f16 lanes at `k` (or the `len − k < 8` tail, padded with zeros).
#[inline(always)]
fn load(v: V16<'_>, k: usize) -> float16x8_t {
    match v {
        V16::Slice(x) => {
            let mut buf = [0u16; 8];
            let m = (x.len() - k).min(8);
            for (b, h) in buf.iter_mut().zip(&x[k..k + m]) {
                *b = h.to_bits();
            }
            // SAFETY: NEON is part of every aarch64 target; `buf` holds 8 u16.
            unsafe { vreinterpretq_f16_u16(vld1q_u16(buf.as_ptr())) }
        }
        // SAFETY: NEON is part of every aarch64 target; registers only.
        V16::Splat(h) => unsafe { vreinterpretq_f16_u16(vdupq_n_u16(h)) },
    }
}

/// Full-vector load (the tail goes through [`load`]).
#[inline(always)]
fn load8(v: V16<'_>, k: usize, splat: float16x8_t) -> float16x8_t {
    match v {
        V16::Slice(x) => {
            assert!(x.len() >= k + 8);
            // SAFETY: NEON present; 16 bytes at `k` are readable (asserted).
            unsafe { vreinterpretq_f16_u16(vld1q_u16(x[k..].as_ptr().cast())) }
        }
        V16::Splat(_) => splat,
    }
}

/// `o[k] = f(a[k], b[k])` on f16 lanes.
#[inline(always)]
fn map2(a: V16<'_>, b: V16<'_>, o: &mut [f16], f: impl Fn(float16x8_t, float16x8_t) -> float16x8_t) {
    let (sa, sb) = (load(a, 0), load(b, 0));
    let n = o.len();
    let mut k = 0;
    while k + 8 <= n {
        let r = f(load8(a, k, sa), load8(b, k, sb));
        // SAFETY: NEON present; 16 bytes at `k` are writable (k + 8 ≤ n).
        unsafe { vst1q_u16(o[k..].as_mut_ptr().cast(), vreinterpretq_u16_f16(r)) };
        k += 8;
    }
    if k < n {
        let r = f(load(a, k), load(b, k));
        let mut buf = [0u16; 8];
        // SAFETY: NEON present; `buf` holds 8 u16.
        unsafe { vst1q_u16(buf.as_mut_ptr(), vreinterpretq_u16_f16(r)) };
        for (h, &b) in o[k..].iter_mut().zip(&buf) {
            *h = f16::from_bits(b);
        }
    }
}

/// The native binary body: every operand and the result are f16.
#[target_feature(enable = "neon,fp16")]
fn binary_native(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, d: &mut [f16]) {
    let per_row = [&a, &b].iter().any(|o| matches!(o, Operand::Row(_) | Operand::Col(_)));
    let (rows, width) = if per_row { (rows, n) } else { (usize::from(rows * n > 0), rows * n) };
    for i in 0..rows {
        let mut j = 0;
        while j < width {
            let len = ew::BLOCK.min(width - j);
            let at = i * width + j;
            let (va, vb) = (view(&a, i, j, at, len), view(&b, i, j, at, len));
            let o = &mut d[at..at + len];
            match op {
                BinaryOp::Add => map2(va, vb, o, |x, y| vaddq_f16(x, y)),
                BinaryOp::Sub => map2(va, vb, o, |x, y| vsubq_f16(x, y)),
                BinaryOp::Mul => map2(va, vb, o, |x, y| vmulq_f16(x, y)),
                BinaryOp::Div => map2(va, vb, o, |x, y| vdivq_f16(x, y)),
                BinaryOp::Maximum => map2(va, vb, o, |x, y| vmaxq_f16(x, y)),
                BinaryOp::Minimum => map2(va, vb, o, |x, y| vminq_f16(x, y)),
                _ => unreachable!("only ops native FP16 computes exactly"),
            }
            j += len;
        }
    }
}

/// `ew::binary` with native FP16 where it is exact, else the `neon` body.
pub(crate) fn binary_neon_fp16(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) {
    let native = matches!(
        op,
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Maximum | BinaryOp::Minimum
    );
    match dst {
        Dst::F16(d) if native && all_f16(&a) && all_f16(&b) => {
            // SAFETY: reachable only through the neon table built with FEAT_FP16
            // present (`install` checks `features.fp16`).
            unsafe { binary_native(op, rows, n, a, b, d) }
        }
        dst => super::binary_neon(op, rows, n, a, b, dst),
    }
}

/// The native unary body on f16 → f16.
#[target_feature(enable = "neon,fp16")]
fn unary_native(op: UnaryOp, x: &[f16], d: &mut [f16]) {
    let one = vreinterpretq_f16_u16(vdupq_n_u16(f16::ONE.to_bits()));
    let zero = vreinterpretq_f16_u16(vdupq_n_u16(0));
    let mut j = 0;
    while j < x.len() {
        let len = ew::BLOCK.min(x.len() - j);
        let (v, o) = (V16::Slice(&x[j..j + len]), &mut d[j..j + len]);
        let z = V16::Splat(0);
        match op {
            UnaryOp::Neg => map2(v, z, o, |a, _| vnegq_f16(a)),
            UnaryOp::Abs => map2(v, z, o, |a, _| vabsq_f16(a)),
            UnaryOp::Sqrt => map2(v, z, o, |a, _| vsqrtq_f16(a)),
            UnaryOp::Recip => map2(v, z, o, |a, _| vdivq_f16(one, a)),
            UnaryOp::Square => map2(v, z, o, |a, _| vmulq_f16(a, a)),
            // FMAX: NaN propagates, max(−0, +0) = +0.
            UnaryOp::Relu => map2(v, z, o, |a, _| vmaxq_f16(a, zero)),
            _ => unreachable!("only ops native FP16 computes exactly"),
        }
        j += len;
    }
}

/// `ew::unary` with native FP16 where it is exact, else the `neon` body.
pub(crate) fn unary_neon_fp16(op: UnaryOp, x: Src<'_>, dst: Dst<'_>) {
    let native =
        matches!(op, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sqrt | UnaryOp::Recip | UnaryOp::Square | UnaryOp::Relu);
    match (x, dst) {
        (Src::F16(x), Dst::F16(d)) if native => {
            // SAFETY: reachable only through the neon table built with FEAT_FP16.
            unsafe { unary_native(op, x, d) }
        }
        (x, dst) => super::unary_neon(op, x, dst),
    }
}

/// `Σ a·b` over f16 slices with `fmlal`/`fmlal2`: four f32x4 accumulators,
/// 16 f16 pairs per step.
#[target_feature(enable = "neon,fp16,fhm")]
fn dot_f16_fhm(a: &[f16], b: &[f16]) -> f64 {
    let zero = vdupq_n_f32(0.0);
    let mut acc = [zero; 4];
    let n = a.len();
    let mut k = 0;
    let ld = |x: &[f16], k: usize| {
        assert!(x.len() >= k + 8);
        // SAFETY: NEON present; 16 bytes at `k` are readable (asserted).
        unsafe { vreinterpretq_f16_u16(vld1q_u16(x[k..].as_ptr().cast())) }
    };
    while k + 16 <= n {
        let (x0, y0, x1, y1) = (ld(a, k), ld(b, k), ld(a, k + 8), ld(b, k + 8));
        acc[0] = vfmlalq_low_f16(acc[0], x0, y0);
        acc[1] = vfmlalq_high_f16(acc[1], x0, y0);
        acc[2] = vfmlalq_low_f16(acc[2], x1, y1);
        acc[3] = vfmlalq_high_f16(acc[3], x1, y1);
        k += 16;
    }
    while k < n {
        let m = (n - k).min(8);
        let (mut xa, mut ya) = ([0u16; 8], [0u16; 8]);
        for q in 0..m {
            xa[q] = a[k + q].to_bits();
            ya[q] = b[k + q].to_bits();
        }
        // SAFETY: NEON present; the buffers hold 8 u16 each.
        let (x, y) =
            unsafe { (vreinterpretq_f16_u16(vld1q_u16(xa.as_ptr())), vreinterpretq_f16_u16(vld1q_u16(ya.as_ptr()))) };
        acc[0] = vfmlalq_low_f16(acc[0], x, y);
        acc[1] = vfmlalq_high_f16(acc[1], x, y);
        k += m;
    }
    vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]))) as f64
}

/// `reduce::dot` with `fmlal` for f16 pairs, else the `neon` body.
pub(crate) fn dot_neon_fhm(a: Src<'_>, b: Src<'_>) -> f64 {
    match (a, b) {
        (Src::F16(x), Src::F16(y)) => {
            assert_eq!(x.len(), y.len(), "reduce::dot: a holds {} elements, b {}", x.len(), y.len());
            // SAFETY: reachable only through the neon table built with FEAT_FP16
            // and FEAT_FHM present (`install` checks `features.fhm`).
            unsafe { dot_f16_fhm(x, y) }
        }
        (a, b) => super::dot_neon(a, b),
    }
}
