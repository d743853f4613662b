//! `max_pool2d` and `avg_pool2d` over `[N, C, H, W]` (PyTorch's, floor
//! mode; padding at most half the kernel; `avg_pool2d` counts the padding
//! in its divisor, as PyTorch's default `count_include_pad`).
//!
//! `y = max_{window} x`: `dx[argmax] += dy` (the first maximum in the
//! window, row-major; NaN wins, as in PyTorch). The backward saves no
//! tensor, only the arg-max of each output as its offset inside the window
//! (`i·KW + j`), in the narrowest of u8/u16/u32 that holds `KH·KW + 1`
//! values: a 2×2 pool keeps one byte per output, not PyTorch's eight.
//!
//! `y = (1/(KH·KW))·Σ_{window} x`: `dx[window] += dy/(KH·KW)`; FP32
//! sums for f16/bf16, one rounding of the result.

use mixprec_tensor::Tensor;

use crate::autocast::cast_inputs;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::conv::Geom;
use crate::ops::elem::{Elem, Real, dispatch, elems, tensor, tensor_from};
use crate::var::Var;
use rayon::prelude::*;

/// A window offset `i·KW + j` stored in `u8`, `u16` or `u32`.
trait Offset: Copy + Send + Sync + 'static {
    fn of(k: usize) -> Self;
    fn get(self) -> usize;
}

macro_rules! offset {
    ($t:ty) => {
        impl Offset for $t {
            #[inline]
            fn of(k: usize) -> $t {
                k as $t
            }
            #[inline]
            fn get(self) -> usize {
                self as usize
            }
        }
    };
}
offset!(u8);
offset!(u16);
offset!(u32);

/// The arg-max offsets of every output, in the narrowest type that holds
/// `KH·KW + 1` values (`KH·KW` marks a window with no element inside).
#[derive(Debug)]
enum Offsets {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

fn check_padding(op: &'static str, kernel: [usize; 2], padding: [usize; 2]) -> Result<()> {
    if padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2 {
        return Err(AutogradError::bad(op, format!("padding {padding:?} must be at most half the kernel {kernel:?}")));
    }
    Ok(())
}

/// Writes the maxima into `y` (`[N, C, OH, OW]`); returns their offsets.
fn max_forward<T: Elem, I: Offset>(x: &[T], g: &Geom, y: &mut [T]) -> Vec<I> {
    let (plane, l) = (g.h * g.w, g.l());
    let none = g.kh * g.kw;
    y.fill(T::ZERO);
    let mut idx = vec![I::of(none); g.n * g.c * l];
    if l == 0 {
        return idx;
    }
    // Planes in parallel: each output is written by one task.
    y.par_chunks_mut(l).zip(idx.par_chunks_mut(l)).enumerate().for_each(|(p, (yp, ip))| {
        let xp = &x[p * plane..(p + 1) * plane];
        if (g.kh, g.kw, g.ph, g.pw, g.dh, g.dw) == (2, 2, 0, 0, 1, 1) {
            max_plane_2x2(xp, g, yp, ip);
        } else {
            max_plane(xp, g, yp, ip);
        }
    });
    idx
}

/// Whether `a` replaces the running maximum `b`: larger, or NaN (NaN wins
/// and stays; ties keep the first).
#[inline(always)]
fn better<A: Real>(a: A, b: A) -> bool {
    !b.is_nan() && (a > b || a.is_nan())
}

/// A 2×2 window without padding or dilation (every window inside the
/// plane): the four candidates in row-major order, no bounds tests.
fn max_plane_2x2<T: Elem, I: Offset>(xp: &[T], g: &Geom, yp: &mut [T], ip: &mut [I]) {
    for oy in 0..g.oh {
        let r0 = &xp[oy * g.sh * g.w..][..g.w];
        let r1 = &xp[(oy * g.sh + 1) * g.w..][..g.w];
        let (yr, ir) = (&mut yp[oy * g.ow..(oy + 1) * g.ow], &mut ip[oy * g.ow..(oy + 1) * g.ow]);
        for (ox, (yv, iv)) in yr.iter_mut().zip(ir.iter_mut()).enumerate() {
            let c = ox * g.sw;
            let cand = [r0[c], r0[c + 1], r1[c], r1[c + 1]];
            let (mut bk, mut bv) = (0usize, cand[0].acc());
            for (k, v) in cand.iter().enumerate().skip(1) {
                let a = v.acc();
                if better(a, bv) {
                    (bk, bv) = (k, a);
                }
            }
            *yv = cand[bk];
            *iv = I::of(bk);
        }
    }
}

/// Any window: positions outside the plane (padding) are skipped.
fn max_plane<T: Elem, I: Offset>(xp: &[T], g: &Geom, yp: &mut [T], ip: &mut [I]) {
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let mut best: Option<(T::Acc, usize, T)> = None;
            for i in 0..g.kh {
                let Some(iy) = g.iy(oy, i) else { continue };
                for j in 0..g.kw {
                    let Some(ix) = g.ix(ox, j) else { continue };
                    let v = xp[iy * g.w + ix];
                    let a = v.acc();
                    if best.is_none_or(|(b, _, _)| better(a, b)) {
                        best = Some((a, i * g.kw + j, v));
                    }
                }
            }
            if let Some((_, k, v)) = best {
                let o = oy * g.ow + ox;
                yp[o] = v;
                ip[o] = I::of(k);
            }
        }
    }
}

fn max_backward<T: Elem, I: Offset>(gy: &[T], idx: &[I], g: &Geom) -> Vec<T::Acc> {
    let (plane, l) = (g.h * g.w, g.l());
    let mut dx = vec![T::Acc::default(); g.n * g.c * plane];
    if plane == 0 || l == 0 {
        return dx;
    }
    dx.par_chunks_mut(plane).zip(gy.par_chunks(l).zip(idx.par_chunks(l))).for_each(|(dp, (gp, ip))| {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let o = oy * g.ow + ox;
                let k = ip[o].get();
                if k >= g.kh * g.kw {
                    continue;
                }
                let (Some(iy), Some(ix)) = (g.iy(oy, k / g.kw), g.ix(ox, k % g.kw)) else { continue };
                dp[iy * g.w + ix] += gp[o].acc();
            }
        }
    });
    dx
}

impl Var {
    /// 2-D max pooling (PyTorch's `F.max_pool2d`, floor mode) of
    /// `[N, C, H, W]`; PyTorch's default stride is the kernel.
    pub fn max_pool2d(
        &self,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<Var> {
        const OP: &str = "max_pool2d";
        let [x] = cast_inputs(OP, [self])?;
        check_padding(OP, kernel, padding)?;
        let g = Geom::new(OP, x.shape(), kernel, stride, padding, dilation)?;
        let xv = x.value().contiguous();
        // `Geom::new` checked that `C·KH·KW·OH·OW` is countable.
        let window = kernel[0] * kernel[1];
        if window >= u32::MAX as usize {
            return Err(AutogradError::bad(
                OP,
                format!("a window of {window} elements (kernel {kernel:?}) is too large"),
            ));
        }
        let (y, offsets) = dispatch!(xv.dtype(), T => {
            let xs = elems::<T>(&xv);
            let mut offsets = Offsets::U8(Vec::new());
            let y = tensor_from::<T>(&[g.n, g.c, g.oh, g.ow], |y| {
                offsets = if window < 256 {
                    Offsets::U8(max_forward::<T, u8>(xs, &g, y))
                } else if window < 65536 {
                    Offsets::U16(max_forward::<T, u16>(xs, &g, y))
                } else {
                    Offsets::U32(max_forward::<T, u32>(xs, &g, y))
                };
            })?;
            (y, offsets)
        });
        Ok(record(OP, &[&x], y, |_| MaxPoolBackward { offsets, g }))
    }

    /// 2-D average pooling (PyTorch's `F.avg_pool2d`, floor mode, the
    /// padding counted in the divisor) of `[N, C, H, W]`.
    pub fn avg_pool2d(&self, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Result<Var> {
        const OP: &str = "avg_pool2d";
        let [x] = cast_inputs(OP, [self])?;
        check_padding(OP, kernel, padding)?;
        let g = Geom::new(OP, x.shape(), kernel, stride, padding, [1, 1])?;
        let xv = x.value().contiguous();
        let y = dispatch!(xv.dtype(), T => tensor(avg_forward::<T>(elems(&xv), &g), &[g.n, g.c, g.oh, g.ow])?);
        Ok(record(OP, &[&x], y, |_| AvgPoolBackward { g }))
    }
}

struct MaxPoolBackward {
    offsets: Offsets,
    g: Geom,
}

impl Backward for MaxPoolBackward {
    fn backward(&self, gy: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let g = &self.g;
        let gy = gy.contiguous();
        let dx = dispatch!(gy.dtype(), T => {
            let gs = elems::<T>(&gy);
            let dx = match &self.offsets {
                Offsets::U8(i) => max_backward::<T, u8>(gs, i, g),
                Offsets::U16(i) => max_backward::<T, u16>(gs, i, g),
                Offsets::U32(i) => max_backward::<T, u32>(gs, i, g),
            };
            tensor(dx, &[g.n, g.c, g.h, g.w])?
        });
        grads.accumulate(0, dx)
    }

    fn saved(&self) -> Vec<&Tensor> {
        Vec::new()
    }
}

fn avg_forward<T: Elem>(x: &[T], g: &Geom) -> Vec<T> {
    let (plane, l) = (g.h * g.w, g.l());
    let inv = T::Acc::of(1.0 / (g.kh * g.kw) as f64);
    let mut y = vec![T::ZERO; g.n * g.c * l];
    for p in 0..g.n * g.c {
        let xp = &x[p * plane..(p + 1) * plane];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut s = T::Acc::default();
                for i in 0..g.kh {
                    let Some(iy) = g.iy(oy, i) else { continue };
                    for j in 0..g.kw {
                        if let Some(ix) = g.ix(ox, j) {
                            s += xp[iy * g.w + ix].acc();
                        }
                    }
                }
                y[p * l + oy * g.ow + ox] = T::from_acc(s * inv);
            }
        }
    }
    y
}

fn avg_backward<T: Elem>(gy: &[T], g: &Geom) -> Vec<T::Acc> {
    let (plane, l) = (g.h * g.w, g.l());
    let inv = T::Acc::of(1.0 / (g.kh * g.kw) as f64);
    let mut dx = vec![T::Acc::default(); g.n * g.c * plane];
    for p in 0..g.n * g.c {
        let dp = &mut dx[p * plane..(p + 1) * plane];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let d = gy[p * l + oy * g.ow + ox].acc() * inv;
                for i in 0..g.kh {
                    let Some(iy) = g.iy(oy, i) else { continue };
                    for j in 0..g.kw {
                        if let Some(ix) = g.ix(ox, j) {
                            dp[iy * g.w + ix] += d;
                        }
                    }
                }
            }
        }
    }
    dx
}

struct AvgPoolBackward {
    g: Geom,
}

impl Backward for AvgPoolBackward {
    fn backward(&self, gy: &Tensor, grads: &mut Grads<'_>) -> Result<()> {
        let g = &self.g;
        let gy = gy.contiguous();
        let dx = dispatch!(gy.dtype(), T => tensor(avg_backward::<T>(elems(&gy), g), &[g.n, g.c, g.h, g.w])?);
        grads.accumulate(0, dx)
    }

    fn saved(&self) -> Vec<&Tensor> {
        Vec::new()
    }
}
