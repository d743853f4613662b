//! The `neon` path: Advanced SIMD, with FP16 arithmetic and FHM where present.
//! `install` overrides the entries of the table this path implements.

use crate::dispatch::{Features, Kernels};

/// Overrides the entries this path implements.
pub(crate) fn install(_k: &mut Kernels, _features: Features) {}
