//! Tensors for mixprec: dtypes, layouts and views over 64-byte-aligned shared
//! storage, eager ops through `mixprec-kernels`, and memory accounting.
//!
//! A [`Tensor`] is a cheap handle (an `Arc` to [`Storage`] plus a
//! [`Layout`]); views share storage, in-place updates copy on write. Every
//! user mistake comes back as a [`TensorError`]; nothing here panics on
//! user input.

pub mod display;
pub mod dtype;
pub mod error;
pub mod layout;
pub mod memory;
pub mod ops;
pub mod random;
pub mod storage;
pub mod tensor;

pub use dtype::{DType, Element};
pub use error::{Result, TensorError};
pub use layout::Layout;
pub use mixprec_kernels as kernels;
pub use storage::Storage;
pub use tensor::Tensor;
