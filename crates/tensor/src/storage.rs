//! Storage: one 64-byte-aligned buffer of one dtype, shared between tensor
//! views through an `Arc`. Creating and dropping a buffer updates the
//! [`memory`](crate::memory) counters.

use aligned_vec::{AVec, ConstAlign};
use half::{bf16, f16};
use mixprec_kernels::slice::{Dst, Src};

use crate::dtype::{DType, Element};
use crate::memory;

/// Alignment of every buffer, in bytes (a cache line; a full AVX-512 vector).
pub const ALIGN: usize = 64;

/// A 64-byte-aligned vector.
pub type AlignedVec<T> = AVec<T, ConstAlign<ALIGN>>;

#[doc(hidden)]
#[derive(Debug)]
pub enum Buffer {
    F64(AlignedVec<f64>),
    F32(AlignedVec<f32>),
    F16(AlignedVec<f16>),
    BF16(AlignedVec<bf16>),
}

/// A tensor's backing buffer.
#[derive(Debug)]
pub struct Storage {
    buf: Buffer,
}

/// Runs `$body` with `$v` bound to the typed vector of `$buf`.
macro_rules! with_buffer {
    ($buf:expr, $v:ident => $body:expr) => {
        match $buf {
            Buffer::F64($v) => $body,
            Buffer::F32($v) => $body,
            Buffer::F16($v) => $body,
            Buffer::BF16($v) => $body,
        }
    };
}

impl Storage {
    pub(crate) fn from_aligned<T: Element>(v: AlignedVec<T>) -> Storage {
        memory::acquire(T::DTYPE, v.len() * T::DTYPE.size_in_bytes());
        Storage { buf: T::into_buffer(v) }
    }

    /// A buffer of `len` zeros (the caller checked that `len` elements fit).
    pub(crate) fn zeros(dtype: DType, len: usize) -> Storage {
        fn z<T: Element>(len: usize) -> Storage {
            let mut v = AlignedVec::<T>::with_capacity(ALIGN, len);
            v.resize(len, T::ZERO);
            Storage::from_aligned(v)
        }
        match dtype {
            DType::F64 => z::<f64>(len),
            DType::F32 => z::<f32>(len),
            DType::F16 => z::<f16>(len),
            DType::BF16 => z::<bf16>(len),
        }
    }

    pub(crate) fn from_slice<T: Element>(data: &[T]) -> Storage {
        Storage::from_aligned(AlignedVec::from_slice(ALIGN, data))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self.buf {
            Buffer::F64(_) => DType::F64,
            Buffer::F32(_) => DType::F32,
            Buffer::F16(_) => DType::F16,
            Buffer::BF16(_) => DType::BF16,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_buffer!(&self.buf, v => v.len())
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `T`, or `None` if `T` is not the buffer's type.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::buffer_slice(&self.buf)
    }

    /// The elements as `T`, mutably, or `None` if `T` is not the buffer's type.
    pub(crate) fn as_mut_slice<T: Element>(&mut self) -> Option<&mut [T]> {
        T::buffer_slice_mut(&mut self.buf)
    }

    /// Kernel view of elements `start..end`.
    pub(crate) fn src(&self, start: usize, end: usize) -> Src<'_> {
        match &self.buf {
            Buffer::F64(v) => Src::F64(&v[start..end]),
            Buffer::F32(v) => Src::F32(&v[start..end]),
            Buffer::F16(v) => Src::F16(&v[start..end]),
            Buffer::BF16(v) => Src::Bf16(&v[start..end]),
        }
    }

    /// Kernel view of the whole buffer.
    pub(crate) fn src_all(&self) -> Src<'_> {
        self.src(0, self.len())
    }

    /// Writable kernel view of elements `start..end`.
    pub(crate) fn dst(&mut self, start: usize, end: usize) -> Dst<'_> {
        match &mut self.buf {
            Buffer::F64(v) => Dst::F64(&mut v[start..end]),
            Buffer::F32(v) => Dst::F32(&mut v[start..end]),
            Buffer::F16(v) => Dst::F16(&mut v[start..end]),
            Buffer::BF16(v) => Dst::Bf16(&mut v[start..end]),
        }
    }

    /// Writable kernel view of the whole buffer.
    pub(crate) fn dst_all(&mut self) -> Dst<'_> {
        let n = self.len();
        self.dst(0, n)
    }
}

impl Clone for Storage {
    fn clone(&self) -> Storage {
        with_buffer!(&self.buf, v => Storage::from_slice(v.as_slice()))
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        memory::release(self.dtype(), self.len() * self.dtype().size_in_bytes());
    }
}
