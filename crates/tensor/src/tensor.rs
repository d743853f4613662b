//! [`Tensor`]: a cheap handle to shared storage plus a [`Layout`].
//! Constructors, conversions and views live here; the arithmetic is in
//! `ops/`.

use std::sync::Arc;

use half::{bf16, f16};
use mixprec_kernels::convert::cast;
use mixprec_kernels::slice::{Dst, Src};

use crate::dtype::{DType, Element};
use crate::error::{Result, TensorError};
use crate::layout::{Layout, Rows, validate_shape};
use crate::storage::Storage;

/// An n-dimensional array of one [`DType`]: shared, 64-byte-aligned storage
/// and a [`Layout`]. Cloning is cheap (the storage is shared); views share
/// storage too. `Send + Sync`.
///
/// ```
/// use mixprec_tensor::{DType, Tensor};
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let h = x.to_dtype(DType::F16)?;
/// assert_eq!(h.shape(), &[2, 3]);
/// assert_eq!(h.t()?.to_vec_f32()?, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// # Ok::<(), mixprec_tensor::TensorError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Tensor {
    pub(crate) storage: Arc<Storage>,
    pub(crate) layout: Layout,
}

impl Tensor {
    pub(crate) fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        Tensor { storage: Arc::new(storage), layout: Layout::contiguous(shape) }
    }

    pub(crate) fn view(&self, layout: Layout) -> Tensor {
        Tensor { storage: Arc::clone(&self.storage), layout }
    }

    /// A tensor of `shape` holding `data` (row-major). The data is copied
    /// once into aligned storage.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_slice(&data, shape)
    }

    /// A tensor of `shape` holding a copy of `data` (row-major).
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        let expected = validate_shape("from_slice", shape)?;
        if data.len() != expected {
            return Err(TensorError::DataLength { op: "from_slice", len: data.len(), shape: shape.to_vec(), expected });
        }
        Ok(Tensor::from_storage(Storage::from_slice(data), shape))
    }

    /// A 0-dimensional tensor holding `value` rounded once to `dtype`.
    pub fn scalar(value: f64, dtype: DType) -> Tensor {
        let s = Storage::zeros(dtype, 1);
        let mut t = Tensor::from_storage(s, &[]);
        t.fill_(value);
        t
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        let n = validate_shape("zeros", shape)?;
        Ok(Tensor::from_storage(Storage::zeros(dtype, n), shape))
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 1.0, dtype)
    }

    /// A tensor with every element `value` rounded once to `dtype`.
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        let mut t = Tensor::zeros(shape, dtype)?;
        t.fill_(value);
        Ok(t)
    }

    /// A tensor of zeros with this tensor's shape and dtype.
    pub fn zeros_like(&self) -> Tensor {
        Tensor::from_storage(Storage::zeros(self.dtype(), self.numel()), self.shape())
    }

    /// `start, start + step, …` up to (excluding) `end`, as PyTorch's
    /// `arange`: `ceil((end − start) / step)` elements, each `start + i·step`
    /// computed in f64 and rounded once to `dtype`.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        let bad = |reason: String| TensorError::BadArgument { op: "arange", reason };
        if !(start.is_finite() && end.is_finite() && step.is_finite()) {
            return Err(bad(format!("start {start}, end {end} and step {step} must be finite")));
        }
        if step == 0.0 {
            return Err(bad("step must not be zero".into()));
        }
        let count = ((end - start) / step).ceil();
        if count > (isize::MAX as f64) / 8.0 {
            return Err(bad(format!("{count} elements are too many")));
        }
        let n = if count > 0.0 { count as usize } else { 0 };
        let vals: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Tensor::from_vec(vals, &[n])?.to_dtype(dtype)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// The size of every axis.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// Alias of [`Tensor::shape`].
    pub fn dims(&self) -> &[usize] {
        self.layout.shape()
    }

    /// Size of one axis (negative counts from the end).
    pub fn size(&self, axis: isize) -> Result<usize> {
        let ax = crate::layout::normalize_axis("size", axis, self.rank())?;
        Ok(self.shape()[ax])
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// The layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Strides in elements.
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// Whether the elements are row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// Whether two tensors share one storage buffer.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// An identifier of the storage buffer: equal for tensors that share
    /// storage, valid while any of them lives (then it may be reused).
    pub fn storage_id(&self) -> usize {
        Arc::as_ptr(&self.storage) as usize
    }

    /// Whether in-place writes (`data_mut`, `fill_`, the `*_` ops) go
    /// straight to this tensor's buffer: no other handle shares the storage
    /// and the tensor covers all of it, contiguous. Otherwise they copy first.
    pub fn is_exclusive(&self) -> bool {
        let whole = self.is_contiguous() && self.layout.offset() == 0 && self.numel() == self.storage.len();
        whole && Arc::strong_count(&self.storage) == 1
    }

    /// Bytes of the elements this tensor shows (`numel × size`).
    pub fn nbytes(&self) -> usize {
        self.numel() * self.dtype().size_in_bytes()
    }

    /// The contiguous kernel view of this tensor's elements, if it is contiguous.
    pub(crate) fn contiguous_src(&self) -> Option<Src<'_>> {
        if !self.is_contiguous() {
            return None;
        }
        if self.numel() == 0 {
            return Some(self.storage.src(0, 0));
        }
        let start = self.layout.offset();
        Some(self.storage.src(start, start + self.numel()))
    }

    /// This tensor, or a row-major copy of it if it is not contiguous.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        let mut out = Storage::zeros(self.dtype(), self.numel());
        self.copy_into(&mut out.dst_all());
        Tensor::from_storage(out, self.shape())
    }

    /// Copies the elements in row-major order into `dst` (same dtype or
    /// not: one rounding), whatever the layout.
    pub(crate) fn copy_into(&self, dst: &mut Dst<'_>) {
        debug_assert_eq!(dst.len(), self.numel());
        if let Some(src) = self.contiguous_src() {
            cast(src, dst.reborrow());
            return;
        }
        let l = &self.layout;
        let rows = Rows::new(l.shape(), [l.strides()], [l.offset()]);
        match self.storage.src_all() {
            Src::F64(all) => copy_rows(all, rows, dst),
            Src::F32(all) => copy_rows(all, rows, dst),
            Src::F16(all) => copy_rows(all, rows, dst),
            Src::Bf16(all) => copy_rows(all, rows, dst),
        }
    }

    /// A copy with every element rounded once to `dtype` (this tensor
    /// itself, shared, when it already has that dtype).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let mut out = Storage::zeros(dtype, self.numel());
        self.copy_into(&mut out.dst_all());
        Ok(Tensor::from_storage(out, self.shape()))
    }

    /// The elements in row-major order as `T`, which must be this tensor's
    /// element type (use [`Tensor::to_dtype`] first to convert).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(TensorError::DTypeMismatch { op: "to_vec", expected: self.dtype(), got: T::DTYPE });
        }
        let c = self.contiguous();
        Ok(c.as_slice::<T>().map(<[T]>::to_vec).unwrap_or_default())
    }

    /// The elements in row-major order widened (or, from f64, rounded) to f32.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.numel()];
        self.copy_into(&mut Dst::F32(&mut out));
        Ok(out)
    }

    /// The elements in row-major order widened to f64 (exact).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        let mut out = vec![0.0f64; self.numel()];
        self.copy_into(&mut Dst::F64(&mut out));
        Ok(out)
    }

    /// The value of a one-element tensor, widened to f64.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(TensorError::DataLength {
                op: "item",
                len: self.numel(),
                shape: self.shape().to_vec(),
                expected: 1,
            });
        }
        Ok(self.storage.src_all().get_f64(self.layout.offset()))
    }

    /// The element at a multi-index, widened to f64.
    pub fn get(&self, index: &[usize]) -> Result<f64> {
        if index.len() != self.rank() || index.iter().zip(self.shape()).any(|(&i, &d)| i >= d) {
            return Err(TensorError::ShapeMismatch { op: "get", lhs: self.shape().to_vec(), rhs: index.to_vec() });
        }
        let off = self.layout.offset() + index.iter().zip(self.strides()).map(|(&i, &s)| i * s).sum::<usize>();
        Ok(self.storage.src_all().get_f64(off))
    }

    // ---- views ---------------------------------------------------------

    /// The same elements with another shape; a view when the strides allow
    /// (always for a contiguous tensor), otherwise
    /// [`TensorError::NotContiguous`]: call [`Tensor::contiguous`] first.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(self.view(self.layout.reshape(shape)?))
    }

    /// Axes `start..=end` merged into one (a view when the strides allow).
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape(&[1]);
        }
        let s = crate::layout::normalize_axis("flatten", start, self.rank())?;
        let e = crate::layout::normalize_axis("flatten", end, self.rank())?;
        if s > e {
            return Err(TensorError::BadAxis { op: "flatten", axis: end, rank: self.rank() });
        }
        let sh = self.shape();
        let mut shape = sh[..s].to_vec();
        let merged = crate::layout::checked_numel(&sh[s..=e])
            .ok_or_else(|| TensorError::ShapeOverflow { op: "flatten", shape: sh.to_vec() })?;
        shape.push(merged);
        shape.extend_from_slice(&sh[e + 1..]);
        self.reshape(&shape)
    }

    /// A view with axes `a` and `b` swapped.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        Ok(self.view(self.layout.transpose(a, b)?))
    }

    /// The transpose of a 2-D tensor (a view).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(TensorError::BadRank { op: "t", expected: "rank 2", shape: self.shape().to_vec() });
        }
        self.transpose(0, 1)
    }

    /// A view with axes reordered: axis `i` of the result is axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        Ok(self.view(self.layout.permute(perm)?))
    }

    /// A view of indices `start..start + len` along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        Ok(self.view(self.layout.narrow(axis, start, len)?))
    }

    /// A view of this tensor's storage with explicit shape, strides and
    /// storage offset (PyTorch's `as_strided`; `offset` counts from the
    /// start of the storage, not of this view). Every element must lie in
    /// the storage; overlapping views (a stride of 0, or strides that make
    /// two indices meet) are allowed and read the same element twice.
    pub fn as_strided(&self, shape: &[usize], strides: &[usize], offset: usize) -> Result<Tensor> {
        let layout = Layout::from_parts(shape, strides, offset)?;
        let needed = layout.checked_end().unwrap_or(usize::MAX);
        let len = self.storage.len();
        if needed > len || (layout.numel() == 0 && offset > len) {
            return Err(TensorError::OutOfStorage {
                op: "as_strided",
                shape: shape.to_vec(),
                strides: strides.to_vec(),
                offset,
                needed,
                len,
            });
        }
        Ok(self.view(layout))
    }

    /// A view of index `index` along `axis`, with that axis removed.
    pub fn index_axis(&self, axis: isize, index: usize) -> Result<Tensor> {
        self.narrow(axis, index, 1)?.squeeze(axis)
    }

    /// A view broadcast to `shape` (stride 0 along stretched axes).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(self.view(self.layout.broadcast_to(shape)?))
    }

    /// A view without `axis` (whose size must be 1).
    pub fn squeeze(&self, axis: isize) -> Result<Tensor> {
        Ok(self.view(self.layout.squeeze(axis)?))
    }

    /// A view with a new axis of size 1 at `axis`.
    pub fn unsqueeze(&self, axis: isize) -> Result<Tensor> {
        Ok(self.view(self.layout.unsqueeze(axis)?))
    }

    // ---- in-place ------------------------------------------------------

    /// Makes this tensor the only owner of a contiguous buffer of exactly
    /// its elements (copy-on-write: copies only when the storage is shared
    /// or the layout is a strided or partial view), and returns it.
    pub(crate) fn make_unique(&mut self) -> &mut Storage {
        let whole = self.is_contiguous() && self.layout.offset() == 0 && self.numel() == self.storage.len();
        if !whole || Arc::get_mut(&mut self.storage).is_none() {
            let mut fresh = Storage::zeros(self.dtype(), self.numel());
            self.copy_into(&mut fresh.dst_all());
            *self = Tensor::from_storage(fresh, self.shape());
        }
        // Whole and contiguous already (or fresh): the layout stays as it is,
        // so writing in place allocates nothing.
        match Arc::get_mut(&mut self.storage) {
            Some(s) => s,
            None => unreachable!("a freshly allocated storage has one owner"),
        }
    }

    /// Sets every element to `value` rounded once (copy-on-write).
    pub fn fill_(&mut self, value: f64) {
        match self.make_unique().dst_all() {
            Dst::F64(d) => d.fill(value),
            Dst::F32(d) => d.fill(value as f32),
            Dst::F16(d) => d.fill(<f16 as Element>::from_f64(value)),
            Dst::Bf16(d) => d.fill(<bf16 as Element>::from_f64(value)),
        }
    }

    /// The elements as a mutable slice of `T` (copy-on-write: the tensor
    /// first becomes the sole owner of a contiguous buffer).
    pub fn data_mut<T: Element>(&mut self) -> Result<&mut [T]> {
        if T::DTYPE != self.dtype() {
            return Err(TensorError::DTypeMismatch { op: "data_mut", expected: self.dtype(), got: T::DTYPE });
        }
        Ok(self.make_unique().as_mut_slice().unwrap_or(&mut []))
    }

    /// The elements as a slice of `T` when the tensor is contiguous and of
    /// that dtype (no copy); `None` otherwise.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        if !self.is_contiguous() || T::DTYPE != self.dtype() {
            return None;
        }
        let start = if self.numel() == 0 { 0 } else { self.layout.offset() };
        self.storage.as_slice().map(|s: &[T]| &s[start..start + self.numel()])
    }
}

/// Copies the rows of a strided walk over `all` into consecutive rows of
/// `dst`, converting once when the types differ.
fn copy_rows<T: Element>(all: &[T], rows: Rows<1>, dst: &mut Dst<'_>) {
    let (n, stride) = (rows.n, rows.inner[0]);
    let mut buf: Vec<T> = Vec::with_capacity(if stride == 1 { 0 } else { n });
    for (r, [off]) in rows.enumerate() {
        let mut d = dst.slice(r * n, (r + 1) * n);
        if stride == 1 {
            cast(T::src(&all[off..off + n]), d);
        } else if let Some(d) = T::dst_slice(&mut d) {
            for (i, o) in d.iter_mut().enumerate() {
                *o = all[off + i * stride];
            }
        } else {
            buf.clear();
            buf.extend((0..n).map(|i| all[off + i * stride]));
            cast(T::src(&buf), d);
        }
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tensor>();
};
