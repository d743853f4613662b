//! `conv2d` (PyTorch's `F.conv2d` with `groups = 1`): `x` `[N, C, H, W]`,
//! weight `[O, C, KH, KW]`, optional bias `[O]`, stride, zero padding and
//! dilation per axis; `y` is `[N, O, OH, OW]` with
//! `OH = (H + 2·ph − dh·(KH − 1) − 1) / sh + 1` (likewise `OW`).
//!
//! Lowered to GEMM through im2col, image by image (so one image's columns
//! and product stay in cache): with `cols_n` `[C·KH·KW, OH·OW]` (padding
//! reads as zero) and `W` as `[O, C·KH·KW]`:
//! - `Y_n = W·cols_n + b` (f16/bf16 inputs through hgemm/bgemm, FP32
//!   accumulation, one rounding of the result);
//! - `dW = Σ_n dY_n·cols_nᵀ`, `db = Σ_{n,p} dY_n[:, p]` (row sums by the
//!   reduction kernels);
//! - `dx_n = col2im(Wᵀ·dY_n)` (overlapping windows add).
//!
//! Images run in parallel in tasks of a fixed number of images; each
//! element is computed by one task in a fixed order and `dW`'s per-task
//! sums are added in task order, so results do not depend on the thread
//! count.
//! The backward saves `x` and `W` (not the columns: they are rebuilt, so
//! the saved bytes are the input's, as PyTorch's).

use mixprec_tensor::kernels::ew::{self, BinaryOp, Operand};
use mixprec_tensor::kernels::gemm::Transpose;
use mixprec_tensor::kernels::reduce::{self, ReduceOp};
use mixprec_tensor::{Element, Tensor, TensorError};
use rayon::prelude::*;

use crate::autocast::cast_inputs_vec;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::elem::{Elem, Real, dispatch, elems, tensor, tensor_from, with_scratch};
use crate::var::Var;

/// The geometry of one convolution (or pooling window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    pub(crate) n: usize,
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) sh: usize,
    pub(crate) sw: usize,
    pub(crate) ph: usize,
    pub(crate) pw: usize,
    pub(crate) dh: usize,
    pub(crate) dw: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
}

impl Geom {
    /// Validates a window of `kernel` over `[N, C, H, W]` and computes the
    /// output size.
    pub(crate) fn new(
        op: &'static str,
        x: &[usize],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<Geom> {
        if x.len() != 4 {
            return Err(
                TensorError::BadRank { op, expected: "an input of rank 4 ([N, C, H, W])", shape: x.to_vec() }.into()
            );
        }
        if kernel.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
            return Err(AutogradError::bad(
                op,
                format!("kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must be positive"),
            ));
        }
        // Checked: padding, dilation and kernel come from the caller.
        let span = |k: usize, d: usize| d.checked_mul(k - 1).and_then(|s| s.checked_add(1));
        let padded = |n: usize, p: usize| p.checked_mul(2).and_then(|p| p.checked_add(n));
        let (Some(eh), Some(ew), Some(hp), Some(wp)) = (
            span(kernel[0], dilation[0]),
            span(kernel[1], dilation[1]),
            padded(x[2], padding[0]),
            padded(x[3], padding[1]),
        ) else {
            return Err(AutogradError::bad(
                op,
                format!("kernel {kernel:?}, dilation {dilation:?} or padding {padding:?} is too large"),
            ));
        };
        if hp < eh || wp < ew {
            return Err(AutogradError::bad(
                op,
                format!(
                    "a window spanning {eh}×{ew} does not fit the padded input {hp}×{wp} (input {x:?}, padding {padding:?})"
                ),
            ));
        }
        let (oh, ow) = ((hp - eh) / stride[0] + 1, (wp - ew) / stride[1] + 1);
        // An input may be empty with axes whose products overflow, and
        // padding can make the output far larger than the input: the output
        // and one image's columns `[C·KH·KW, OH·OW]` must be countable.
        // Zero axes count as 1, so products over any subset fit too.
        let count = |dims: &[usize]| dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d.max(1)));
        if count(&[x[0], x[1], oh, ow]).is_none() || count(&[x[1], kernel[0], kernel[1], oh, ow]).is_none() {
            return Err(TensorError::ShapeOverflow { op, shape: vec![x[0], x[1], oh, ow] }.into());
        }
        Ok(Geom {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            kh: kernel[0],
            kw: kernel[1],
            sh: stride[0],
            sw: stride[1],
            ph: padding[0],
            pw: padding[1],
            dh: dilation[0],
            dw: dilation[1],
            oh,
            ow,
        })
    }

    /// Output positions per plane.
    pub(crate) fn l(&self) -> usize {
        self.oh * self.ow
    }

    /// Rows of the column matrix: `C·KH·KW`.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// The input column read by output column `o` at kernel column `j`, if inside.
    #[inline]
    pub(crate) fn ix(&self, o: usize, j: usize) -> Option<usize> {
        (o * self.sw + j * self.dw).checked_sub(self.pw).filter(|&i| i < self.w)
    }

    /// The input row read by output row `o` at kernel row `i`, if inside.
    #[inline]
    pub(crate) fn iy(&self, o: usize, i: usize) -> Option<usize> {
        (o * self.sh + i * self.dh).checked_sub(self.ph).filter(|&i| i < self.h)
    }
}

/// The output columns `[lo, hi)` whose input column `ox·SW + j·DW − PW`
/// lies inside the row, for stride 1 (a contiguous run), and the input
/// column of `lo`.
#[inline]
fn run(g: &Geom, j: usize) -> (usize, usize, usize) {
    let off = j * g.dw;
    let lo = g.pw.saturating_sub(off).min(g.ow);
    let hi = (g.w + g.pw).saturating_sub(off).min(g.ow).max(lo);
    (lo, hi, (lo + off).saturating_sub(g.pw))
}

/// Kernel position `(i, j)` of a stride-1 convolution whose output rows
/// are as wide as the input's (`OW = W`, e.g. 3×3 with padding 1): output
/// `p = oy·W + ox` reads input `p + shift`, so the outputs with an input
/// inside are the flat range `[p0, p1)` less, on each output row `rows`,
/// the columns outside `[lo, hi)` (there `p + shift` wraps onto a
/// neighbouring input row).
struct Flat {
    p0: usize,
    p1: usize,
    shift: isize,
    rows: std::ops::Range<usize>,
    lo: usize,
    hi: usize,
}

impl Flat {
    fn new(g: &Geom, i: usize, j: usize) -> Option<Flat> {
        if g.sh != 1 || g.sw != 1 || g.ow != g.w {
            return None;
        }
        let (lo, hi, _) = run(g, j);
        let off = i * g.dh;
        let rows = g.ph.saturating_sub(off).min(g.oh)..(g.h + g.ph).saturating_sub(off).min(g.oh);
        let (p0, p1) =
            if rows.is_empty() || lo == hi { (0, 0) } else { (rows.start * g.w + lo, (rows.end - 1) * g.w + hi) };
        let shift = (off as isize - g.ph as isize) * g.w as isize + (j * g.dw) as isize - g.pw as isize;
        Some(Flat { p0, p1, shift, rows, lo, hi })
    }

    /// The input index of output `p0` (when `p0 < p1`).
    fn src0(&self) -> usize {
        (self.p0 as isize + self.shift) as usize
    }

    /// Sets the wrapped columns of `row` (one kernel position's `[OH·OW]`) to `zero`.
    fn clear_wrapped<T: Copy>(&self, g: &Geom, row: &mut [T], zero: T) {
        if self.lo == 0 && self.hi == g.w {
            return;
        }
        for oy in self.rows.clone() {
            let r = &mut row[oy * g.w..(oy + 1) * g.w];
            r[..self.lo].fill(zero);
            r[self.hi..].fill(zero);
        }
    }
}

/// Images per task of the parallel loops. Fixed, so the weight gradient's
/// partial sums (one per task, added in task order) and every other result
/// do not depend on the thread count.
const CHUNK: usize = 8;

/// im2col of one image `x` (`[C, H, W]`) into `cols` (`[C·KH·KW, OH·OW]`):
/// `cols[(c·KH + i)·KW + j, oy·OW + ox] = x[c, iy, ix]` (0 in the padding).
fn im2col<T: Copy>(x: &[T], g: &Geom, zero: T, cols: &mut [T]) {
    let (l, hw) = (g.l(), g.h * g.w);
    if l == 0 {
        return;
    }
    for (r, row) in cols[..g.k() * l].chunks_exact_mut(l).enumerate() {
        let (c, i, j) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
        let (lo, hi, start) = run(g, j);
        let img = &x[c * hw..][..hw];
        if let Some(f) = Flat::new(g, i, j) {
            // One copy of the shifted plane, then the padding.
            row[..f.p0].fill(zero);
            row[f.p1..].fill(zero);
            if f.p1 > f.p0 {
                row[f.p0..f.p1].copy_from_slice(&img[f.src0()..][..f.p1 - f.p0]);
            }
            f.clear_wrapped(g, row, zero);
            continue;
        }
        for (oy, o) in row.chunks_exact_mut(g.ow).enumerate() {
            let Some(iy) = g.iy(oy, i) else {
                o.fill(zero);
                continue;
            };
            let src = &img[iy * g.w..(iy + 1) * g.w];
            if g.sw == 1 {
                o[..lo].fill(zero);
                o[hi..].fill(zero);
                o[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
            } else {
                for (ox, v) in o.iter_mut().enumerate() {
                    *v = g.ix(ox, j).map_or(zero, |ix| src[ix]);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`] for one image: `dx[c, iy, ix] += dcols[…]`
/// (`dcols` `[C·KH·KW, OH·OW]`, `dx` `[C, H, W]`). `dcols` is scratch: a
/// [`Flat`] geometry zeroes its wrapped columns and adds each row as one run.
fn col2im<A: Real>(dcols: &mut [A], g: &Geom, dx: &mut [A]) {
    let l = g.l();
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let (lo, hi, start) = run(g, j);
                let row = &mut dcols[((c * g.kh + i) * g.kw + j) * l..][..l];
                if let Some(f) = Flat::new(g, i, j) {
                    f.clear_wrapped(g, row, A::default());
                    if f.p1 > f.p0 {
                        let src = &row[f.p0..f.p1];
                        for (d, &v) in plane[f.src0()..][..src.len()].iter_mut().zip(src) {
                            *d += v;
                        }
                    }
                    continue;
                }
                let row = &*row;
                for oy in 0..g.oh {
                    let Some(iy) = g.iy(oy, i) else { continue };
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let src = &row[oy * g.ow..(oy + 1) * g.ow];
                    if g.sw == 1 {
                        for (d, &v) in dst[start..start + hi - lo].iter_mut().zip(&src[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for (ox, &v) in src.iter().enumerate() {
                            if let Some(ix) = g.ix(ox, j) {
                                dst[ix] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `y_n = W·cols_n (+ b)` for every image into `y` (`[N, O, L]`, every
/// element written, rounded once to `T`). Image by image, so the columns
/// and the product stay in cache: f32/f64 straight into `y` with the bias
/// added in place; f16/bf16 through an FP32 scratch of one image's output,
/// the bias added and the sum rounded in the same kernel pass.
fn forward<T: Elem>(x: &[T], w: &[T], b: Option<&[T::Acc]>, g: &Geom, o: usize, y: &mut [T]) -> Result<()> {
    let (k, l) = (g.k(), g.l());
    let (plane, out) = (g.c * g.h * g.w, o * l);
    if g.n == 0 || out == 0 {
        return Ok(());
    }
    let zero = T::Acc::default();
    y.par_chunks_mut(CHUNK * out).enumerate().try_for_each(|(ci, yc)| {
        with_scratch::<T, _>(k * l, |cols| {
            with_scratch::<T::Acc, _>(if T::NARROW { out } else { 0 }, |wide| {
                for (q, yn) in yc.chunks_exact_mut(out).enumerate() {
                    let img = ci * CHUNK + q;
                    im2col(&x[img * plane..][..plane], g, T::ZERO, cols);
                    let acc = match T::acc_slice_mut(yn) {
                        Some(acc) => acc,
                        None => &mut *wide,
                    };
                    T::gemm(Transpose::No, Transpose::No, o, l, k, w, k, cols, l, zero, acc);
                    // + b[row], rounded to `T` (one kernel pass; f16/bf16 from the scratch).
                    match (b, T::NARROW) {
                        (Some(b), false) => {
                            ew::binary_assign(BinaryOp::Add, o, l, Element::dst(acc), Operand::Col(Element::src(b)))
                        }
                        (Some(b), true) => ew::binary(
                            BinaryOp::Add,
                            o,
                            l,
                            Operand::Full(Element::src(&*wide)),
                            Operand::Col(Element::src(b)),
                            Element::dst(yn),
                        ),
                        (None, false) => {}
                        (None, true) => T::narrow(wide, yn),
                    }
                }
            })
        })?
    })
}

/// The gradients `(dW, db)`, each if asked for (`want[1]`, `want[2]`);
/// `dx` (`[N, C, H, W]`, every element written, rounded once to `T`)
/// receives the input's when given.
///
/// Image by image (tasks of [`CHUNK`] images): `dW += dY_n·cols_nᵀ` on the
/// image's rebuilt columns (as `dWᵀ += cols_n·dY_nᵀ` for up to 64 output
/// channels, or fewer column rows than channels: less packing), with `dY_n`
/// read in place;
/// `dx_n = col2im(Wᵀ·dY_n)`. Each task sums its images' `dW` in order, the
/// tasks' sums are added in task order.
fn backward<T: Elem>(
    x: &[T],
    w: &[T],
    gy: &[T],
    g: &Geom,
    o: usize,
    want: [bool; 3],
    dx: Option<&mut [T]>,
) -> Result<ConvGrads<T::Acc>> {
    let (k, l) = (g.k(), g.l());
    let (plane, out) = (g.c * g.h * g.w, o * l);
    let (zero, one) = (T::Acc::default(), T::Acc::of(1.0));
    let chunks = g.n.div_ceil(CHUNK);
    let want_dx = dx.is_some();
    // dWᵀ: C·KH·KW rows of A read in place by the f32/f16 GEMM paths when
    // O ≤ 64 (two of their 32-wide column panels), and fewer padded rows
    // when C·KH·KW < O.
    let transposed = o <= 64 || k < o;
    let mut dxs: Vec<Option<&mut [T]>> = match dx {
        Some(d) if plane > 0 => d.chunks_mut(CHUNK * plane).map(Some).collect(),
        _ => (0..chunks).map(|_| None).collect(),
    };
    dxs.resize_with(chunks, || None);
    // Each image's `Σ_p dY_n[:, p]` (by the reduction kernels) while its
    // gradient is in cache; `db` sums them in image order below.
    let mut sums = vec![zero; if want[2] { g.n * o } else { 0 }];
    let mut sum_chunks: Vec<Option<&mut [T::Acc]>> =
        if sums.is_empty() { Vec::new() } else { sums.chunks_mut(CHUNK * o).map(Some).collect() };
    sum_chunks.resize_with(chunks, || None);
    let partials: Vec<Option<Vec<T::Acc>>> = dxs
        .into_par_iter()
        .zip(sum_chunks)
        .enumerate()
        .map(|(ci, (mut dxc, mut sc))| -> Result<Option<Vec<T::Acc>>> {
            let cnt = CHUNK.min(g.n - ci * CHUNK);
            let mut dw = want[1].then(|| vec![zero; o * k]);
            let ncols = if want[1] { k * l } else { 0 };
            let ndcols = if want_dx { k * l } else { 0 };
            let nwide = if want_dx && T::NARROW { plane } else { 0 };
            with_scratch::<T, _>(ncols, |cols| {
                with_scratch::<T::Acc, _>(ndcols + nwide, |scratch| {
                    let (dcols, wide) = scratch.split_at_mut(ndcols);
                    for q in 0..cnt {
                        let img = ci * CHUNK + q;
                        let gyn = &gy[img * out..][..out];
                        if let Some(sc) = sc.as_deref_mut() {
                            let row = Element::dst(&mut sc[q * o..(q + 1) * o]);
                            reduce::reduce_rows(ReduceOp::Sum, Element::src(gyn), o, l, row);
                        }
                        if let Some(dw) = dw.as_mut() {
                            im2col(&x[img * plane..][..plane], g, T::ZERO, cols);
                            if transposed {
                                T::gemm(Transpose::No, Transpose::Yes, k, o, l, cols, l, gyn, l, one, dw);
                            } else {
                                T::gemm(Transpose::No, Transpose::Yes, o, k, l, gyn, l, cols, l, one, dw);
                            }
                        }
                        if let Some(dxc) = dxc.as_deref_mut() {
                            let dxn = &mut dxc[q * plane..(q + 1) * plane];
                            T::gemm(Transpose::Yes, Transpose::No, k, l, o, w, k, gyn, l, zero, dcols);
                            let acc = match T::acc_slice_mut(dxn) {
                                Some(acc) => acc,
                                None => &mut *wide,
                            };
                            acc.fill(zero);
                            col2im(dcols, g, acc);
                            if T::NARROW {
                                T::narrow(wide, dxn);
                            }
                        }
                    }
                })
            })??;
            Ok(dw)
        })
        .collect::<Result<_>>()?;
    let dw = want[1].then(|| {
        let mut sum = vec![zero; o * k];
        for p in partials.iter().flatten() {
            sum.iter_mut().zip(p).for_each(|(s, &v)| *s += v);
        }
        if transposed {
            // dWᵀ [K, O] → dW [O, K]
            (0..o * k).map(|i| sum[(i % k) * o + i / k]).collect()
        } else {
            sum
        }
    });
    let db = want[2].then(|| {
        let mut db = vec![zero; o];
        for (i, &s) in sums.iter().enumerate() {
            db[i % o] += s;
        }
        db
    });
    Ok((dw, db))
}

/// What the backward returns: `(dW, db)`, each if asked for (`dx` is
/// written into the caller's buffer).
type ConvGrads<A> = (Option<Vec<A>>, Option<Vec<A>>);

impl Var {
    /// 2-D convolution (PyTorch's `F.conv2d`, `groups = 1`): `self` is
    /// `[N, C, H, W]`, `weight` `[O, C, KH, KW]`, `bias` `[O]`.
    pub fn conv2d(
        &self,
        weight: &Var,
        bias: Option<&Var>,
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<Var> {
        const OP: &str = "conv2d";
        let mut ins = vec![self.clone(), weight.clone()];
        ins.extend(bias.cloned());
        let ins = cast_inputs_vec(OP, &ins)?;
        let (x, w, b) = (&ins[0], &ins[1], ins.get(2));
        let ws = w.shape();
        if ws.len() != 4 {
            return Err(TensorError::BadRank {
                op: OP,
                expected: "a weight of rank 4 ([O, C, KH, KW])",
                shape: ws.to_vec(),
            }
            .into());
        }
        let g = Geom::new(OP, x.shape(), [ws[2], ws[3]], stride, padding, dilation)?;
        let o = ws[0];
        if ws[1] != g.c {
            return Err(TensorError::ShapeMismatch { op: OP, lhs: x.shape().to_vec(), rhs: ws.to_vec() }.into());
        }
        if let Some(b) = b
            && b.shape() != [o]
        {
            return Err(TensorError::ShapeMismatch { op: OP, lhs: vec![o], rhs: b.shape().to_vec() }.into());
        }
        let out = [g.n, o, g.oh, g.ow];
        if out.iter().try_fold(1usize, |a, &d| a.checked_mul(d.max(1))).is_none() {
            return Err(TensorError::ShapeOverflow { op: OP, shape: out.to_vec() }.into());
        }
        let dtype = ins.iter().fold(x.dtype(), |d, v| d.promote(v.dtype()));
        let xv = x.value().to_dtype(dtype)?.contiguous();
        let wv = w.value().to_dtype(dtype)?.contiguous();
        let y = dispatch!(dtype, T => {
            let bias: Option<Vec<<T as Elem>::Acc>> = match b {
                Some(b) => Some(b.value().to_vec_f64()?.into_iter().map(<T as Elem>::Acc::of).collect()),
                None => None,
            };
            let mut res = Ok(());
            let y = tensor_from::<T>(&out, |y| res = forward::<T>(elems(&xv), elems(&wv), bias.as_deref(), &g, o, y))?;
            res?;
            y
        });
        let keep_x = w.requires_grad();
        let keep_w = x.requires_grad();
        let inputs: Vec<&Var> = ins.iter().collect();
        Ok(record(OP, &inputs, y, |_| Conv2dBackward { x: keep_x.then_some(xv), w: keep_w.then_some(wv), g, o }))
    }
}

struct Conv2dBackward {
    /// The input (kept if the weight needs a gradient).
    x: Option<Tensor>,
    /// The weight (kept if the input needs a gradient).
    w: Option<Tensor>,
    g: Geom,
    o: usize,
}

impl Backward for Conv2dBackward {
    fn backward(&self, gy: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let dtype = self.x.as_ref().or(self.w.as_ref()).map_or(gy.dtype(), Tensor::dtype);
        let gy = gy.to_dtype(dtype)?.contiguous();
        let (g, o) = (self.g, self.o);
        let want = [grads.wants(0) && self.w.is_some(), grads.wants(1) && self.x.is_some(), grads.wants(2)];
        // Placeholders for what a rule without that input never reads.
        let empty = Tensor::zeros(&[0], dtype)?;
        let (x, w) = (self.x.as_ref().unwrap_or(&empty), self.w.as_ref().unwrap_or(&empty));
        let (dx, dw, db) = dispatch!(dtype, T => {
            let (xs, ws, gys) = (elems(x), elems(w), elems(&gy));
            let mut res = Ok((None, None));
            let dx = if want[0] {
                // Every element written, in the input's dtype (rounded once).
                Some(tensor_from::<T>(&[g.n, g.c, g.h, g.w], |dx| {
                    res = backward::<T>(xs, ws, gys, &g, o, want, Some(dx));
                })?)
            } else {
                res = backward::<T>(xs, ws, gys, &g, o, want, None);
                None
            };
            let (dw, db) = res?;
            let t = |v: Option<Vec<<T as Elem>::Acc>>, shape: &[usize]| v.map(|v| tensor(v, shape)).transpose();
            (dx, t(dw, &[o, g.c, g.kh, g.kw])?, t(db, &[o])?)
        });
        for (i, d) in [dx, dw, db].into_iter().enumerate() {
            if let Some(d) = d {
                grads.accumulate(i, d)?;
            }
        }
        Ok(())
    }

    fn saved(&self) -> Vec<&Tensor> {
        self.x.iter().chain(self.w.iter()).collect()
    }
}
