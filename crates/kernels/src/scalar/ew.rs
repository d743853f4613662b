//! Reference elementwise kernels. Blocks of [`CHUNK`] elements are widened
//! exactly to f64, the op is applied in f64, and the result is rounded to
//! f32 first when the kernel computes in FP32 (no f64 slice involved) and
//! then to the output type. For `+ − × ÷ √` an f64 evaluation rounded to
//! f32 equals the FP32 operation (53 ≥ 2·24 + 2 bits: double rounding is
//! innocuous), so this is FP32 arithmetic exactly; transcendental functions
//! come out within 1 ulp of f32 (std's f64 functions, then one rounding).
//!
//! Special values follow IEEE arithmetic in every op (NaN propagates, ±Inf
//! and ±0 as the f64 function gives them, subnormal inputs and results kept,
//! nothing flushed); the exceptions are documented on each op in `ew`.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use crate::ew::{BinaryOp, GradOp, Operand, UnaryOp};
use crate::slice::{CHUNK, Dst, Elem, Src, computes_in_f64};

/// `√(2/π)`.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh form of GELU.
const GELU_C: f64 = 0.044_715;

fn operand_elem(o: &Operand<'_>) -> Option<Elem> {
    match o {
        Operand::Full(s) | Operand::Row(s) | Operand::Col(s) => Some(s.elem()),
        Operand::Scalar(_) => None,
    }
}

fn wide(ops: &[&Operand<'_>], dst: Elem) -> bool {
    let elems: Vec<Elem> = ops.iter().filter_map(|o| operand_elem(o)).collect();
    computes_in_f64(&elems, dst)
}

/// Loads `buf.len()` values of row `i` starting at column `j` of a block of width `n`.
#[inline]
fn load(o: &Operand<'_>, n: usize, i: usize, j: usize, wide: bool, buf: &mut [f64]) {
    match o {
        Operand::Full(s) => s.load_f64(i * n + j, buf),
        Operand::Row(s) => s.load_f64(j, buf),
        Operand::Col(s) => buf.fill(s.get_f64(i)),
        // A scalar is rounded to the compute type first, as PyTorch does.
        Operand::Scalar(v) => buf.fill(if wide { *v } else { *v as f32 as f64 }),
    }
}

/// Rounds `vals` to f32 first when computing in FP32, then stores them.
#[inline]
fn store(dst: &mut Dst<'_>, start: usize, vals: &[f64], wide: bool) {
    if wide {
        dst.store_f64(start, vals);
    } else {
        let mut f = [0.0f32; CHUNK];
        for (o, &v) in f.iter_mut().zip(vals) {
            *o = v as f32;
        }
        dst.store_f32(start, &f[..vals.len()]);
    }
}

/// Walks a `rows × n` block in pieces that stay within one row when an
/// operand depends on the row, and calls `f(i, j, len, out_start)`.
fn for_pieces(rows: usize, n: usize, per_row: bool, mut f: impl FnMut(usize, usize, usize, usize)) {
    let (rows, n) = if per_row { (rows, n) } else { (usize::from(rows * n > 0), rows * n) };
    for i in 0..rows {
        let mut j = 0;
        while j < n {
            let len = CHUNK.min(n - j);
            f(i, j, len, i * n + j);
            j += len;
        }
    }
}

fn is_per_row(ops: &[&Operand<'_>]) -> bool {
    ops.iter().any(|o| matches!(o, Operand::Row(_) | Operand::Col(_)))
}

#[inline]
fn apply_binary(op: BinaryOp, a: &[f64], b: &[f64], out: &mut [f64]) {
    macro_rules! each {
        ($f:expr) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = $f(x, y);
            }
        };
    }
    match op {
        BinaryOp::Add => each!(|x: f64, y: f64| x + y),
        BinaryOp::Sub => each!(|x: f64, y: f64| x - y),
        BinaryOp::Mul => each!(|x: f64, y: f64| x * y),
        BinaryOp::Div => each!(|x: f64, y: f64| x / y),
        other => each!(|x, y| other.apply_f64(x, y)),
    }
}

/// Reference of [`crate::ew::binary`].
pub fn binary_scalar(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, mut dst: Dst<'_>) {
    let wide = wide(&[&a, &b], dst.elem());
    let (mut x, mut y, mut r) = ([0.0f64; CHUNK], [0.0f64; CHUNK], [0.0f64; CHUNK]);
    let per_row = is_per_row(&[&a, &b]);
    let width = if per_row { n } else { rows * n };
    for_pieces(rows, n, per_row, |i, j, len, at| {
        load(&a, width, i, j, wide, &mut x[..len]);
        load(&b, width, i, j, wide, &mut y[..len]);
        apply_binary(op, &x[..len], &y[..len], &mut r[..len]);
        store(&mut dst, at, &r[..len], wide);
    });
}

/// Reference of [`crate::ew::binary_assign`].
pub fn binary_assign_scalar(op: BinaryOp, rows: usize, n: usize, mut acc: Dst<'_>, b: Operand<'_>) {
    let wide = wide(&[&b], acc.elem());
    let (mut x, mut y, mut r) = ([0.0f64; CHUNK], [0.0f64; CHUNK], [0.0f64; CHUNK]);
    let per_row = is_per_row(&[&b]);
    let width = if per_row { n } else { rows * n };
    for_pieces(rows, n, per_row, |i, j, len, at| {
        acc.as_src().load_f64(at, &mut x[..len]);
        load(&b, width, i, j, wide, &mut y[..len]);
        apply_binary(op, &x[..len], &y[..len], &mut r[..len]);
        store(&mut acc, at, &r[..len], wide);
    });
}

/// Reference of [`crate::ew::axpy`]: `f32::mul_add` (a correctly rounded
/// fused multiply-add; `f64::mul_add` when either side is f64), in order.
pub fn axpy_scalar(alpha: f32, x: Src<'_>, mut y: Dst<'_>) {
    let wide = computes_in_f64(&[x.elem()], y.elem());
    let (mut xv, mut yv) = ([0.0f64; CHUNK], [0.0f64; CHUNK]);
    for_pieces(1, x.len(), false, |_, j, len, at| {
        x.load_f64(j, &mut xv[..len]);
        y.as_src().load_f64(at, &mut yv[..len]);
        for (o, &a) in yv[..len].iter_mut().zip(&xv[..len]) {
            *o = if wide { (alpha as f64).mul_add(a, *o) } else { alpha.mul_add(a as f32, *o as f32) as f64 };
        }
        store(&mut y, at, &yv[..len], wide);
    });
}

/// The logistic function, evaluated so it neither overflows nor cancels.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The tanh-form GELU argument `2·√(2/π)·(x + 0.044715x³)`.
#[inline]
fn gelu_tanh_arg(x: f64) -> f64 {
    2.0 * SQRT_2_OVER_PI * (x + GELU_C * x * x * x)
}

/// `f(x)` in f64 (the reference semantics of [`UnaryOp`]).
#[inline]
pub fn unary_f64(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Square => x * x,
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Relu => {
            if x > 0.0 || x.is_nan() {
                x
            } else {
                0.0
            }
        }
        // 0.5·x·(1 + tanh(u)) = x·σ(2u): no cancellation for negative x.
        UnaryOp::GeluTanh => {
            if x.is_infinite() {
                if x > 0.0 { x } else { -0.0 }
            } else {
                x * sigmoid(gelu_tanh_arg(x))
            }
        }
        UnaryOp::GeluErf => {
            if x.is_infinite() {
                if x > 0.0 { x } else { -0.0 }
            } else {
                0.5 * x * libm::erfc(-x * FRAC_1_SQRT_2)
            }
        }
    }
}

/// `g · f'(saved)` in f64 (the reference semantics of [`GradOp`]).
#[inline]
pub fn grad_f64(op: GradOp, g: f64, s: f64) -> f64 {
    match op {
        // As PyTorch's threshold_backward: exactly 0 where the unit was off.
        GradOp::Relu => {
            if s > 0.0 {
                g
            } else {
                0.0
            }
        }
        GradOp::Abs => {
            if s > 0.0 {
                g
            } else if s < 0.0 {
                -g
            } else if s.is_nan() {
                f64::NAN
            } else {
                0.0 * g
            }
        }
        GradOp::Exp => g * s,
        GradOp::Log => g / s,
        GradOp::Sqrt => g / (2.0 * s),
        GradOp::Rsqrt => -0.5 * g * s * s * s,
        GradOp::Recip => -g * s * s,
        GradOp::Square => 2.0 * g * s,
        GradOp::Tanh => g * (1.0 - s * s),
        GradOp::Sigmoid => g * s * (1.0 - s),
        GradOp::GeluTanh => {
            // With u2 = 2u: d/dx x·σ(u2) = σ(u2) + x·σ(u2)·σ(−u2)·du2/dx.
            let u2 = gelu_tanh_arg(s);
            let (p, q) = (sigmoid(u2), sigmoid(-u2));
            let du2 = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * s * s);
            let d = if s.is_infinite() { if s > 0.0 { 1.0 } else { 0.0 } } else { p + s * p * q * du2 };
            g * d
        }
        GradOp::GeluErf => {
            // Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
            let phi = (-0.5 * s * s).exp() / (2.0 * PI).sqrt();
            let cdf = 0.5 * libm::erfc(-s * FRAC_1_SQRT_2);
            let d = if s.is_infinite() { if s > 0.0 { 1.0 } else { 0.0 } } else { cdf + s * phi };
            g * d
        }
    }
}

/// Reference of [`crate::ew::unary`].
pub fn unary_scalar(op: UnaryOp, x: Src<'_>, mut dst: Dst<'_>) {
    let wide = computes_in_f64(&[x.elem()], dst.elem());
    let (mut v, mut r) = ([0.0f64; CHUNK], [0.0f64; CHUNK]);
    for_pieces(1, x.len(), false, |_, j, len, at| {
        x.load_f64(j, &mut v[..len]);
        for (o, &a) in r[..len].iter_mut().zip(&v[..len]) {
            *o = unary_f64(op, a);
        }
        store(&mut dst, at, &r[..len], wide);
    });
}

/// Reference of [`crate::ew::unary_grad`].
pub fn unary_grad_scalar(op: GradOp, g: Src<'_>, saved: Src<'_>, mut dst: Dst<'_>) {
    let wide = computes_in_f64(&[g.elem(), saved.elem()], dst.elem());
    let (mut gv, mut sv, mut r) = ([0.0f64; CHUNK], [0.0f64; CHUNK], [0.0f64; CHUNK]);
    for_pieces(1, g.len(), false, |_, j, len, at| {
        g.load_f64(j, &mut gv[..len]);
        saved.load_f64(j, &mut sv[..len]);
        for ((o, &a), &s) in r[..len].iter_mut().zip(&gv[..len]).zip(&sv[..len]) {
            *o = grad_f64(op, a, s);
        }
        store(&mut dst, at, &r[..len], wide);
    });
}

/// Reference of [`crate::ew::select`].
pub fn select_scalar(rows: usize, n: usize, cond: Operand<'_>, a: Operand<'_>, b: Operand<'_>, mut dst: Dst<'_>) {
    let wide = wide(&[&a, &b], dst.elem());
    let (mut c, mut x, mut y) = ([0.0f64; CHUNK], [0.0f64; CHUNK], [0.0f64; CHUNK]);
    let per_row = is_per_row(&[&cond, &a, &b]);
    let width = if per_row { n } else { rows * n };
    for_pieces(rows, n, per_row, |i, j, len, at| {
        // The condition is read exactly whatever its type (never rounded).
        load(&cond, width, i, j, true, &mut c[..len]);
        load(&a, width, i, j, wide, &mut x[..len]);
        load(&b, width, i, j, wide, &mut y[..len]);
        for ((o, &t), &f) in x[..len].iter_mut().zip(&c[..len]).zip(&y[..len]) {
            *o = if t != 0.0 { *o } else { f };
        }
        dst.store_f64(at, &x[..len]);
    });
}

/// Reference of [`crate::ew::lstm_cell`]: `σ` and `tanh` in f64, rounded once
/// to f32; the cell update and `h` in f32 operations.
pub fn lstm_cell_scalar(
    hs: usize,
    gates: &mut [f32],
    c_prev: &[f32],
    c: &mut [f32],
    tanh_c: &mut [f32],
    mut h: Dst<'_>,
) {
    let mut hrow = vec![0.0f32; hs];
    for (r, g) in gates.chunks_exact_mut(4 * hs).enumerate() {
        let (ifg, o) = g.split_at_mut(3 * hs);
        let (i_f, gg) = ifg.split_at_mut(2 * hs);
        i_f.iter_mut().chain(o.iter_mut()).for_each(|x| *x = sigmoid(*x as f64) as f32);
        gg.iter_mut().for_each(|x| *x = (*x as f64).tanh() as f32);
        let at = r * hs;
        for j in 0..hs {
            let (i, f, g, o) = (i_f[j], i_f[hs + j], gg[j], o[j]);
            let cv = f * c_prev[at + j] + i * g;
            let tc = (cv as f64).tanh() as f32;
            c[at + j] = cv;
            tanh_c[at + j] = tc;
            hrow[j] = o * tc;
        }
        h.store_f32(at, &hrow);
    }
}

/// Reference of [`crate::ew::lstm_cell_grad`]: f32 operations in the order
/// the kernel documents (an f64 `dy` is rounded to f32 first).
pub fn lstm_cell_grad_scalar(
    hs: usize,
    saved: crate::ew::LstmSaved<'_>,
    dy: Src<'_>,
    dh_next: &[f32],
    dc: &mut [f32],
    mut dgates: Dst<'_>,
) {
    let mut drow = vec![0.0f32; 4 * hs];
    for (r, a) in saved.act.chunks_exact(4 * hs).enumerate() {
        for j in 0..hs {
            let k = r * hs + j;
            let (i, f, g, o) = (a[j], a[hs + j], a[2 * hs + j], a[3 * hs + j]);
            let dh = dy.get_f64(k) as f32 + dh_next[k];
            let tc = saved.tanh_c[k];
            let dcv = dc[k] + dh * o * (1.0 - tc * tc);
            drow[j] = dcv * g * (i * (1.0 - i));
            drow[hs + j] = dcv * saved.c_prev[k] * (f * (1.0 - f));
            drow[2 * hs + j] = dcv * i * (1.0 - g * g);
            drow[3 * hs + j] = dh * tc * (o * (1.0 - o));
            dc[k] = dcv * f;
        }
        dgates.store_f32(r * 4 * hs, &drow);
    }
}
