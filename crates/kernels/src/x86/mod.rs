//! x86-64 paths. Every `unsafe` block and `#[target_feature]` function of the
//! x86 kernels lives under this module. A path's functions reach callers only
//! through its table, which `dispatch::table` hands out only when the CPU has
//! the path's features: that is the safety argument of every wrapper here.

pub mod avx2;
pub mod avx512;
pub mod avx512fp16;
