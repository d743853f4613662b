//! The elementwise family (`crate::ew`) on any ISA token.
//!
//! Operands of any f32/f16/bf16 mix are staged through f32 blocks of
//! [`BLOCK`] elements (borrowed in place when already f32, widened exactly
//! otherwise), the op runs on f32 vectors, and the result is rounded once to
//! the output type: one loop per op serves every type combination and
//! broadcast shape. Row and column vectors are taken along contiguous rows;
//! a column vector or a scalar becomes a splatted register.
//!
//! `pow` and anything involving an f64 slice run the scalar reference (f64
//! is for references and gradient checks; `pow` needs a double-float `ln`
//! to stay within 4 ulp and is not on a training path).

use half::{bf16, f16};

use super::{Simd, cast, math};
use crate::ew::{BinaryOp, GradOp, Operand, UnaryOp};
use crate::slice::{Dst, Elem as DType, Src};

/// Elements per staged block: three 1 KiB f32 buffers stay in L1.
pub(crate) const BLOCK: usize = 256;

/// One operand over a block: a slice of f32 values or one splatted value.
#[derive(Clone, Copy)]
pub(crate) enum View<'a> {
    Slice(&'a [f32]),
    Splat(f32),
}

/// `src[start..start + len]` as f32: borrowed when f32, widened into `buf` otherwise.
#[inline(always)]
pub(crate) fn widen<'a, S: Simd>(s: S, src: Src<'a>, start: usize, len: usize, buf: &'a mut [f32]) -> &'a [f32] {
    let buf = &mut buf[..len];
    match src {
        Src::F32(x) => return &x[start..start + len],
        Src::F16(x) => cast::convert::<S, f16, f32>(s, &x[start..start + len], buf),
        Src::Bf16(x) => cast::convert::<S, bf16, f32>(s, &x[start..start + len], buf),
        Src::F64(_) => unreachable!("f64 operands take the scalar reference"),
    }
    buf
}

/// Element `i` of a non-f64 slice, exactly.
#[inline(always)]
pub(crate) fn get(src: &Src<'_>, i: usize) -> f32 {
    src.get_f64(i) as f32
}

/// Rounds `vals` once into `dst[start..]`.
#[inline(always)]
pub(crate) fn narrow<S: Simd>(s: S, vals: &[f32], dst: &mut Dst<'_>, start: usize) {
    let end = start + vals.len();
    match dst {
        Dst::F32(d) => d[start..end].copy_from_slice(vals),
        Dst::F16(d) => cast::convert::<S, f32, f16>(s, vals, &mut d[start..end]),
        Dst::Bf16(d) => cast::convert::<S, f32, bf16>(s, vals, &mut d[start..end]),
        Dst::F64(_) => unreachable!("f64 outputs take the scalar reference"),
    }
}

/// Runs `f` on the f32 output block `dst[start..start + len]`: in place
/// when `dst` is f32, through `buf` and one rounding otherwise.
#[inline(always)]
pub(crate) fn with_out<S: Simd>(
    s: S,
    dst: &mut Dst<'_>,
    start: usize,
    len: usize,
    buf: &mut [f32],
    f: impl FnOnce(&mut [f32]),
) {
    if let Dst::F32(d) = dst {
        f(&mut d[start..start + len]);
    } else {
        f(&mut buf[..len]);
        narrow(s, &buf[..len], dst, start);
    }
}

fn operand_is_f64(o: &Operand<'_>) -> bool {
    matches!(o, Operand::Full(Src::F64(_)) | Operand::Row(Src::F64(_)) | Operand::Col(Src::F64(_)))
}

/// The view of `o` for row `i`, columns `j..j + len` (`at` = `i·width + j`).
#[inline(always)]
fn view<'a, S: Simd>(s: S, o: &Operand<'a>, i: usize, j: usize, at: usize, len: usize, buf: &'a mut [f32]) -> View<'a> {
    match *o {
        Operand::Full(src) => View::Slice(widen(s, src, at, len, buf)),
        Operand::Row(src) => View::Slice(widen(s, src, j, len, buf)),
        Operand::Col(src) => View::Splat(get(&src, i)),
        Operand::Scalar(v) => View::Splat(v as f32),
    }
}

#[inline(always)]
fn load<S: Simd>(s: S, v: View<'_>, splat: S::F, k: usize) -> S::F {
    match v {
        View::Slice(x) => s.load_f32(&x[k..]),
        View::Splat(_) => splat,
    }
}

#[inline(always)]
fn load_partial<S: Simd>(s: S, v: View<'_>, splat: S::F, k: usize) -> S::F {
    match v {
        View::Slice(x) => s.load_f32_partial(&x[k..]),
        View::Splat(_) => splat,
    }
}

#[inline(always)]
fn splat_of<S: Simd>(s: S, v: View<'_>) -> S::F {
    match v {
        View::Splat(c) => s.splat(c),
        View::Slice(_) => s.splat(0.0),
    }
}

/// `o[k] = f(a[k], b[k])`.
#[inline(always)]
pub(crate) fn map2<S: Simd>(s: S, a: View<'_>, b: View<'_>, o: &mut [f32], f: impl Fn(S::F, S::F) -> S::F) {
    let (l, n) = (S::LANES, o.len());
    let (sa, sb) = (splat_of(s, a), splat_of(s, b));
    let mut k = 0;
    while k + l <= n {
        let r = f(load(s, a, sa, k), load(s, b, sb, k));
        s.store_f32(&mut o[k..], r);
        k += l;
    }
    if k < n {
        let r = f(load_partial(s, a, sa, k), load_partial(s, b, sb, k));
        s.store_f32_partial(&mut o[k..], r);
    }
}

/// `o[k] = f(a[k], b[k], c[k])`.
#[inline(always)]
fn map3<S: Simd>(s: S, a: View<'_>, b: View<'_>, c: View<'_>, o: &mut [f32], f: impl Fn(S::F, S::F, S::F) -> S::F) {
    let (l, n) = (S::LANES, o.len());
    let (sa, sb, sc) = (splat_of(s, a), splat_of(s, b), splat_of(s, c));
    let mut k = 0;
    while k + l <= n {
        let r = f(load(s, a, sa, k), load(s, b, sb, k), load(s, c, sc, k));
        s.store_f32(&mut o[k..], r);
        k += l;
    }
    if k < n {
        let r = f(load_partial(s, a, sa, k), load_partial(s, b, sb, k), load_partial(s, c, sc, k));
        s.store_f32_partial(&mut o[k..], r);
    }
}

/// `o[k] = f(o[k], b[k])`.
#[inline(always)]
fn map2_in_place<S: Simd>(s: S, o: &mut [f32], b: View<'_>, f: impl Fn(S::F, S::F) -> S::F) {
    let (l, n) = (S::LANES, o.len());
    let sb = splat_of(s, b);
    let mut k = 0;
    while k + l <= n {
        let r = f(s.load_f32(&o[k..]), load(s, b, sb, k));
        s.store_f32(&mut o[k..], r);
        k += l;
    }
    if k < n {
        let r = f(s.load_f32_partial(&o[k..]), load_partial(s, b, sb, k));
        s.store_f32_partial(&mut o[k..], r);
    }
}

/// `o[k] = f(x[k])`.
#[inline(always)]
pub(crate) fn map1<S: Simd>(s: S, x: &[f32], o: &mut [f32], f: impl Fn(S::F) -> S::F) {
    map2(
        s,
        View::Slice(x),
        View::Splat(0.0),
        o,
        #[inline(always)]
        |a, _| f(a),
    )
}

/// IEEE 754-2019 `maximum` (`max = true`) or `minimum`: NaN if either is
/// NaN; `±0` resolved by the sign bits (`+0` wins `maximum`, `−0` `minimum`).
#[inline(always)]
fn ieee_max_min<S: Simd>(s: S, a: S::F, b: S::F, max: bool) -> S::F {
    let m = if max { s.max(a, b) } else { s.min(a, b) };
    let (ab, bb) = (s.to_bits(a), s.to_bits(b));
    let zeros = if max { s.bits_to_float(s.and_i(ab, bb)) } else { s.bits_to_float(s.or_i(ab, bb)) };
    let m = s.select(s.eq(a, b), zeros, m);
    s.select(s.or(s.is_nan(a), s.is_nan(b)), s.add(a, b), m)
}

#[inline(always)]
fn flag<S: Simd>(s: S, m: S::M) -> S::F {
    s.select(m, s.splat(1.0), s.splat(0.0))
}

/// `f(a, b)` for every op but `pow`, on views of one block.
#[inline(always)]
fn apply_binary<S: Simd>(s: S, op: BinaryOp, a: View<'_>, b: View<'_>, o: &mut [f32]) {
    match op {
        BinaryOp::Add => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| s.add(x, y),
        ),
        BinaryOp::Sub => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| s.sub(x, y),
        ),
        BinaryOp::Mul => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| s.mul(x, y),
        ),
        BinaryOp::Div => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| s.div(x, y),
        ),
        BinaryOp::Maximum => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| ieee_max_min(s, x, y, true),
        ),
        BinaryOp::Minimum => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| ieee_max_min(s, x, y, false),
        ),
        BinaryOp::Eq => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| flag(s, s.eq(x, y)),
        ),
        BinaryOp::Ne => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| flag(s, s.not(s.eq(x, y))),
        ),
        BinaryOp::Lt => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| flag(s, s.lt(x, y)),
        ),
        BinaryOp::Le => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| flag(s, s.le(x, y)),
        ),
        BinaryOp::Gt => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| flag(s, s.lt(y, x)),
        ),
        BinaryOp::Ge => map2(
            s,
            a,
            b,
            o,
            #[inline(always)]
            |x, y| flag(s, s.le(y, x)),
        ),
        BinaryOp::Pow => unreachable!("pow takes the scalar reference"),
    }
}

#[inline(always)]
fn apply_binary_in_place<S: Simd>(s: S, op: BinaryOp, o: &mut [f32], b: View<'_>) {
    match op {
        BinaryOp::Add => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| s.add(x, y),
        ),
        BinaryOp::Sub => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| s.sub(x, y),
        ),
        BinaryOp::Mul => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| s.mul(x, y),
        ),
        BinaryOp::Div => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| s.div(x, y),
        ),
        BinaryOp::Maximum => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| ieee_max_min(s, x, y, true),
        ),
        BinaryOp::Minimum => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| ieee_max_min(s, x, y, false),
        ),
        BinaryOp::Eq => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| flag(s, s.eq(x, y)),
        ),
        BinaryOp::Ne => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| flag(s, s.not(s.eq(x, y))),
        ),
        BinaryOp::Lt => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| flag(s, s.lt(x, y)),
        ),
        BinaryOp::Le => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| flag(s, s.le(x, y)),
        ),
        BinaryOp::Gt => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| flag(s, s.lt(y, x)),
        ),
        BinaryOp::Ge => map2_in_place(
            s,
            o,
            b,
            #[inline(always)]
            |x, y| flag(s, s.le(y, x)),
        ),
        BinaryOp::Pow => unreachable!("pow takes the scalar reference"),
    }
}

/// Walks a `rows × n` block in pieces of at most [`BLOCK`] that stay within
/// one row when `per_row`; calls `f(i, j, len, at)`.
#[inline(always)]
fn for_blocks(rows: usize, n: usize, per_row: bool, mut f: impl FnMut(usize, usize, usize, usize)) {
    let (rows, width) = if per_row { (rows, n) } else { (usize::from(rows * n > 0), rows * n) };
    for i in 0..rows {
        let mut j = 0;
        while j < width {
            let len = BLOCK.min(width - j);
            f(i, j, len, i * width + j);
            j += len;
        }
    }
}

fn per_row(ops: &[&Operand<'_>]) -> bool {
    ops.iter().any(|o| matches!(o, Operand::Row(_) | Operand::Col(_)))
}

/// SIMD body of [`crate::ew::binary`].
#[inline(always)]
pub(crate) fn binary<S: Simd>(
    s: S,
    op: BinaryOp,
    rows: usize,
    n: usize,
    a: Operand<'_>,
    b: Operand<'_>,
    mut dst: Dst<'_>,
) {
    if op == BinaryOp::Pow || operand_is_f64(&a) || operand_is_f64(&b) || dst.elem() == DType::F64 {
        return crate::scalar::ew::binary_scalar(op, rows, n, a, b, dst);
    }
    let (mut ba, mut bb, mut bo) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    for_blocks(
        rows,
        n,
        per_row(&[&a, &b]),
        #[inline(always)]
        |i, j, len, at| {
            let va = view(s, &a, i, j, at, len, &mut ba);
            let vb = view(s, &b, i, j, at, len, &mut bb);
            with_out(
                s,
                &mut dst,
                at,
                len,
                &mut bo,
                #[inline(always)]
                |o| apply_binary(s, op, va, vb, o),
            );
        },
    );
}

/// SIMD body of [`crate::ew::axpy`]: `x` staged in f32 blocks, `y` updated
/// in place when f32, else widened, updated and rounded back per block.
#[inline(always)]
pub(crate) fn axpy<S: Simd>(s: S, alpha: f32, x: Src<'_>, mut y: Dst<'_>) {
    if x.elem() == DType::F64 || y.elem() == DType::F64 {
        return crate::scalar::ew::axpy_scalar(alpha, x, y);
    }
    let a = s.splat(alpha);
    let (mut bx, mut by) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    let n = x.len();
    let mut j = 0;
    while j < n {
        let len = BLOCK.min(n - j);
        let xv = View::Slice(widen(s, x, j, len, &mut bx));
        match &mut y {
            Dst::F32(d) => map2_in_place(
                s,
                &mut d[j..j + len],
                xv,
                #[inline(always)]
                |acc, v| s.mul_add(a, v, acc),
            ),
            other => {
                let o = &mut by[..len];
                match other.as_src() {
                    Src::F16(h) => cast::convert::<S, f16, f32>(s, &h[j..j + len], o),
                    Src::Bf16(h) => cast::convert::<S, bf16, f32>(s, &h[j..j + len], o),
                    _ => unreachable!("f32 is updated in place, f64 by the reference"),
                }
                map2_in_place(
                    s,
                    o,
                    xv,
                    #[inline(always)]
                    |acc, v| s.mul_add(a, v, acc),
                );
                narrow(s, o, other, j);
            }
        }
        j += len;
    }
}

/// SIMD body of [`crate::ew::binary_assign`].
#[inline(always)]
pub(crate) fn binary_assign<S: Simd>(s: S, op: BinaryOp, rows: usize, n: usize, mut acc: Dst<'_>, b: Operand<'_>) {
    if op == BinaryOp::Pow || operand_is_f64(&b) || acc.elem() == DType::F64 {
        return crate::scalar::ew::binary_assign_scalar(op, rows, n, acc, b);
    }
    let (mut bb, mut bo) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    for_blocks(
        rows,
        n,
        per_row(&[&b]),
        #[inline(always)]
        |i, j, len, at| {
            let vb = view(s, &b, i, j, at, len, &mut bb);
            match &mut acc {
                Dst::F32(d) => apply_binary_in_place(s, op, &mut d[at..at + len], vb),
                other => {
                    let o = &mut bo[..len];
                    match other.as_src() {
                        Src::F16(x) => cast::convert::<S, f16, f32>(s, &x[at..at + len], o),
                        Src::Bf16(x) => cast::convert::<S, bf16, f32>(s, &x[at..at + len], o),
                        _ => unreachable!("f32 is handled in place, f64 by the reference"),
                    }
                    apply_binary_in_place(s, op, o, vb);
                    narrow(s, o, other, at);
                }
            }
        },
    );
}

/// `f(x)` for one op on f32 vectors.
#[inline(always)]
fn apply_unary<S: Simd>(s: S, op: UnaryOp, x: &[f32], o: &mut [f32]) {
    let zero = s.splat(0.0);
    let one = s.splat(1.0);
    match op {
        UnaryOp::Neg => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| s.neg(v),
        ),
        UnaryOp::Abs => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| s.abs(v),
        ),
        UnaryOp::Exp => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| math::exp(s, v),
        ),
        UnaryOp::Log => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| math::ln(s, v),
        ),
        UnaryOp::Sqrt => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| s.sqrt(v),
        ),
        UnaryOp::Rsqrt => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| s.div(one, s.sqrt(v)),
        ),
        UnaryOp::Recip => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| s.div(one, v),
        ),
        UnaryOp::Square => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| s.mul(v, v),
        ),
        UnaryOp::Tanh => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| math::tanh(s, v),
        ),
        UnaryOp::Sigmoid => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| math::sigmoid(s, v),
        ),
        // max(v, 0) is +0 for −0 and 0 for NaN: put the NaN back.
        UnaryOp::Relu => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| s.select(s.is_nan(v), v, s.max(v, zero)),
        ),
        UnaryOp::GeluTanh => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| math::gelu_tanh(s, v),
        ),
        UnaryOp::GeluErf => map1(
            s,
            x,
            o,
            #[inline(always)]
            |v| math::gelu_erf(s, v),
        ),
    }
}

/// SIMD body of [`crate::ew::unary`].
#[inline(always)]
pub(crate) fn unary<S: Simd>(s: S, op: UnaryOp, x: Src<'_>, mut dst: Dst<'_>) {
    if x.elem() == DType::F64 || dst.elem() == DType::F64 {
        return crate::scalar::ew::unary_scalar(op, x, dst);
    }
    let (mut bx, mut bo) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    for_blocks(
        1,
        x.len(),
        false,
        #[inline(always)]
        |_, _, len, at| {
            let v = widen(s, x, at, len, &mut bx);
            with_out(
                s,
                &mut dst,
                at,
                len,
                &mut bo,
                #[inline(always)]
                |o| apply_unary(s, op, v, o),
            );
        },
    );
}

/// `g·f'(saved)` for one op on f32 vectors.
#[inline(always)]
fn apply_grad<S: Simd>(s: S, op: GradOp, g: &[f32], y: &[f32], o: &mut [f32]) {
    let (g, y) = (View::Slice(g), View::Slice(y));
    let zero = s.splat(0.0);
    match op {
        GradOp::Relu => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, x| s.select(s.lt(zero, x), g, zero),
        ),
        GradOp::Abs => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, x| {
                let r = s.select(s.lt(zero, x), g, s.select(s.lt(x, zero), s.neg(g), s.mul(zero, g)));
                s.select(s.is_nan(x), x, r)
            },
        ),
        GradOp::Exp => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, y| s.mul(g, y),
        ),
        GradOp::Log => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, x| s.div(g, x),
        ),
        // g/(2y), as (g/2)/y where 2y would overflow.
        GradOp::Sqrt => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, y| {
                let big = s.lt(s.splat(1e38), s.abs(y));
                s.select(big, s.div(s.mul(g, s.splat(0.5)), y), s.div(g, s.add(y, y)))
            },
        ),
        // Products of several factors are formed on mantissas and exponents
        // (one rounding): a subnormal g times large factors keeps its bits.
        GradOp::Rsqrt => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, y| math::product(s, -0.5, [g, y, y, y]),
        ),
        GradOp::Recip => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, y| math::product(s, -1.0, [g, y, y]),
        ),
        // (g·x)·2: the doubling is exact, 2g could overflow first.
        GradOp::Square => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, x| s.mul(s.mul(g, x), s.splat(2.0)),
        ),
        // 1 − y² with one rounding: y² ≈ 1 would cancel.
        GradOp::Tanh => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, y| s.mul(g, s.neg_mul_add(y, y, s.splat(1.0))),
        ),
        GradOp::Sigmoid => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, y| math::product(s, 1.0, [g, y, s.sub(s.splat(1.0), y)]),
        ),
        GradOp::GeluTanh => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, x| math::gelu_tanh_grad(s, g, x),
        ),
        GradOp::GeluErf => map2(
            s,
            g,
            y,
            o,
            #[inline(always)]
            |g, x| math::gelu_erf_grad(s, g, x),
        ),
    }
}

/// SIMD body of [`crate::ew::unary_grad`].
#[inline(always)]
pub(crate) fn unary_grad<S: Simd>(s: S, op: GradOp, g: Src<'_>, saved: Src<'_>, mut dst: Dst<'_>) {
    if g.elem() == DType::F64 || saved.elem() == DType::F64 || dst.elem() == DType::F64 {
        return crate::scalar::ew::unary_grad_scalar(op, g, saved, dst);
    }
    let (mut bg, mut by, mut bo) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    for_blocks(
        1,
        g.len(),
        false,
        #[inline(always)]
        |_, _, len, at| {
            let gv = widen(s, g, at, len, &mut bg);
            let yv = widen(s, saved, at, len, &mut by);
            with_out(
                s,
                &mut dst,
                at,
                len,
                &mut bo,
                #[inline(always)]
                |o| apply_grad(s, op, gv, yv, o),
            );
        },
    );
}

/// SIMD body of [`crate::ew::select`]: a non-zero (or NaN) condition picks `a`.
#[inline(always)]
pub(crate) fn select<S: Simd>(
    s: S,
    rows: usize,
    n: usize,
    cond: Operand<'_>,
    a: Operand<'_>,
    b: Operand<'_>,
    mut dst: Dst<'_>,
) {
    if [&cond, &a, &b].iter().any(
        #[inline(always)]
        |o| operand_is_f64(o),
    ) || dst.elem() == DType::F64
    {
        return crate::scalar::ew::select_scalar(rows, n, cond, a, b, dst);
    }
    let (mut bc, mut ba, mut bb, mut bo) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    for_blocks(
        rows,
        n,
        per_row(&[&cond, &a, &b]),
        #[inline(always)]
        |i, j, len, at| {
            let vc = view(s, &cond, i, j, at, len, &mut bc);
            let va = view(s, &a, i, j, at, len, &mut ba);
            let vb = view(s, &b, i, j, at, len, &mut bb);
            let zero = s.splat(0.0);
            with_out(
                s,
                &mut dst,
                at,
                len,
                &mut bo,
                #[inline(always)]
                |o| {
                    map3(
                        s,
                        vc,
                        va,
                        vb,
                        o,
                        #[inline(always)]
                        |c, x, y| s.select(s.eq(c, zero), y, x),
                    )
                },
            );
        },
    );
}
