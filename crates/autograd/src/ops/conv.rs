//! `conv2d` (PyTorch's `F.conv2d` with `groups = 1`): `x` `[N, C, H, W]`,
//! weight `[O, C, KH, KW]`, optional bias `[O]`, stride, zero padding and
//! dilation per axis; `y` is `[N, O, OH, OW]` with
//! `OH = (H + 2·ph − dh·(KH − 1) − 1) / sh + 1` (likewise `OW`).
//!
//! Lowered to GEMM through im2col, one image at a time: `cols_n` is
//! `[C·KH·KW, OH·OW]` (padding reads as zero), and with `W` as
//! `[O, C·KH·KW]`:
//! - `Y_n = W·cols_n + b` (f16/bf16 inputs through hgemm/bgemm, FP32
//!   accumulation, one rounding of the result);
//! - `dW = Σ_n dY_n·cols_nᵀ`, `db = Σ_{n,p} dY_n[:, p]`;
//! - `dx_n = col2im(Wᵀ·dY_n)` (overlapping windows add).
//!
//! The backward saves `x` and `W` (not the columns: they are rebuilt per
//! image, so the saved bytes are the input's, as PyTorch's).

use mixprec_tensor::kernels::gemm::Transpose;
use mixprec_tensor::{Tensor, TensorError};

use crate::autocast::cast_inputs_vec;
use crate::error::{AutogradError, Result};
use crate::graph::{Backward, Grads, record};
use crate::ops::elem::{Elem, Real, dispatch, elems, tensor};
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
        let span = |k: usize, d: usize| d * (k - 1) + 1;
        let (eh, ew) = (span(kernel[0], dilation[0]), span(kernel[1], dilation[1]));
        if x[2] + 2 * padding[0] < eh || x[3] + 2 * padding[1] < ew {
            return Err(AutogradError::bad(
                op,
                format!(
                    "a window spanning {eh}×{ew} does not fit the padded input {}×{} (input {:?}, padding {padding:?})",
                    x[2] + 2 * padding[0],
                    x[3] + 2 * padding[1],
                    x
                ),
            ));
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
            oh: (x[2] + 2 * padding[0] - eh) / stride[0] + 1,
            ow: (x[3] + 2 * padding[1] - ew) / stride[1] + 1,
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

/// `cols[(c·KH + i)·KW + j, oy·OW + ox] = x[c, iy, ix]` (0 in the padding)
/// for one image `x` of `[C, H, W]`.
fn im2col<T: Copy>(x: &[T], g: &Geom, zero: T, cols: &mut [T]) {
    let l = g.l();
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * l..][..l];
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    let Some(iy) = g.iy(oy, i) else {
                        out.fill(zero);
                        continue;
                    };
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    for (ox, v) in out.iter_mut().enumerate() {
                        *v = g.ix(ox, j).map_or(zero, |ix| src[ix]);
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: `dx[c, iy, ix] += dcols[…]` for one image.
fn col2im<A: Real>(dcols: &[A], g: &Geom, dx: &mut [A]) {
    let l = g.l();
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &dcols[((c * g.kh + i) * g.kw + j) * l..][..l];
                for oy in 0..g.oh {
                    let Some(iy) = g.iy(oy, i) else { continue };
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    for (ox, &v) in row[oy * g.ow..(oy + 1) * g.ow].iter().enumerate() {
                        if let Some(ix) = g.ix(ox, j) {
                            dst[ix] += v;
                        }
                    }
                }
            }
        }
    }
}

/// `y_n = W·cols_n (+ b)` for every image, in the accumulation type.
fn forward<T: Elem>(x: &[T], w: &[T], b: Option<&[T::Acc]>, g: &Geom, o: usize) -> Vec<T::Acc> {
    let (k, l) = (g.k(), g.l());
    let mut cols = vec![T::ZERO; k * l];
    let mut y = vec![T::Acc::default(); g.n * o * l];
    for n in 0..g.n {
        im2col(&x[n * g.c * g.h * g.w..(n + 1) * g.c * g.h * g.w], g, T::ZERO, &mut cols);
        let yn = &mut y[n * o * l..(n + 1) * o * l];
        T::gemm(Transpose::No, Transpose::No, o, l, k, w, k, &cols, l, T::Acc::default(), yn);
        if let Some(b) = b {
            for (row, &bo) in yn.chunks_exact_mut(l.max(1)).zip(b) {
                row.iter_mut().for_each(|v| *v += bo);
            }
        }
    }
    y
}

/// What the backward computes: `(dx, dW, db)`, each if asked for.
type ConvGrads<A> = (Option<Vec<A>>, Option<Vec<A>>, Option<Vec<A>>);

fn backward<T: Elem>(x: &[T], w: &[T], gy: &[T], g: &Geom, o: usize, want: [bool; 3]) -> ConvGrads<T::Acc> {
    let (k, l) = (g.k(), g.l());
    let zero = T::Acc::default();
    let plane = g.c * g.h * g.w;
    let mut dx = want[0].then(|| vec![zero; g.n * plane]);
    let mut dw = want[1].then(|| vec![zero; o * k]);
    let mut cols = vec![T::ZERO; if want[1] { k * l } else { 0 }];
    let mut dcols = vec![zero; if want[0] { k * l } else { 0 }];
    for n in 0..g.n {
        let gn = &gy[n * o * l..(n + 1) * o * l];
        if let Some(dw) = dw.as_mut() {
            // dW += dY_n·cols_nᵀ
            im2col(&x[n * plane..(n + 1) * plane], g, T::ZERO, &mut cols);
            T::gemm(Transpose::No, Transpose::Yes, o, k, l, gn, l, &cols, l, T::Acc::of(1.0), dw);
        }
        if let Some(dx) = dx.as_mut() {
            // dcols = Wᵀ·dY_n, scattered back onto the image
            T::gemm(Transpose::Yes, Transpose::No, k, l, o, w, k, gn, l, zero, &mut dcols);
            col2im(&dcols, g, &mut dx[n * plane..(n + 1) * plane]);
        }
    }
    let db = want[2].then(|| {
        let mut db = vec![zero; o];
        for (i, row) in gy.chunks_exact(l.max(1)).enumerate() {
            let s = row.iter().fold(zero, |s, &v| s + v.acc());
            db[i % o] += s;
        }
        db
    });
    (dx, dw, db)
}

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
        let dtype = ins.iter().fold(x.dtype(), |d, v| d.promote(v.dtype()));
        let xv = x.value().to_dtype(dtype)?.contiguous();
        let wv = w.value().to_dtype(dtype)?.contiguous();
        let y = dispatch!(dtype, T => {
            let bias: Option<Vec<<T as Elem>::Acc>> = match b {
                Some(b) => Some(b.value().to_vec_f64()?.into_iter().map(<T as Elem>::Acc::of).collect()),
                None => None,
            };
            let y = forward::<T>(elems(&xv), elems(&wv), bias.as_deref(), &g, o);
            tensor(y, &[g.n, o, g.oh, g.ow])?.to_dtype(dtype)?
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
            let (dx, dw, db) = backward::<T>(elems(x), elems(w), elems(&gy), &g, o, want);
            let t = |v: Option<Vec<<T as Elem>::Acc>>, shape: &[usize]| v.map(|v| tensor(v, shape)).transpose();
            (t(dx, &[g.n, g.c, g.h, g.w])?, t(dw, &[o, g.c, g.kh, g.kw])?, t(db, &[o])?)
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
