//! `max_pool2d` and `avg_pool2d` over `[N, C, H, W]` (PyTorch's, floor
//! mode; padding at most half the kernel; `avg_pool2d` counts the padding
//! in its divisor, as PyTorch's default `count_include_pad`).
//!
//! `y = max_{window} x`: `dx[argmax] += dy` (the first maximum in the
//! window, row-major; NaN wins, as in PyTorch). The backward saves no
//! tensor, only the arg-max of each output as its offset inside the window
//! (`i·KW + j`), in the narrowest of u8/u16/u32 that holds `KH·KW + 1`
//! values: a 2×2 pool keeps one byte per output, not PyTorch's eight. The
//! common 2×2 stride-2 pool runs on the SIMD kernel `reduce::max_pool2x2`
//! (the same choice, on the stored bits).
//!
//! `y = (1/(KH·KW))·Σ_{window} x`: `dx[window] += dy/(KH·KW)`; FP32
//! sums for f16/bf16, one rounding of the result.

use mixprec_tensor::kernels::reduce;
use mixprec_tensor::{Element, Tensor};

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

/// Planes per task of the 2×2 stride-2 kernel (each output is computed
/// once, whatever the split, so the results do not depend on it).
const PLANES: usize = 16;

/// The 2×2 pool of stride 2 without padding or dilation (PyTorch's
/// `max_pool2d(x, 2)`) by the SIMD kernel (`reduce::max_pool2x2`, the
/// same choice as [`max4`]), planes in parallel; returns the offsets.
fn max_forward_2x2<T: Elem>(x: &[T], g: &Geom, y: &mut [T]) -> Vec<u8> {
    let (plane, l) = (g.h * g.w, g.l());
    let mut idx = vec![0u8; g.n * g.c * l];
    if l == 0 {
        return idx;
    }
    y.par_chunks_mut(PLANES * l).zip(idx.par_chunks_mut(PLANES * l)).enumerate().for_each(|(t, (yt, it))| {
        let planes = yt.len() / l;
        let xt = &x[t * PLANES * plane..][..planes * plane];
        reduce::max_pool2x2(planes, g.h, g.w, Element::src(xt), Element::dst(yt), it);
    });
    idx
}

/// Writes the maxima into `y` (`[N, C, OH, OW]`); returns their offsets.
fn max_forward<T: Elem, I: Offset>(x: &[T], g: &Geom, y: &mut [T]) -> Vec<I> {
    let (plane, l) = (g.h * g.w, g.l());
    let none = g.kh * g.kw;
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
            // Windows with no element inside (all padding) keep 0.
            yp.fill(T::ZERO);
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

/// The maximum of a 2×2 window `[a, b; c, d]` and its offset, compared as
/// a tree, `(a vs b) vs (c vs d)`, which keeps the same element as the
/// row-major scan (the first NaN, else the first maximum: the left pair
/// wins ties and holds the earlier NaN). On [`Elem::key`]s a later
/// candidate wins only with a larger key, and a pair's key is the larger
/// of its two: integer compares and selects, no branches; f16/bf16 compare
/// their bits as `i16` keys and the maximum is the stored value itself (no
/// widening, no rounding; a NaN keeps its bits).
#[inline(always)]
fn max4<T: Elem>(a: T, b: T, c: T, d: T) -> (T, u8) {
    let (ka, kb, kc, kd) = (a.key(), b.key(), c.key(), d.key());
    let right = kb > ka;
    let (top, kt) = if right { (b, kb) } else { (a, ka) };
    let right_low = kd > kc;
    let (bottom, kl) = if right_low { (d, kd) } else { (c, kc) };
    let low = kl > kt;
    let k = if low { 2 + u8::from(right_low) } else { u8::from(right) };
    (if low { bottom } else { top }, k)
}

/// A 2×2 window without padding or dilation (every window inside the
/// plane), by [`max4`] with no bounds tests, on the stored values of any
/// dtype; stride 2 (the common pool) as one loop over pairs of columns.
fn max_plane_2x2<T: Elem, I: Offset>(xp: &[T], g: &Geom, yp: &mut [T], ip: &mut [I]) {
    for oy in 0..g.oh {
        let a0 = &xp[oy * g.sh * g.w..][..g.w];
        let a1 = &xp[(oy * g.sh + 1) * g.w..][..g.w];
        let (yr, ir) = (&mut yp[oy * g.ow..(oy + 1) * g.ow], &mut ip[oy * g.ow..(oy + 1) * g.ow]);
        if g.sw == 2 {
            for (((yv, iv), p0), p1) in yr.iter_mut().zip(ir.iter_mut()).zip(a0.chunks_exact(2)).zip(a1.chunks_exact(2))
            {
                let (v, k) = max4(p0[0], p0[1], p1[0], p1[1]);
                (*yv, *iv) = (v, I::of(usize::from(k)));
            }
        } else {
            for (ox, (yv, iv)) in yr.iter_mut().zip(ir.iter_mut()).enumerate() {
                let c = ox * g.sw;
                let (v, k) = max4(a0[c], a0[c + 1], a1[c], a1[c + 1]);
                (*yv, *iv) = (v, I::of(usize::from(k)));
            }
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

/// `dx` (`[N, C, H, W]`, every element written) from the output gradient
/// and the arg-max offsets, in `gy`'s dtype: each input's gradient is one
/// output's gradient or a sum of them (0 elsewhere), so a 2×2 tiling pool
/// writes the values as they are (no rounding) and other windows sum in the
/// accumulation type through `wide` (one plane) and round once.
fn max_backward<T: Elem, I: Offset>(gy: &[T], idx: &[I], g: &Geom, dx: &mut [T]) {
    let (plane, l) = (g.h * g.w, g.l());
    if plane == 0 || l == 0 {
        dx.fill(T::ZERO);
        return;
    }
    // 2×2 windows of stride 2 that tile the plane: each input is in exactly
    // one window, so each is written once (its window's gradient or 0).
    let tiles = (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw) == (2, 2, 2, 2, 0, 0, 1, 1)
        && g.h == 2 * g.oh
        && g.w == 2 * g.ow;
    dx.par_chunks_mut(plane).zip(gy.par_chunks(l).zip(idx.par_chunks(l))).for_each(|(dp, (gp, ip))| {
        if tiles {
            dp.fill(T::ZERO);
            for (oy, (gr, ir)) in gp.chunks_exact(g.ow).zip(ip.chunks_exact(g.ow)).enumerate() {
                let rows = &mut dp[2 * oy * g.w..(2 * oy + 2) * g.w];
                for (ox, (&v, &k)) in gr.iter().zip(ir).enumerate() {
                    let k = k.get();
                    rows[(k >> 1) * g.w + 2 * ox + (k & 1)] = v;
                }
            }
            return;
        }
        let scatter = |acc: &mut [T::Acc]| {
            acc.fill(T::Acc::default());
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let o = oy * g.ow + ox;
                    let k = ip[o].get();
                    if k >= g.kh * g.kw {
                        continue;
                    }
                    let (Some(iy), Some(ix)) = (g.iy(oy, k / g.kw), g.ix(ox, k % g.kw)) else { continue };
                    acc[iy * g.w + ix] += gp[o].acc();
                }
            }
        };
        match T::acc_slice_mut(dp) {
            Some(acc) => scatter(acc),
            None => {
                let mut wide = vec![T::Acc::default(); plane];
                scatter(&mut wide);
                T::narrow(&wide, dp);
            }
        }
    });
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
        let pool_2x2 = (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw) == (2, 2, 2, 2, 0, 0, 1, 1);
        let (y, offsets) = dispatch!(xv.dtype(), T => {
            let xs = elems::<T>(&xv);
            let mut offsets = Offsets::U8(Vec::new());
            let y = tensor_from::<T>(&[g.n, g.c, g.oh, g.ow], |y| {
                offsets = if pool_2x2 {
                    Offsets::U8(max_forward_2x2::<T>(xs, &g, y))
                } else if window < 256 {
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
            tensor_from::<T>(&[g.n, g.c, g.h, g.w], |dx| match &self.offsets {
                Offsets::U8(i) => max_backward::<T, u8>(gs, i, g, dx),
                Offsets::U16(i) => max_backward::<T, u16>(gs, i, g, dx),
                Offsets::U32(i) => max_backward::<T, u32>(gs, i, g, dx),
            })?
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

#[cfg(test)]
mod tests {
    use half::{bf16, f16};
    use mixprec_tensor::random::Generator;

    use super::{Elem, Geom, Real, better, max_forward_2x2, max_plane_2x2};

    /// The 2×2 path (f16/bf16 on their bits) against the element-by-element
    /// comparison of the widened values: the same maxima (bits) and
    /// offsets, with ties (±0, equal values), ±Inf, NaN of either sign and
    /// subnormals of each type among the candidates, odd widths included.
    fn plane_2x2_matches_elementwise<T: Elem<Acc = f32>>() {
        for (h, w) in [(2, 2), (3, 5), (4, 4), (7, 9), (28, 28), (14, 14), (2, 33)] {
            let mut rng = Generator::new((h * 100 + w) as u64);
            let mut v = vec![0.0f32; h * w];
            rng.fill_normal_f32(&mut v, 0.0, 1.0);
            let special = [
                0.0,
                -0.0,
                1.0,
                1.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                -f32::NAN,
                3.0e-8,
                -1.0e-5,
                1.0e-5,
                -1.0e-39,
                1.0e-39,
                -1.0,
            ];
            for (i, x) in v.iter_mut().enumerate() {
                if i % 3 == 1 {
                    *x = special[(i / 3) % special.len()];
                }
            }
            let x: Vec<T> = v.into_iter().map(T::from_acc).collect();
            let g = Geom::new("max_pool2d", &[1, 1, h, w], [2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
            let (mut y, mut idx) = (vec![T::ZERO; g.l()], vec![0u8; g.l()]);
            max_plane_2x2::<T, u8>(&x, &g, &mut y, &mut idx);
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let c = [(2 * oy, 2 * ox), (2 * oy, 2 * ox + 1), (2 * oy + 1, 2 * ox), (2 * oy + 1, 2 * ox + 1)];
                    let cand: Vec<T> = c.iter().map(|&(r, q)| x[r * w + q]).collect();
                    let mut bk = 0;
                    for k in 1..4 {
                        if better(cand[k].acc(), cand[bk].acc()) {
                            bk = k;
                        }
                    }
                    let o = oy * g.ow + ox;
                    assert_eq!(idx[o], bk as u8, "{h}×{w} at ({oy}, {ox})");
                    assert_eq!(y[o].to_f64().to_bits(), cand[bk].to_f64().to_bits(), "{h}×{w} at ({oy}, {ox})");
                }
            }
        }
    }

    #[test]
    fn f32_plane_2x2_matches_elementwise() {
        plane_2x2_matches_elementwise::<f32>();
    }

    /// The stride-2 forward through the kernel (more planes than a task
    /// holds, odd sizes) against [`max_plane_2x2`] plane by plane: the
    /// same bits and offsets.
    fn kernel_matches_plane_2x2<T: Elem<Acc = f32>>() {
        for (n, c, h, w) in [(2, 17, 6, 9), (1, 3, 28, 28), (3, 7, 7, 14), (1, 1, 3, 5)] {
            let mut rng = Generator::new((n * c * h * w) as u64);
            let mut v = vec![0.0f32; n * c * h * w];
            rng.fill_normal_f32(&mut v, 0.0, 1.0);
            let special = [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, 1.0e-39, -1.0e-6];
            for (i, x) in v.iter_mut().enumerate().filter(|(i, _)| i % 4 == 1) {
                *x = special[(i / 4) % special.len()];
            }
            let x: Vec<T> = v.into_iter().map(T::from_acc).collect();
            let g = Geom::new("max_pool2d", &[n, c, h, w], [2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
            let mut y = vec![T::ZERO; n * c * g.l()];
            let idx = max_forward_2x2(&x, &g, &mut y);
            for p in 0..n * c {
                let (mut yp, mut ip) = (vec![T::ZERO; g.l()], vec![0u8; g.l()]);
                max_plane_2x2::<T, u8>(&x[p * h * w..][..h * w], &g, &mut yp, &mut ip);
                assert_eq!(&idx[p * g.l()..][..g.l()], &ip[..], "plane {p} of {n}×{c}×{h}×{w}");
                let bits = |v: &[T]| v.iter().map(|e| e.to_f64().to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y[p * g.l()..][..g.l()]), bits(&yp), "plane {p} of {n}×{c}×{h}×{w}");
            }
        }
    }

    #[test]
    fn kernel_matches_plane_2x2_in_every_dtype() {
        kernel_matches_plane_2x2::<f32>();
        kernel_matches_plane_2x2::<f16>();
        kernel_matches_plane_2x2::<bf16>();
    }

    /// Every f16/bf16 bit pattern: the keys taken on the bits order as the
    /// widened values' keys (equal exactly when those are equal).
    fn keys_on_bits_order_as_widened<T: Elem<Acc = f32>>(from_bits: impl Fn(u16) -> T) {
        let mut all: Vec<(i32, T::Key)> =
            (0..=u16::MAX).map(&from_bits).map(|v| (Real::key(v.acc()), v.key())).collect();
        all.sort_by_key(|&(w, _)| w);
        for p in all.windows(2) {
            assert_eq!(p[0].0.cmp(&p[1].0), p[0].1.cmp(&p[1].1), "widened keys {} and {}", p[0].0, p[1].0);
        }
    }

    #[test]
    fn f16_keys_order_as_widened() {
        keys_on_bits_order_as_widened(f16::from_bits);
    }

    #[test]
    fn bf16_keys_order_as_widened() {
        keys_on_bits_order_as_widened(bf16::from_bits);
    }

    #[test]
    fn f16_plane_2x2_matches_elementwise() {
        plane_2x2_matches_elementwise::<f16>();
    }

    #[test]
    fn bf16_plane_2x2_matches_elementwise() {
        plane_2x2_matches_elementwise::<bf16>();
    }
}
