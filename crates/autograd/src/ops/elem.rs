//! Element-generic helpers for the layer ops (conv, pooling, norms,
//! embedding, dropout): a storage type `T` (f64, f32, f16, bf16) paired
//! with its accumulation type (f64 for f64, f32 otherwise), GEMM on slices
//! with FP32 accumulation for the 16-bit types, and the dtype dispatch that
//! turns a [`Tensor`] into a typed slice.

use std::ops::{Add, AddAssign, Div, Mul, Sub};

use half::{bf16, f16};
use mixprec_tensor::kernels::convert;
use mixprec_tensor::kernels::ew::{self, UnaryOp};
use mixprec_tensor::kernels::gemm::{self, Transpose};
use mixprec_tensor::{Element, Tensor};

/// An accumulation type: f32 (for f32/f16/bf16 storage) or f64.
pub(crate) trait Real:
    Element
    + Default
    + PartialOrd
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    /// An integer whose order is the order of the values with every NaN
    /// above +Inf and equal to each other, and −0 equal to +0 (so `>`
    /// between keys is [`max_pool2d`'s](crate::var::Var::max_pool2d)
    /// "replaces the running maximum" without branches on NaN).
    type Key: Copy + Ord;
    fn of(x: f64) -> Self;
    fn is_nan(self) -> bool;
    fn key(self) -> Self::Key;
}

impl Real for f32 {
    type Key = i32;
    #[inline]
    fn key(self) -> i32 {
        let b = self.to_bits() as i32;
        // Negative values: the magnitude bits flipped (larger magnitudes
        // order lower) and one added, so −0 and +0 are both 0. Without branches.
        let k = (b ^ (((b >> 31) as u32) >> 1) as i32) + ((b >> 31) & 1);
        let nan = -i32::from((b & 0x7FFF_FFFF) > 0x7F80_0000);
        (k & !nan) | (i32::MAX & nan)
    }
    #[inline]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline]
    fn of(x: f64) -> f32 {
        x as f32
    }
}

impl Real for f64 {
    type Key = i64;
    #[inline]
    fn key(self) -> i64 {
        let b = self.to_bits() as i64;
        let k = (b ^ (((b >> 63) as u64) >> 1) as i64) + ((b >> 63) & 1);
        if self.is_nan() { i64::MAX } else { k }
    }
    #[inline]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline]
    fn of(x: f64) -> f64 {
        x
    }
}

/// A storage type with its accumulation type and GEMM.
pub(crate) trait Elem: Element {
    type Acc: Real;
    /// Whether the type is narrower than its accumulation type (f16,
    /// bf16): element loops then widen a run into FP32 scratch with
    /// [`Elem::widen`] and round it back with [`Elem::narrow`] instead of
    /// converting one element at a time.
    const NARROW: bool = false;
    /// Widens to the accumulation type (exact).
    fn acc(self) -> Self::Acc;
    /// Rounds from the accumulation type once (nearest, ties to even).
    fn from_acc(x: Self::Acc) -> Self;
    /// `dst[i] = src[i].acc()` for equal lengths; f16/bf16 through the
    /// conversion kernels (bit-identical to [`Elem::acc`]).
    fn widen(src: &[Self], dst: &mut [Self::Acc]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s.acc();
        }
    }
    /// `dst[i] = from_acc(src[i])` for equal lengths; f16/bf16 through the
    /// conversion kernels (bit-identical to [`Elem::from_acc`] for every
    /// non-NaN value; a NaN stays a NaN).
    fn narrow(src: &[Self::Acc], dst: &mut [Self]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = Self::from_acc(s);
        }
    }
    /// An integer whose order is the order of [`Real::key`] on the widened
    /// values (every NaN above +Inf, −0 equal to +0), computed on the
    /// stored bits: f16/bf16 compare as `i16` without widening.
    type Key: Copy + Ord;
    fn key(self) -> Self::Key;
    /// `s` as a slice of the accumulation type when `Self` is that type
    /// (f32, f64): outputs computed in it are then written in place.
    fn acc_slice_mut(s: &mut [Self]) -> Option<&mut [Self::Acc]>;
    /// `C = op(A)·op(B) + beta·C`, row-major, `ldc = n`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        beta: Self::Acc,
        c: &mut [Self::Acc],
    );

    /// `op(B)` (`k × n`) prepared once for many [`Elem::gemm_packed_b`]
    /// calls (packed for the GEMM kernels; a plain copy for f64).
    fn pack_b(tb: Transpose, k: usize, n: usize, b: &[Self], ldb: usize) -> PackedB<Self>;

    /// `C = op(A)·op(B) + beta·C` with op(B) from [`Elem::pack_b`], `ldc =
    /// n`; the same results as [`Elem::gemm`] with B as packed.
    fn gemm_packed_b(
        ta: Transpose,
        m: usize,
        a: &[Self],
        lda: usize,
        b: &PackedB<Self>,
        beta: Self::Acc,
        c: &mut [Self::Acc],
    );

    /// One LSTM step over rows of `hs` (the kernels' `ew::lstm_cell`): the
    /// gate pre-activations in `gates` become activations; `c`, `tanh_c`
    /// and `h` are written. This default (the f64 reference) runs the
    /// unary kernels per gate and the cell update in loops.
    fn lstm_cell(
        hs: usize,
        gates: &mut [Self::Acc],
        c_prev: &[Self::Acc],
        c: &mut [Self::Acc],
        tanh_c: &mut [Self::Acc],
        h: &mut [Self],
    ) {
        for ((r, ar), (co, cn)) in
            gates.chunks_exact_mut(4 * hs).enumerate().zip(c_prev.chunks_exact(hs).zip(c.chunks_exact_mut(hs)))
        {
            let (ar_if, rest) = ar.split_at_mut(2 * hs);
            let (ar_g, ar_o) = rest.split_at_mut(hs);
            for (op, x) in
                [(UnaryOp::Sigmoid, &mut *ar_if), (UnaryOp::Tanh, &mut *ar_g), (UnaryOp::Sigmoid, &mut *ar_o)]
            {
                let v = x.to_vec();
                ew::unary(op, Element::src(&v[..]), Element::dst(x));
            }
            let tc = &mut tanh_c[r * hs..(r + 1) * hs];
            for j in 0..hs {
                cn[j] = ar_if[hs + j] * co[j] + ar_if[j] * ar_g[j];
            }
            ew::unary(UnaryOp::Tanh, Element::src(&*cn), Element::dst(&mut *tc));
            for j in 0..hs {
                h[r * hs + j] = Self::from_acc(ar_o[j] * tc[j]);
            }
        }
    }

    /// The backward of [`Elem::lstm_cell`] for one step (the kernels'
    /// `ew::lstm_cell_grad`); this default is the f64 reference.
    #[allow(clippy::too_many_arguments)]
    fn lstm_cell_grad(
        hs: usize,
        act: &[Self::Acc],
        c_prev: &[Self::Acc],
        tanh_c: &[Self::Acc],
        dy: &[Self],
        dh_next: &[Self::Acc],
        dc: &mut [Self::Acc],
        dgates: &mut [Self],
    ) {
        let one = Self::Acc::of(1.0);
        for (r, (ar, dg)) in act.chunks_exact(4 * hs).zip(dgates.chunks_exact_mut(4 * hs)).enumerate() {
            for j in 0..hs {
                let k = r * hs + j;
                let (i, f, g, o) = (ar[j], ar[hs + j], ar[2 * hs + j], ar[3 * hs + j]);
                let dh = dy[k].acc() + dh_next[k];
                let tcv = tanh_c[k];
                let dcv = dc[k] + dh * o * (one - tcv * tcv);
                dg[j] = Self::from_acc(dcv * g * (i * (one - i)));
                dg[hs + j] = Self::from_acc(dcv * c_prev[k] * (f * (one - f)));
                dg[2 * hs + j] = Self::from_acc(dcv * i * (one - g * g));
                dg[3 * hs + j] = Self::from_acc(dh * tcv * (o * (one - o)));
                dc[k] = dcv * f;
            }
        }
    }
}

/// [`Real::key`]'s transform on the bits of a 16-bit float whose +Inf is
/// `inf` (f16 `0x7C00`, bf16 `0x7F80`): non-negative values keep their bits,
/// negative ones have their magnitude bits flipped and one added (so −0 is
/// 0 and larger magnitudes order lower), every NaN is `i16::MAX`. Widening
/// to f32 is exact and monotone, so these keys order as the widened
/// values' keys do. Without branches.
#[inline]
fn key16(bits: u16, inf: i16) -> i16 {
    let b = bits as i16;
    let k = (b ^ (((b >> 15) as u16) >> 1) as i16) + ((b >> 15) & 1);
    let nan = -i16::from((b & 0x7FFF) > inf);
    (k & !nan) | (i16::MAX & nan)
}

/// A GEMM operand `op(B)` prepared once ([`Elem::pack_b`]).
pub(crate) enum PackedB<T: 'static> {
    /// Packed for the GEMM kernels.
    Kernels(gemm::PackedB<T>),
    /// As stored (the f64 reference), with its transpose flag, `k`, `n` and `ldb`.
    Plain(Transpose, usize, usize, Vec<T>, usize),
}

macro_rules! packed_via_kernels {
    () => {
        fn pack_b(tb: Transpose, k: usize, n: usize, b: &[Self], ldb: usize) -> PackedB<Self> {
            PackedB::Kernels(gemm::PackedB::new(tb, k, n, b, ldb))
        }

        fn gemm_packed_b(ta: Transpose, m: usize, a: &[Self], lda: usize, b: &PackedB<Self>, beta: f32, c: &mut [f32]) {
            let PackedB::Kernels(b) = b else { unreachable!("16/32-bit operands are packed for the kernels") };
            let ldc = b.n().max(1);
            gemm::gemm_packed_b(ta, m, 1.0, a, lda, b, beta, gemm::Output::F32(c), ldc, gemm::Epilogue::default());
        }

        fn lstm_cell(hs: usize, gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tanh_c: &mut [f32], h: &mut [Self]) {
            ew::lstm_cell(hs, gates, c_prev, c, tanh_c, Element::dst(h));
        }

        fn lstm_cell_grad(
            hs: usize,
            act: &[f32],
            c_prev: &[f32],
            tanh_c: &[f32],
            dy: &[Self],
            dh_next: &[f32],
            dc: &mut [f32],
            dgates: &mut [Self],
        ) {
            let saved = ew::LstmSaved { act, c_prev, tanh_c };
            ew::lstm_cell_grad(hs, saved, Element::src(dy), dh_next, dc, Element::dst(dgates));
        }
    };
}

impl Elem for f32 {
    type Acc = f32;
    type Key = i32;
    #[inline]
    fn key(self) -> i32 {
        Real::key(self)
    }
    fn acc_slice_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
    #[inline]
    fn acc(self) -> f32 {
        self
    }
    #[inline]
    fn from_acc(x: f32) -> f32 {
        x
    }
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
    ) {
        gemm::sgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, n.max(1));
    }

    packed_via_kernels!();
}

impl Elem for f16 {
    type Acc = f32;
    type Key = i16;
    #[inline]
    fn key(self) -> i16 {
        key16(self.to_bits(), 0x7C00)
    }
    fn acc_slice_mut(_: &mut [f16]) -> Option<&mut [f32]> {
        None
    }
    const NARROW: bool = true;
    fn widen(src: &[f16], dst: &mut [f32]) {
        convert::f16_to_f32(src, dst);
    }
    fn narrow(src: &[f32], dst: &mut [f16]) {
        convert::f32_to_f16(src, dst);
    }
    #[inline]
    fn acc(self) -> f32 {
        self.to_f32()
    }
    #[inline]
    fn from_acc(x: f32) -> f16 {
        f16::from_f32(x)
    }
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[f16],
        lda: usize,
        b: &[f16],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
    ) {
        gemm::hgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, n.max(1));
    }

    packed_via_kernels!();
}

impl Elem for bf16 {
    type Acc = f32;
    type Key = i16;
    #[inline]
    fn key(self) -> i16 {
        key16(self.to_bits(), 0x7F80)
    }
    fn acc_slice_mut(_: &mut [bf16]) -> Option<&mut [f32]> {
        None
    }
    const NARROW: bool = true;
    fn widen(src: &[bf16], dst: &mut [f32]) {
        convert::bf16_to_f32(src, dst);
    }
    fn narrow(src: &[f32], dst: &mut [bf16]) {
        convert::f32_to_bf16(src, dst);
    }
    #[inline]
    fn acc(self) -> f32 {
        self.to_f32()
    }
    #[inline]
    fn from_acc(x: f32) -> bf16 {
        bf16::from_f32(x)
    }
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[bf16],
        lda: usize,
        b: &[bf16],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
    ) {
        gemm::bgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, n.max(1));
    }

    packed_via_kernels!();
}

impl Elem for f64 {
    type Acc = f64;
    type Key = i64;
    #[inline]
    fn key(self) -> i64 {
        Real::key(self)
    }
    fn acc_slice_mut(s: &mut [f64]) -> Option<&mut [f64]> {
        Some(s)
    }
    #[inline]
    fn acc(self) -> f64 {
        self
    }
    #[inline]
    fn from_acc(x: f64) -> f64 {
        x
    }
    /// The f64 reference (gradient checks): plain loops.
    fn gemm(
        ta: Transpose,
        tb: Transpose,
        m: usize,
        n: usize,
        k: usize,
        a: &[f64],
        lda: usize,
        b: &[f64],
        ldb: usize,
        beta: f64,
        c: &mut [f64],
    ) {
        for i in 0..m {
            let row = &mut c[i * n..(i + 1) * n];
            if beta == 0.0 {
                row.fill(0.0);
            } else if beta != 1.0 {
                row.iter_mut().for_each(|v| *v *= beta);
            }
            for p in 0..k {
                let x = if ta == Transpose::No { a[i * lda + p] } else { a[p * lda + i] };
                for (j, v) in row.iter_mut().enumerate() {
                    let y = if tb == Transpose::No { b[p * ldb + j] } else { b[j * ldb + p] };
                    *v += x * y;
                }
            }
        }
    }

    fn pack_b(tb: Transpose, k: usize, n: usize, b: &[f64], ldb: usize) -> PackedB<f64> {
        PackedB::Plain(tb, k, n, b.to_vec(), ldb)
    }

    fn gemm_packed_b(ta: Transpose, m: usize, a: &[f64], lda: usize, b: &PackedB<f64>, beta: f64, c: &mut [f64]) {
        let PackedB::Plain(tb, k, n, b, ldb) = b else { unreachable!("f64 operands are kept as stored") };
        Self::gemm(ta, *tb, m, *n, *k, a, lda, b, *ldb, beta, c);
    }
}

/// The elements of a contiguous tensor of dtype `T` (callers make it
/// contiguous and dispatch on its dtype first).
pub(crate) fn elems<T: Element>(t: &Tensor) -> &[T] {
    t.as_slice::<T>().expect("a contiguous tensor of the dispatched dtype")
}

/// A tensor of `shape` whose elements `fill` writes (every one of them),
/// its buffer from the tape's cache when one fits: no allocation, zero-fill
/// or copy in a steady sequence of steps.
pub(crate) fn tensor_from<T: Element>(shape: &[usize], fill: impl FnOnce(&mut [T])) -> crate::Result<Tensor> {
    let mut t = crate::pool::take(shape, T::DTYPE)?;
    fill(t.data_mut::<T>()?);
    Ok(t)
}

/// `t` (contiguous, of the accumulation type of `T`) as a tensor of `T`,
/// rounded once by [`Elem::narrow`] into a buffer from the tape's cache; `t`'s
/// buffer goes back to the cache. `t` itself when `T` is not narrow.
pub(crate) fn narrowed<T: Elem>(t: Tensor) -> crate::Result<Tensor> {
    if !T::NARROW {
        return Ok(t);
    }
    let wide = t.as_slice::<T::Acc>().expect("a contiguous tensor of the accumulation type");
    let out = tensor_from::<T>(t.shape(), |d| T::narrow(wide, d))?;
    crate::pool::give(t);
    Ok(out)
}

/// Runs `f` on a scratch slice of `len` elements of `T` with unspecified
/// contents, a buffer from the tape's cache (returned to it afterwards).
pub(crate) fn with_scratch<T: Element, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> crate::Result<R> {
    let mut t = crate::pool::take(&[len], T::DTYPE)?;
    let r = f(t.data_mut::<T>()?);
    crate::pool::give(t);
    Ok(r)
}

/// `g`'s rows `[·, n]` summed per index into `[v, n]` in the accumulation
/// type, in order of position (the gradient of a table whose rows were
/// gathered). f16/bf16 rows are widened by the conversion kernels into one
/// scratch row first: the same sums as adding `x.acc()` element by element.
pub(crate) fn scatter_rows<T: Elem>(g: &[T], indices: &[usize], v: usize, n: usize) -> Vec<T::Acc> {
    let mut out = vec![T::Acc::default(); v * n];
    let mut wide = vec![T::Acc::default(); if T::NARROW { n } else { 0 }];
    for (row, &i) in g.chunks_exact(n.max(1)).zip(indices) {
        let out = &mut out[i * n..(i + 1) * n];
        if T::NARROW {
            T::widen(row, &mut wide);
            for (o, &x) in out.iter_mut().zip(&wide) {
                *o += x;
            }
        } else {
            for (o, &x) in out.iter_mut().zip(row) {
                *o += x.acc();
            }
        }
    }
    out
}

/// A tensor of `shape` holding `v`.
pub(crate) fn tensor<T: Element>(v: Vec<T>, shape: &[usize]) -> crate::Result<Tensor> {
    Ok(Tensor::from_vec(v, shape)?)
}

/// Runs `$body` with `$T` bound to the element type of `$dtype`.
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            mixprec_tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            mixprec_tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            mixprec_tensor::DType::F16 => {
                type $T = half::f16;
                $body
            }
            mixprec_tensor::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
        }
    };
}
pub(crate) use dispatch;
