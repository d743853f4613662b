//! Tape-based reverse-mode automatic differentiation for mixprec, the autocast
//! mechanism every op consults, `nn` layers and optimizers.

pub use mixprec_tensor as tensor;
