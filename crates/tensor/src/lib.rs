//! Tensors for mixprec: dtypes, layouts and views over 64-byte-aligned shared
//! storage, eager ops through `mixprec-kernels`, and memory accounting.

pub use mixprec_kernels as kernels;
