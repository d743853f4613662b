//! mixprec: training neural networks in mixed precision on the CPU.
//!
//! FP16 or BF16 storage and arithmetic inputs with FP32 accumulation, FP32
//! master weights and loss scaling, as in Micikevicius et al., "Mixed
//! Precision Training" (ICLR 2018). The layers, bottom-up:
//!
//! - [`kernels`]: SIMD compute on slices with runtime ISA dispatch;
//! - [`tensor`]: dtypes, layouts, storage, eager ops, memory statistics;
//! - [`autograd`]: the tape, differentiable ops, autocast, `nn`, `optim`;
//! - [`amp`]: precision modes, op lists, master weights, loss scaling;
//! - [`data`]: dataset readers (IDX images and labels, text corpora).

pub use mixprec_amp as amp;
pub use mixprec_autograd as autograd;
pub use mixprec_kernels as kernels;
pub use mixprec_tensor as tensor;

pub mod data;
