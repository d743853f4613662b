//! Matrix products through `kernels::gemm`: 2-D, batched 3-D, and 1-D
//! vectors as PyTorch's `matmul` treats them. Strides become `Transpose`
//! flags and leading dimensions, so a transposed view is never copied; an
//! operand is copied only when neither of its two axes has stride 1.
//! f16 (bf16) operands give an f16 (bf16) result: FP32 accumulation, one
//! rounding at the end. f64 uses a plain f64 loop (references only).

use mixprec_kernels::gemm::{self, Transpose};
use mixprec_kernels::slice::{Dst, Src};

use crate::dtype::DType;
use crate::error::{Result, TensorError};
use crate::layout::validate_shape;
use crate::storage::Storage;
use crate::tensor::Tensor;

/// How a 2-D matrix view is handed to GEMM.
#[derive(Clone, Copy, Debug)]
struct Mat {
    trans: Transpose,
    ld: usize,
}

/// `Transpose` flag and leading dimension for a rows × cols view with these
/// strides, if GEMM can read it in place.
fn as_gemm(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<Mat> {
    if cs == 1 || cols <= 1 {
        let ld = if rows <= 1 { cols.max(1) } else { rs };
        if ld >= cols.max(1) && (rows <= 1 || rs > 0) {
            return Some(Mat { trans: Transpose::No, ld });
        }
    }
    if rs == 1 || rows <= 1 {
        let ld = if cols <= 1 { rows.max(1) } else { cs };
        if ld >= rows.max(1) && (cols <= 1 || cs > 0) {
            return Some(Mat { trans: Transpose::Yes, ld });
        }
    }
    None
}

/// A batch of matrices: `batch × rows × cols` with a batch stride.
struct Operand {
    t: Tensor,
    rows: usize,
    cols: usize,
    batch_stride: usize,
    mat: Mat,
}

impl Operand {
    /// Prepares a 3-D view (`batch`, rows, cols); copies if GEMM cannot read it.
    fn new(t: &Tensor) -> Operand {
        let (sh, st) = (t.shape(), t.strides());
        if let Some(mat) = as_gemm(sh[1], sh[2], st[1], st[2]) {
            return Operand { t: t.clone(), rows: sh[1], cols: sh[2], batch_stride: st[0], mat };
        }
        let c = t.contiguous();
        let (rows, cols) = (sh[1], sh[2]);
        Operand { batch_stride: rows * cols, t: c, rows, cols, mat: Mat { trans: Transpose::No, ld: cols.max(1) } }
    }

    /// The storage range GEMM reads for batch `b`.
    fn range(&self, b: usize) -> (usize, usize) {
        let (sr, sc) = match self.mat.trans {
            Transpose::No => (self.rows, self.cols),
            Transpose::Yes => (self.cols, self.rows),
        };
        let start = self.t.layout.offset() + b * self.batch_stride;
        (start, start + gemm::required_len(sr, sc, self.mat.ld))
    }
}

fn f64_gemm(a: &Operand, b: &Operand, (ba, bb): (usize, usize), (m, n, k): (usize, usize, usize), c: &mut [f64]) {
    let (Src::F64(asl), Src::F64(bsl)) = (a.t.storage.src_all(), b.t.storage.src_all()) else {
        return;
    };
    let (a0, _) = a.range(ba);
    let (b0, _) = b.range(bb);
    let at = |i: usize, p: usize| match a.mat.trans {
        Transpose::No => asl[a0 + i * a.mat.ld + p],
        Transpose::Yes => asl[a0 + p * a.mat.ld + i],
    };
    let bt = |p: usize, j: usize| match b.mat.trans {
        Transpose::No => bsl[b0 + p * b.mat.ld + j],
        Transpose::Yes => bsl[b0 + j * b.mat.ld + p],
    };
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += at(i, p) * bt(p, j);
            }
            c[i * n + j] = acc;
        }
    }
}

impl Tensor {
    /// Matrix product as PyTorch's `matmul`: `(m, k) @ (k, n)`, batched
    /// `(b, m, k) @ (b, k, n)` (a batch of 1 broadcasts), `(b, m, k) @ (k, n)`
    /// and `(m, k) @ (b, k, n)`; a 1-D operand is a row (left) or column
    /// (right) vector whose axis is removed from the result. Mixed dtypes
    /// promote; f16/bf16 results are rounded once from FP32 accumulators.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        let mismatch =
            || TensorError::ShapeMismatch { op: "matmul", lhs: self.shape().to_vec(), rhs: other.shape().to_vec() };
        let (ra, rb) = (self.rank(), other.rank());
        if ra == 0 || rb == 0 || ra > 3 || rb > 3 {
            let shape = if ra == 0 || ra > 3 { self.shape() } else { other.shape() };
            return Err(TensorError::BadRank { op: "matmul", expected: "rank 1, 2 or 3", shape: shape.to_vec() });
        }
        // Vectors become matrices; their axis is dropped at the end.
        let a = if ra == 1 { self.unsqueeze(0)? } else { self.clone() };
        let b = if rb == 1 { other.unsqueeze(1)? } else { other.clone() };
        let a3 = if a.rank() == 2 { a.unsqueeze(0)? } else { a };
        let b3 = if b.rank() == 2 { b.unsqueeze(0)? } else { b };
        let (ba, m, k) = (a3.shape()[0], a3.shape()[1], a3.shape()[2]);
        let (bb, k2, n) = (b3.shape()[0], b3.shape()[1], b3.shape()[2]);
        if k != k2 || (ba != bb && ba != 1 && bb != 1) {
            return Err(mismatch());
        }
        let batch = if ba == 1 { bb } else { ba };
        let dtype = self.dtype().promote(other.dtype());
        let (a3, b3) = (a3.to_dtype(dtype)?, b3.to_dtype(dtype)?);

        // A batch of matrices times one shared matrix, with the batch folded
        // into rows: one GEMM of (batch·m) × k.
        let folded = (bb == 1 && ba > 1 && a3.strides()[0] == m * a3.strides()[1] && a3.strides()[2] == 1)
            .then(|| a3.reshape(&[1, ba * m, k]).ok())
            .flatten();
        let (a3, batch_eff, m_eff) = match folded {
            Some(f) => (f, 1, ba * m),
            None => (a3, batch, m),
        };

        let mut out_shape = match (ra, rb) {
            (3, _) | (_, 3) => vec![batch, m, n],
            _ => vec![m, n],
        };
        let numel = validate_shape("matmul", &out_shape)?;
        let mut out = Storage::zeros(dtype, numel);
        if numel > 0 {
            let (oa, ob) = (Operand::new(&a3), Operand::new(&b3));
            let block = m_eff * n;
            let pick = |count: usize, i: usize| if count == 1 { 0 } else { i };
            let (ca, cb) = (a3.shape()[0], b3.shape()[0]);
            let mut dst = out.dst_all();
            let mut acc = if dtype.is_half() { vec![0.0f32; block] } else { Vec::new() };
            for i in 0..batch_eff {
                let (ia, ib) = (pick(ca, i), pick(cb, i));
                let (a_lo, a_hi) = oa.range(ia);
                let (b_lo, b_hi) = ob.range(ib);
                let (asrc, bsrc) = (oa.t.storage.src(a_lo, a_hi), ob.t.storage.src(b_lo, b_hi));
                let (ta, tb, lda, ldb) = (oa.mat.trans, ob.mat.trans, oa.mat.ld, ob.mat.ld);
                let mut d = dst.slice(i * block, (i + 1) * block);
                match (asrc, bsrc, &mut d) {
                    (Src::F32(x), Src::F32(y), Dst::F32(c)) => {
                        gemm::sgemm(ta, tb, m_eff, n, k, 1.0, x, lda, y, ldb, 0.0, c, n)
                    }
                    (Src::F16(x), Src::F16(y), _) => {
                        gemm::hgemm(ta, tb, m_eff, n, k, 1.0, x, lda, y, ldb, 0.0, &mut acc, n);
                        d.store_f32(0, &acc);
                    }
                    (Src::Bf16(x), Src::Bf16(y), _) => {
                        gemm::bgemm(ta, tb, m_eff, n, k, 1.0, x, lda, y, ldb, 0.0, &mut acc, n);
                        d.store_f32(0, &acc);
                    }
                    (_, _, Dst::F64(c)) => f64_gemm(&oa, &ob, (ia, ib), (m_eff, n, k), c),
                    _ => unreachable!("operands were converted to the promoted dtype {dtype}"),
                }
            }
        }
        if rb == 1 {
            out_shape.pop();
        }
        if ra == 1 {
            let at = out_shape.len() - 1 - usize::from(rb != 1);
            out_shape.remove(at);
        }
        Ok(Tensor::from_storage(out, &out_shape))
    }

    /// The result dtype of a matmul of these tensors.
    pub fn matmul_dtype(&self, other: &Tensor) -> DType {
        self.dtype().promote(other.dtype())
    }
}
