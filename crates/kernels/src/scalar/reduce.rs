//! Reference reductions: FP32 accumulation for f32/f16/bf16 (f64 when the
//! input or output is f64), strictly sequential, rounded once to the output.
//!
//! Special values: a NaN element makes sum, mean, max, min and sum of
//! squares NaN (max/min use IEEE `maximum`/`minimum`, so `max(−0, +0) = +0`);
//! `+Inf + −Inf` is NaN as IEEE says. Softmax: a row holding NaN or +Inf is
//! all NaN, a row of −Inf is all NaN (0/0, as PyTorch), a −Inf element gives
//! 0 (log-softmax −Inf). Subnormals are kept; nothing is flushed.

use std::ops::{Add, AddAssign, Div, Mul, Sub};

use crate::reduce::{ArgOp, ReduceOp, SoftmaxOp};
use crate::slice::{CHUNK, Dst, Src, computes_in_f64};

/// An accumulation type: f32 (for every non-f64 input) or f64.
pub trait Acc:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// +Inf.
    const INF: Self;
    /// Widens `src[start..start + buf.len()]` exactly.
    fn load(src: &Src<'_>, start: usize, buf: &mut [Self]);
    /// Rounds `vals` once into `dst[start..]`.
    fn store(dst: &mut Dst<'_>, start: usize, vals: &[Self]);
    /// `n` as this type.
    fn from_usize(n: usize) -> Self;
    /// `eˣ` within 1 ulp (f32: evaluated in f64 and rounded once).
    fn exp(self) -> Self;
    /// `ln x` within 1 ulp.
    fn ln(self) -> Self;
    /// NaN test.
    fn is_nan(self) -> bool;
    /// Negation.
    fn neg(self) -> Self;
    /// IEEE `maximum`.
    fn maximum(self, o: Self) -> Self;
    /// IEEE `minimum`.
    fn minimum(self, o: Self) -> Self;
    /// The value as f64 (exact).
    fn widen(self) -> f64;
}

macro_rules! acc {
    ($t:ty, $load:ident, $store:ident, $exp:expr, $ln:expr) => {
        impl Acc for $t {
            const ZERO: Self = 0.0;
            const INF: Self = <$t>::INFINITY;
            #[inline]
            fn load(src: &Src<'_>, start: usize, buf: &mut [Self]) {
                src.$load(start, buf)
            }
            #[inline]
            fn store(dst: &mut Dst<'_>, start: usize, vals: &[Self]) {
                dst.$store(start, vals)
            }
            #[inline]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                $ln(self)
            }
            #[inline]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline]
            fn neg(self) -> Self {
                -self
            }
            #[inline]
            fn maximum(self, o: Self) -> Self {
                crate::ew::maximum(self as f64, o as f64) as $t
            }
            #[inline]
            fn minimum(self, o: Self) -> Self {
                crate::ew::minimum(self as f64, o as f64) as $t
            }
            #[inline]
            fn widen(self) -> f64 {
                self as f64
            }
        }
    };
}

acc!(f32, load_f32, store_f32, |x: f32| (x as f64).exp() as f32, |x: f32| (x as f64).ln() as f32);
acc!(f64, load_f64, store_f64, f64::exp, f64::ln);

/// Runs `$body` with `$T` the accumulation type of these slices.
macro_rules! with_acc_impl {
    ($srcs:expr, $dst:expr, $T:ident => $body:expr) => {
        if computes_in_f64($srcs, $dst) {
            type $T = f64;
            $body
        } else {
            type $T = f32;
            $body
        }
    };
}
pub(crate) use with_acc_impl as with_acc;

#[inline]
fn identity<T: Acc>(op: ReduceOp) -> T {
    match op {
        ReduceOp::Sum | ReduceOp::Mean | ReduceOp::SumSq => T::ZERO,
        ReduceOp::Max => T::INF.neg(),
        ReduceOp::Min => T::INF,
    }
}

#[inline]
fn fold<T: Acc>(op: ReduceOp, acc: T, x: T) -> T {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => acc + x,
        ReduceOp::SumSq => acc + x * x,
        ReduceOp::Max => acc.maximum(x),
        ReduceOp::Min => acc.minimum(x),
    }
}

#[inline]
fn finish<T: Acc>(op: ReduceOp, acc: T, count: usize) -> T {
    if op == ReduceOp::Mean { acc / T::from_usize(count) } else { acc }
}

fn rows_impl<T: Acc>(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    let mut buf = [T::ZERO; CHUNK];
    for i in 0..rows {
        let mut acc = identity::<T>(op);
        let mut j = 0;
        while j < n {
            let len = CHUNK.min(n - j);
            T::load(&x, i * n + j, &mut buf[..len]);
            for &v in &buf[..len] {
                acc = fold(op, acc, v);
            }
            j += len;
        }
        T::store(&mut out, i, &[finish(op, acc, n)]);
    }
}

fn cols_impl<T: Acc>(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    let (mut buf, mut acc) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK]);
    let mut j = 0;
    while j < n {
        let len = CHUNK.min(n - j);
        acc[..len].fill(identity::<T>(op));
        for i in 0..rows {
            T::load(&x, i * n + j, &mut buf[..len]);
            for (a, &v) in acc[..len].iter_mut().zip(&buf[..len]) {
                *a = fold(op, *a, v);
            }
        }
        for a in &mut acc[..len] {
            *a = finish(op, *a, rows);
        }
        T::store(&mut out, j, &acc[..len]);
        j += len;
    }
}

/// Reference of [`crate::reduce::reduce_rows`].
pub fn reduce_rows_scalar(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) {
    with_acc!(&[x.elem()], out.elem(), T => rows_impl::<T>(op, x, rows, n, out))
}

/// Reference of [`crate::reduce::reduce_cols`].
pub fn reduce_cols_scalar(op: ReduceOp, x: Src<'_>, rows: usize, n: usize, out: Dst<'_>) {
    with_acc!(&[x.elem()], out.elem(), T => cols_impl::<T>(op, x, rows, n, out))
}

/// Whether `v` beats the current best `b` (a NaN beats everything but an earlier NaN).
#[inline]
fn better(op: ArgOp, v: f64, b: f64) -> bool {
    if b.is_nan() {
        return false;
    }
    v.is_nan()
        || match op {
            ArgOp::Max => v > b,
            ArgOp::Min => v < b,
        }
}

/// Reference of [`crate::reduce::arg_rows`]. Values are compared exactly (as f64).
pub fn arg_rows_scalar(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) {
    let mut buf = [0.0f64; CHUNK];
    for (i, o) in out.iter_mut().enumerate().take(rows) {
        let (mut best, mut at) = (f64::NAN, 0usize);
        let mut j = 0;
        while j < n {
            let len = CHUNK.min(n - j);
            x.load_f64(i * n + j, &mut buf[..len]);
            for (k, &v) in buf[..len].iter().enumerate() {
                if j + k == 0 || better(op, v, best) {
                    (best, at) = (v, j + k);
                }
            }
            j += len;
        }
        *o = at;
    }
}

/// Reference of [`crate::reduce::arg_cols`].
pub fn arg_cols_scalar(op: ArgOp, x: Src<'_>, rows: usize, n: usize, out: &mut [usize]) {
    let (mut buf, mut best) = ([0.0f64; CHUNK], [0.0f64; CHUNK]);
    let mut j = 0;
    while j < n {
        let len = CHUNK.min(n - j);
        out[j..j + len].fill(0);
        for i in 0..rows {
            x.load_f64(i * n + j, &mut buf[..len]);
            for k in 0..len {
                if i == 0 || better(op, buf[k], best[k]) {
                    best[k] = buf[k];
                    out[j + k] = i;
                }
            }
        }
        j += len;
    }
}

/// Loads `len` elements of line `l` (a row, or a column when `stride == n`).
#[inline]
fn load_line<T: Acc>(x: &Src<'_>, first: usize, stride: usize, buf: &mut [T], tmp: &mut [T; 1]) {
    if stride == 1 {
        T::load(x, first, buf);
    } else {
        for (k, b) in buf.iter_mut().enumerate() {
            T::load(x, first + k * stride, tmp);
            *b = tmp[0];
        }
    }
}

/// Softmax of the `len` elements `first, first + stride, …`, in three passes
/// (max, Σ e^(x−m), write), recomputing the exponentials instead of
/// storing them so no scratch memory is needed.
fn softmax_line<T: Acc>(op: SoftmaxOp, x: &Src<'_>, out: &mut Dst<'_>, first: usize, stride: usize, len: usize) {
    let (mut buf, mut tmp) = ([T::ZERO; CHUNK], [T::ZERO; 1]);
    let mut m = T::INF.neg();
    let mut j = 0;
    while j < len {
        let c = CHUNK.min(len - j);
        load_line(x, first + j * stride, stride, &mut buf[..c], &mut tmp);
        for &v in &buf[..c] {
            m = m.maximum(v);
        }
        j += c;
    }
    let mut s = T::ZERO;
    j = 0;
    while j < len {
        let c = CHUNK.min(len - j);
        load_line(x, first + j * stride, stride, &mut buf[..c], &mut tmp);
        for &v in &buf[..c] {
            s += (v - m).exp();
        }
        j += c;
    }
    let log_s = s.ln();
    j = 0;
    while j < len {
        let c = CHUNK.min(len - j);
        load_line(x, first + j * stride, stride, &mut buf[..c], &mut tmp);
        for v in &mut buf[..c] {
            *v = match op {
                SoftmaxOp::Softmax => (*v - m).exp() / s,
                SoftmaxOp::LogSoftmax => (*v - m) - log_s,
            };
        }
        if stride == 1 {
            T::store(out, first + j, &buf[..c]);
        } else {
            for (k, v) in buf[..c].iter().enumerate() {
                T::store(out, first + (j + k) * stride, &[*v]);
            }
        }
        j += c;
    }
}

/// Reference of [`crate::reduce::softmax_rows`].
pub fn softmax_rows_scalar(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    with_acc!(&[x.elem()], out.elem(), T => {
        for i in 0..rows {
            softmax_line::<T>(op, &x, &mut out, i * n, 1, n);
        }
    })
}

/// Reference of [`crate::reduce::softmax_cols`] (column by column; the
/// SIMD paths vectorise across columns).
pub fn softmax_cols_scalar(op: SoftmaxOp, x: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    with_acc!(&[x.elem()], out.elem(), T => {
        for j in 0..n {
            softmax_line::<T>(op, &x, &mut out, j, n, rows);
        }
    })
}

/// Reference of [`crate::reduce::softmax_grad_rows`]:
/// softmax `dx = y·(g − Σ g·y)`; log-softmax `dx = g − e^y·Σ g`.
pub fn softmax_grad_rows_scalar(op: SoftmaxOp, g: Src<'_>, y: Src<'_>, rows: usize, n: usize, mut out: Dst<'_>) {
    with_acc!(&[g.elem(), y.elem()], out.elem(), T => {
        let (mut gb, mut yb) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK]);
        for i in 0..rows {
            let mut s = T::ZERO;
            let mut j = 0;
            while j < n {
                let c = CHUNK.min(n - j);
                T::load(&g, i * n + j, &mut gb[..c]);
                T::load(&y, i * n + j, &mut yb[..c]);
                for (&a, &b) in gb[..c].iter().zip(&yb[..c]) {
                    s += match op {
                        SoftmaxOp::Softmax => a * b,
                        SoftmaxOp::LogSoftmax => a,
                    };
                }
                j += c;
            }
            j = 0;
            while j < n {
                let c = CHUNK.min(n - j);
                T::load(&g, i * n + j, &mut gb[..c]);
                T::load(&y, i * n + j, &mut yb[..c]);
                for (a, &b) in gb[..c].iter_mut().zip(&yb[..c]) {
                    *a = match op {
                        SoftmaxOp::Softmax => b * (*a - s),
                        SoftmaxOp::LogSoftmax => *a - b.exp() * s,
                    };
                }
                T::store(&mut out, i * n + j, &gb[..c]);
                j += c;
            }
        }
    })
}

/// Reference of [`crate::reduce::dot`]: one accumulator, in order.
pub fn dot_scalar(a: Src<'_>, b: Src<'_>) -> f64 {
    assert_eq!(a.len(), b.len(), "reduce::dot: a holds {} elements, b {}", a.len(), b.len());
    with_acc!(&[a.elem(), b.elem()], crate::slice::Elem::F32, T => {
        let (mut x, mut y) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK]);
        let mut acc = T::ZERO;
        let mut j = 0;
        while j < a.len() {
            let c = CHUNK.min(a.len() - j);
            T::load(&a, j, &mut x[..c]);
            T::load(&b, j, &mut y[..c]);
            for (&p, &q) in x[..c].iter().zip(&y[..c]) {
                acc += p * q;
            }
            j += c;
        }
        T::widen(acc)
    })
}

fn moments_line<T: Acc>(x: &Src<'_>, first: usize, stride: usize, len: usize) -> (T, T) {
    let (mut buf, mut tmp) = ([T::ZERO; CHUNK], [T::ZERO; 1]);
    let mut sum = T::ZERO;
    let mut j = 0;
    while j < len {
        let c = CHUNK.min(len - j);
        load_line(x, first + j * stride, stride, &mut buf[..c], &mut tmp);
        for &v in &buf[..c] {
            sum += v;
        }
        j += c;
    }
    let mean = sum / T::from_usize(len);
    let mut ss = T::ZERO;
    j = 0;
    while j < len {
        let c = CHUNK.min(len - j);
        load_line(x, first + j * stride, stride, &mut buf[..c], &mut tmp);
        for &v in &buf[..c] {
            let d = v - mean;
            ss += d * d;
        }
        j += c;
    }
    (mean, ss / T::from_usize(len))
}

/// Reference of [`crate::reduce::moments_rows`] (two passes, in order).
pub fn moments_rows_scalar(x: Src<'_>, rows: usize, n: usize, mut mean: Dst<'_>, mut var: Dst<'_>) {
    let out = if mean.elem() == crate::slice::Elem::F64 { mean.elem() } else { var.elem() };
    with_acc!(&[x.elem()], out, T => {
        for i in 0..rows {
            let (m, v) = moments_line::<T>(&x, i * n, 1, n);
            T::store(&mut mean, i, &[m]);
            T::store(&mut var, i, &[v]);
        }
    })
}

/// Reference of [`crate::reduce::moments_cols`].
pub fn moments_cols_scalar(x: Src<'_>, rows: usize, n: usize, mut mean: Dst<'_>, mut var: Dst<'_>) {
    let out = if mean.elem() == crate::slice::Elem::F64 { mean.elem() } else { var.elem() };
    with_acc!(&[x.elem()], out, T => {
        for j in 0..n {
            let (m, v) = moments_line::<T>(&x, j, n, rows);
            T::store(&mut mean, j, &[m]);
            T::store(&mut var, j, &[v]);
        }
    })
}

/// Reference of [`crate::reduce::max_pool2x2`]: each window scanned in
/// row-major order on the values widened to f64, a later element replacing
/// the running choice when that is not NaN and the element is NaN or larger.
pub fn max_pool2x2_scalar(planes: usize, h: usize, w: usize, x: Src<'_>, y: Dst<'_>, idx: &mut [u8]) {
    match (x, y) {
        (Src::F64(x), Dst::F64(y)) => pool2x2(planes, h, w, x, y, idx, |v| v),
        (Src::F32(x), Dst::F32(y)) => pool2x2(planes, h, w, x, y, idx, f64::from),
        (Src::F16(x), Dst::F16(y)) => pool2x2(planes, h, w, x, y, idx, half::f16::to_f64),
        (Src::Bf16(x), Dst::Bf16(y)) => pool2x2(planes, h, w, x, y, idx, half::bf16::to_f64),
        (x, y) => panic!("reduce::max_pool2x2: x is {:?}, y is {:?}", x.elem(), y.elem()),
    }
}

fn pool2x2<T: Copy>(planes: usize, h: usize, w: usize, x: &[T], y: &mut [T], idx: &mut [u8], wide: impl Fn(T) -> f64) {
    let (oh, ow) = (h / 2, w / 2);
    for p in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let at = |k: usize| x[p * h * w + (2 * oy + k / 2) * w + 2 * ox + k % 2];
                let mut best = 0;
                for k in 1..4 {
                    let (a, b) = (wide(at(k)), wide(at(best)));
                    if !b.is_nan() && (a > b || a.is_nan()) {
                        best = k;
                    }
                }
                let o = (p * oh + oy) * ow + ox;
                y[o] = at(best);
                idx[o] = best as u8;
            }
        }
    }
}
