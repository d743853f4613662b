//! aarch64 paths. Every `unsafe` block and `#[target_feature]` function of the
//! Arm kernels lives under this module; a path's functions reach callers only
//! through its table, handed out only when the CPU has the path's features.

pub mod neon;
