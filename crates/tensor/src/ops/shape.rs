//! Ops that assemble tensors: `cat`, `stack`, `index_select`, and the
//! random constructors `rand`/`randn` on the project's generator.

use mixprec_kernels::convert::cast;
use mixprec_kernels::slice::Src;

use crate::dtype::DType;
use crate::error::{Result, TensorError};
use crate::layout::{normalize_axis, numel_or_zero, validate_shape};
use crate::random::Generator;
use crate::storage::Storage;
use crate::tensor::Tensor;

impl Tensor {
    /// Joins tensors along an existing `axis`; all other axes must agree.
    /// Mixed dtypes promote (as PyTorch's `cat`).
    pub fn cat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first = tensors.first().ok_or(TensorError::BadArgument { op: "cat", reason: "no tensors given".into() })?;
        let rank = first.rank();
        if rank == 0 {
            return Err(TensorError::BadRank { op: "cat", expected: "rank 1 or more", shape: vec![] });
        }
        let ax = normalize_axis("cat", axis, rank)?;
        let mut dtype = first.dtype();
        let mut total = 0usize;
        for t in tensors {
            let same = t.rank() == rank
                && t.shape().iter().zip(first.shape()).enumerate().all(|(i, (a, b))| i == ax || a == b);
            if !same {
                return Err(TensorError::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
            dtype = dtype.promote(t.dtype());
            total = total
                .checked_add(t.shape()[ax])
                .ok_or_else(|| TensorError::ShapeOverflow { op: "cat", shape: first.shape().to_vec() })?;
        }
        let mut shape = first.shape().to_vec();
        shape[ax] = total;
        let numel = validate_shape("cat", &shape)?;
        let outer = numel_or_zero(&shape[..ax]);
        let inner = numel_or_zero(&shape[ax + 1..]);
        let mut out = Storage::zeros(dtype, numel);
        if numel > 0 {
            let mut dst = out.dst_all();
            let mut at = 0usize;
            for t in tensors {
                let c = t.contiguous();
                let block = t.shape()[ax] * inner;
                if block > 0 {
                    let src = c.contiguous_src().unwrap_or(Src::F32(&[]));
                    for o in 0..outer {
                        let start = o * total * inner + at;
                        cast(src.slice(o * block, (o + 1) * block), dst.slice(start, start + block));
                    }
                }
                at += block;
            }
        }
        Ok(Tensor::from_storage(out, &shape))
    }

    /// Joins tensors of one shape along a new `axis`.
    pub fn stack(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first =
            tensors.first().ok_or(TensorError::BadArgument { op: "stack", reason: "no tensors given".into() })?;
        let ax = normalize_axis("stack", axis, first.rank() + 1)?;
        let views: Vec<Tensor> = tensors
            .iter()
            .map(|t| {
                if t.shape() != first.shape() {
                    return Err(TensorError::ShapeMismatch {
                        op: "stack",
                        lhs: first.shape().to_vec(),
                        rhs: t.shape().to_vec(),
                    });
                }
                t.unsqueeze(ax as isize)
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = views.iter().collect();
        Tensor::cat(&refs, ax as isize)
    }

    /// The slices `indices[i]` along `axis`, in that order (an embedding
    /// lookup is `table.index_select(0, &ids)`).
    pub fn index_select(&self, axis: isize, indices: &[usize]) -> Result<Tensor> {
        let ax = normalize_axis("index_select", axis, self.rank())?;
        let size = self.shape()[ax];
        if let Some(&bad) = indices.iter().find(|&&i| i >= size) {
            return Err(TensorError::BadRange { op: "index_select", axis: ax, start: bad, len: 1, size });
        }
        let mut shape = self.shape().to_vec();
        shape[ax] = indices.len();
        let numel = validate_shape("index_select", &shape)?;
        let outer = numel_or_zero(&shape[..ax]);
        let inner = numel_or_zero(&shape[ax + 1..]);
        let c = self.contiguous();
        let mut out = Storage::zeros(self.dtype(), numel);
        if numel > 0 {
            let src = c.contiguous_src().unwrap_or(Src::F32(&[]));
            let mut dst = out.dst_all();
            for o in 0..outer {
                for (j, &i) in indices.iter().enumerate() {
                    let from = (o * size + i) * inner;
                    let to = (o * indices.len() + j) * inner;
                    cast(src.slice(from, from + inner), dst.slice(to, to + inner));
                }
            }
        }
        Ok(Tensor::from_storage(out, &shape))
    }

    /// Uniform samples in `[0, 1)` from `generator`: f32 and f64 from the
    /// generator's uniform samplers (24 and 53 random bits); f16 and bf16
    /// take the top 11 (8) bits of one word, so every value is exact and
    /// below 1.
    pub fn rand(shape: &[usize], dtype: DType, generator: &mut Generator) -> Result<Tensor> {
        let n = validate_shape("rand", shape)?;
        match dtype {
            DType::F32 => {
                let mut v = vec![0.0f32; n];
                generator.fill_uniform_f32(&mut v, 0.0, 1.0);
                Tensor::from_vec(v, shape)
            }
            DType::F64 => {
                let mut v = vec![0.0f64; n];
                generator.fill_uniform_f64(&mut v, 0.0, 1.0);
                Tensor::from_vec(v, shape)
            }
            DType::F16 | DType::BF16 => {
                let bits = if dtype == DType::F16 { 11 } else { 8 };
                let scale = 2f64.powi(-bits);
                let v: Vec<f64> = (0..n).map(|_| (generator.next_u32() >> (32 - bits)) as f64 * scale).collect();
                Tensor::from_vec(v, shape)?.to_dtype(dtype)
            }
        }
    }

    /// Standard normal samples from `generator` (its Box–Muller stream in
    /// f64), rounded once to `dtype`: `randn(&[10_000], F32, Generator::new(0))`
    /// has a pinned hash on every platform.
    pub fn randn(shape: &[usize], dtype: DType, generator: &mut Generator) -> Result<Tensor> {
        let n = validate_shape("randn", shape)?;
        let mut v = vec![0.0f64; n];
        generator.fill_normal_f64(&mut v, 0.0, 1.0);
        Tensor::from_vec(v, shape)?.to_dtype(dtype)
    }
}
