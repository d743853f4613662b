//! [`Layout`]: shape, strides and offset, all in elements. Every view
//! (reshape, transpose, permute, narrow, broadcast, squeeze, unsqueeze) is a
//! new layout over the same storage; nothing here copies data.
//!
//! Strides are unsigned: a broadcast axis has stride 0, nothing runs
//! backwards. The helpers at the bottom walk a layout row by row for the ops.

use crate::error::{Result, TensorError};

/// Where a tensor's elements live in its storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// The element count of a shape, or `None` if it overflows. A shape with a
/// zero-sized axis holds nothing, whatever its other axes (so the answer
/// does not depend on the order of the axes).
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The element count of a shape whose full product is known not to
/// overflow, or of a part of one: a part of an empty shape may overflow on
/// its own, and then counts as 0 (nothing of an empty tensor is visited).
pub(crate) fn numel_or_zero(dims: &[usize]) -> usize {
    checked_numel(dims).unwrap_or(0)
}

/// Checks that a shape's elements fit in memory addressing (`numel × 8`
/// bytes below `isize::MAX`) and returns its element count.
pub(crate) fn validate_shape(op: &'static str, shape: &[usize]) -> Result<usize> {
    match checked_numel(shape) {
        Some(n) if n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize) => Ok(n),
        _ => Err(TensorError::ShapeOverflow { op, shape: shape.to_vec() }),
    }
}

/// Row-major strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1usize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc = acc.saturating_mul(d);
    }
    strides
}

/// Turns a possibly negative axis into `0..rank` (PyTorch's `dim=-1`).
pub fn normalize_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) { Ok(a as usize) } else { Err(TensorError::BadAxis { op, axis, rank }) }
}

/// The NumPy broadcast of two shapes.
pub fn broadcast_shapes(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Vec<usize>> {
    let rank = lhs.len().max(rhs.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let a = if i + lhs.len() >= rank { lhs[i + lhs.len() - rank] } else { 1 };
        let b = if i + rhs.len() >= rank { rhs[i + rhs.len() - rank] } else { 1 };
        out[i] = match (a, b) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => return Err(TensorError::ShapeMismatch { op, lhs: lhs.to_vec(), rhs: rhs.to_vec() }),
        };
    }
    Ok(out)
}

impl Layout {
    /// A row-major layout of `shape` at offset 0. The element count must
    /// have been validated by the caller.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout { strides: contiguous_strides(shape), shape: shape.to_vec(), offset: 0 }
    }

    /// A layout from explicit parts (PyTorch's `as_strided`): one stride per
    /// axis, an element count that [`Layout::contiguous`] could hold, and an
    /// index of the last element that does not overflow. Whether the range
    /// fits a storage is checked by [`crate::Tensor::as_strided`].
    pub fn from_parts(shape: &[usize], strides: &[usize], offset: usize) -> Result<Layout> {
        if strides.len() != shape.len() {
            return Err(TensorError::ShapeMismatch { op: "as_strided", lhs: shape.to_vec(), rhs: strides.to_vec() });
        }
        validate_shape("as_strided", shape)?;
        let l = Layout { shape: shape.to_vec(), strides: strides.to_vec(), offset };
        match l.checked_end() {
            Some(_) => Ok(l),
            None => Err(TensorError::ShapeOverflow { op: "as_strided", shape: shape.to_vec() }),
        }
    }

    /// One past the storage index of the last element (`offset` for an empty
    /// tensor), or `None` if that overflows.
    pub fn checked_end(&self) -> Option<usize> {
        if self.numel() == 0 {
            return Some(self.offset);
        }
        self.shape
            .iter()
            .zip(&self.strides)
            .try_fold(self.offset, |acc, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x)))?
            .checked_add(1)
    }

    /// The size of every axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The stride of every axis, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// The storage index of the first element.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        // Validated shapes never overflow, but an empty one may have huge
        // axes before its zero.
        checked_numel(&self.shape).unwrap_or(0)
    }

    /// Whether the elements are stored row-major without gaps (axes of size
    /// 1 may have any stride; an empty tensor is contiguous).
    pub fn is_contiguous(&self) -> bool {
        if self.numel() == 0 {
            return true;
        }
        let mut expected = 1usize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 {
                if s != expected {
                    return false;
                }
                expected *= d;
            }
        }
        true
    }

    /// The storage range `start..end` the elements occupy (empty for an empty tensor).
    pub fn storage_range(&self) -> (usize, usize) {
        if self.numel() == 0 {
            return (self.offset, self.offset);
        }
        let last: usize = self.shape.iter().zip(&self.strides).map(|(&d, &s)| (d - 1) * s).sum();
        (self.offset, self.offset + last + 1)
    }

    /// The same elements seen with another shape, without copying, when the
    /// strides allow it (PyTorch's `view` rule: each group of merged axes
    /// must be contiguous within itself).
    pub fn reshape(&self, shape: &[usize]) -> Result<Layout> {
        let numel = self.numel();
        let to_numel = checked_numel(shape).unwrap_or(usize::MAX);
        if to_numel != numel || checked_numel(shape).is_none() {
            return Err(TensorError::ReshapeNumel {
                op: "reshape",
                from: self.shape.clone(),
                from_numel: numel,
                to: shape.to_vec(),
                to_numel,
            });
        }
        if self.is_contiguous() {
            return Ok(Layout { shape: shape.to_vec(), strides: contiguous_strides(shape), offset: self.offset });
        }
        match view_strides(&self.shape, &self.strides, shape) {
            Some(strides) => Ok(Layout { shape: shape.to_vec(), strides, offset: self.offset }),
            None => Err(TensorError::NotContiguous {
                op: "reshape",
                shape: self.shape.clone(),
                strides: self.strides.clone(),
                target: shape.to_vec(),
            }),
        }
    }

    /// Axes `a` and `b` swapped.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Layout> {
        let a = normalize_axis("transpose", a, self.rank())?;
        let b = normalize_axis("transpose", b, self.rank())?;
        let mut l = self.clone();
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        Ok(l)
    }

    /// Axes reordered: axis `i` of the result is axis `perm[i]` of `self`.
    pub fn permute(&self, perm: &[usize]) -> Result<Layout> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        let ok = perm.len() == rank && perm.iter().all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
        if !ok {
            return Err(TensorError::BadPermutation { op: "permute", perm: perm.to_vec(), rank });
        }
        Ok(Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    /// Indices `start..start + len` of `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Layout> {
        let ax = normalize_axis("narrow", axis, self.rank())?;
        let size = self.shape[ax];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(TensorError::BadRange { op: "narrow", axis: ax, start, len, size });
        }
        let mut l = self.clone();
        l.shape[ax] = len;
        // An empty view keeps its offset, so it never points past its storage.
        if l.numel() > 0 {
            l.offset += start * self.strides[ax];
        }
        Ok(l)
    }

    /// The layout broadcast to `shape` (NumPy rules: new leading axes, and
    /// axes of size 1 stretched with stride 0).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        let err = || TensorError::BadBroadcast { op: "broadcast_to", from: self.shape.clone(), to: shape.to_vec() };
        if shape.len() < self.rank() {
            return Err(err());
        }
        validate_shape("broadcast_to", shape)?;
        let lead = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for (i, &d) in shape.iter().enumerate().skip(lead) {
            let (sd, ss) = (self.shape[i - lead], self.strides[i - lead]);
            strides[i] = match sd {
                _ if sd == d => ss,
                1 => 0,
                _ => return Err(err()),
            };
        }
        Ok(Layout { shape: shape.to_vec(), strides, offset: self.offset })
    }

    /// `axis` removed; its size must be 1.
    pub fn squeeze(&self, axis: isize) -> Result<Layout> {
        let ax = normalize_axis("squeeze", axis, self.rank())?;
        if self.shape[ax] != 1 {
            return Err(TensorError::NotSingleton {
                op: "squeeze",
                axis: ax,
                shape: self.shape.clone(),
                size: self.shape[ax],
            });
        }
        let mut l = self.clone();
        l.shape.remove(ax);
        l.strides.remove(ax);
        Ok(l)
    }

    /// A new axis of size 1 at position `axis` (`-rank-1..=rank`).
    pub fn unsqueeze(&self, axis: isize) -> Result<Layout> {
        let ax = normalize_axis("unsqueeze", axis, self.rank() + 1)?;
        let mut l = self.clone();
        // Saturating: an empty tensor (from `as_strided`) may carry any stride.
        let stride = if ax < self.rank() { self.shape[ax].saturating_mul(self.strides[ax]) } else { 1 };
        l.shape.insert(ax, 1);
        l.strides.insert(ax, stride);
        Ok(l)
    }
}

/// PyTorch's `computeStride`: strides that view `old` (with `old_strides`)
/// as `new`, if the axes that get merged or split are contiguous among
/// themselves. Both shapes have the same non-zero element count.
fn view_strides(old: &[usize], old_strides: &[usize], new: &[usize]) -> Option<Vec<usize>> {
    if old.contains(&0) {
        return Some(contiguous_strides(new));
    }
    let mut strides = vec![0; new.len()];
    let mut view_d = new.len() as isize - 1;
    let mut chunk_base = *old_strides.last()?;
    let mut tensor_numel = 1usize;
    let mut view_numel = 1usize;
    for d in (0..old.len()).rev() {
        tensor_numel *= old[d];
        if d == 0 || (old[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base) {
            while view_d >= 0 && (view_numel < tensor_numel || new[view_d as usize] == 1) {
                strides[view_d as usize] = view_numel * chunk_base;
                view_numel *= new[view_d as usize];
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if d > 0 {
                chunk_base = old_strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    (view_d == -1).then_some(strides)
}

/// Visits every index of `shape` in row-major order and yields, for each
/// of `N` operands, `offset + Σ index·stride`.
#[derive(Debug)]
pub(crate) struct Odometer<const N: usize> {
    shape: Vec<usize>,
    strides: [Vec<usize>; N],
    idx: Vec<usize>,
    offs: [usize; N],
    remaining: usize,
}

impl<const N: usize> Odometer<N> {
    pub fn new(shape: Vec<usize>, strides: [Vec<usize>; N], offsets: [usize; N]) -> Odometer<N> {
        let remaining = numel_or_zero(&shape);
        Odometer { idx: vec![0; shape.len()], shape, strides, offs: offsets, remaining }
    }
}

impl<const N: usize> Iterator for Odometer<N> {
    type Item = [usize; N];

    fn next(&mut self) -> Option<[usize; N]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let cur = self.offs;
        for ax in (0..self.shape.len()).rev() {
            self.idx[ax] += 1;
            for k in 0..N {
                self.offs[k] += self.strides[k][ax];
            }
            if self.idx[ax] < self.shape[ax] {
                break;
            }
            for k in 0..N {
                self.offs[k] -= self.strides[k][ax] * self.shape[ax];
            }
            self.idx[ax] = 0;
        }
        Some(cur)
    }
}

/// Merges adjacent axes that every operand stores contiguously (axis `i`
/// into `i+1` when `stride[i] == stride[i+1]·shape[i+1]` for all) and drops
/// axes of size 1. Returns the merged sizes and each operand's strides.
pub(crate) fn coalesce<const N: usize>(shape: &[usize], strides: [&[usize]; N]) -> (Vec<usize>, [Vec<usize>; N]) {
    let mut dims: Vec<usize> = Vec::with_capacity(shape.len());
    let mut sts: [Vec<usize>; N] = std::array::from_fn(|_| Vec::with_capacity(shape.len()));
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let merge = !dims.is_empty() && (0..N).all(|k| sts[k].last().copied() == Some(strides[k][i] * d));
        match dims.last_mut() {
            Some(last) if merge => {
                *last *= d;
                for k in 0..N {
                    if let Some(s) = sts[k].last_mut() {
                        *s = strides[k][i];
                    }
                }
            }
            _ => {
                dims.push(d);
                for k in 0..N {
                    sts[k].push(strides[k][i]);
                }
            }
        }
    }
    (dims, sts)
}

/// A walk over `N` operands that share one shape (each with its own strides
/// and offset), row by row after [`coalesce`]: a contiguous operand becomes
/// one row. Yields each operand's row-start offset.
#[derive(Debug)]
pub(crate) struct Rows<const N: usize> {
    /// Length of the innermost (merged) axis.
    pub n: usize,
    /// Innermost stride per operand.
    pub inner: [usize; N],
    walk: Odometer<N>,
}

impl<const N: usize> Rows<N> {
    /// Plans the walk. `strides[k]` and `offsets[k]` describe operand `k`.
    pub fn new(shape: &[usize], strides: [&[usize]; N], offsets: [usize; N]) -> Rows<N> {
        let (mut dims, mut sts) = coalesce(shape, strides);
        let empty = shape.contains(&0);
        let (n, inner) = match dims.pop() {
            Some(n) => (n, std::array::from_fn(|k| sts[k].pop().unwrap_or(0))),
            None => (1, [1; N]),
        };
        if empty {
            dims = vec![0];
            sts = std::array::from_fn(|_| vec![0]);
        }
        Rows { n, inner, walk: Odometer::new(dims, sts, offsets) }
    }
}

impl<const N: usize> Iterator for Rows<N> {
    type Item = [usize; N];

    fn next(&mut self) -> Option<[usize; N]> {
        self.walk.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_of_a_transposed_view_needs_a_copy() {
        let l = Layout::contiguous(&[2, 3]).transpose(0, 1).unwrap();
        assert!(!l.is_contiguous());
        assert!(matches!(l.reshape(&[6]), Err(TensorError::NotContiguous { .. })));
        // Splitting one axis of a strided view is still a view.
        let l = Layout::contiguous(&[4, 6]).narrow(1, 0, 4).unwrap();
        let r = l.reshape(&[4, 2, 2]).unwrap();
        assert_eq!(r.strides(), &[6, 2, 1]);
        assert!(matches!(l.reshape(&[16]), Err(TensorError::NotContiguous { .. })));
    }

    #[test]
    fn rows_merge_contiguous_axes() {
        let l = Layout::contiguous(&[2, 3, 4]);
        let r = Rows::new(l.shape(), [l.strides()], [0]);
        assert_eq!((r.n, r.inner, r.count()), (24, [1], 1));
        let t = l.transpose(0, 2).unwrap();
        let r = Rows::new(t.shape(), [t.strides()], [0]);
        assert_eq!((r.n, r.inner), (2, [12]));
        let offs: Vec<usize> = r.map(|[o]| o).collect();
        assert_eq!(offs, vec![0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast_shapes("t", &[3, 1, 5], &[4, 1]).unwrap(), vec![3, 4, 5]);
        assert_eq!(broadcast_shapes("t", &[], &[2]).unwrap(), vec![2]);
        assert_eq!(broadcast_shapes("t", &[0], &[1]).unwrap(), vec![0]);
        assert!(broadcast_shapes("t", &[2], &[3]).is_err());
        let b = Layout::contiguous(&[3, 1]).broadcast_to(&[2, 3, 4]).unwrap();
        assert_eq!(b.strides(), &[0, 1, 0]);
    }
}
