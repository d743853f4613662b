//! Eager ops: shape checks and broadcasting here, arithmetic in
//! `mixprec-kernels`. [`elementwise`] turns any mix of broadcast and strided
//! inputs into as few kernel calls as it can: one call for contiguous
//! operands of one shape, one call per 2-D block when the inputs are full,
//! row, column or scalar operands of it (bias adds, per-row scales), and
//! one call per row otherwise (gathering strided rows into a scratch row).

pub mod binary;
pub mod matmul;
pub mod reduce;
pub mod shape;
pub mod unary;

use half::{bf16, f16};
use mixprec_kernels::ew::Operand;
use mixprec_kernels::slice::{Dst, Src};

use crate::error::Result;
use crate::layout::{Odometer, coalesce};
use crate::tensor::Tensor;

/// Reusable rows for gathering strided elements, one per dtype.
#[derive(Default)]
pub(crate) struct Scratch {
    f64: Vec<f64>,
    f32: Vec<f32>,
    f16: Vec<f16>,
    bf16: Vec<bf16>,
}

fn gather_typed<T: Copy>(s: &[T], off: usize, stride: usize, n: usize, v: &mut Vec<T>) {
    v.clear();
    v.extend((0..n).map(|i| s[off + i * stride]));
}

impl Scratch {
    /// Copies `n` elements `stride` apart from `src[off..]` and returns them.
    pub(crate) fn gather(&mut self, src: Src<'_>, off: usize, stride: usize, n: usize) -> Src<'_> {
        match src {
            Src::F64(s) => {
                gather_typed(s, off, stride, n, &mut self.f64);
                Src::F64(&self.f64)
            }
            Src::F32(s) => {
                gather_typed(s, off, stride, n, &mut self.f32);
                Src::F32(&self.f32)
            }
            Src::F16(s) => {
                gather_typed(s, off, stride, n, &mut self.f16);
                Src::F16(&self.f16)
            }
            Src::Bf16(s) => {
                gather_typed(s, off, stride, n, &mut self.bf16);
                Src::Bf16(&self.bf16)
            }
        }
    }
}

/// How one input appears in a kernel block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Full,
    Row,
    Col,
    Scalar,
    Gather(usize),
}

/// Runs `f(rows, n, operands, dst)` over `out` (row-major, of `shape`),
/// with every input broadcast to `shape`. The caller has checked that the
/// inputs broadcast to `shape` and that `out` holds its elements.
pub(crate) fn elementwise<const N: usize>(
    op: &'static str,
    shape: &[usize],
    inputs: [&Tensor; N],
    out: &mut Dst<'_>,
    mut f: impl FnMut(usize, usize, [Operand<'_>; N], Dst<'_>),
) -> Result<()> {
    if shape.contains(&0) {
        return Ok(());
    }
    let mut layouts = Vec::with_capacity(N);
    for t in inputs {
        layouts.push(t.layout.broadcast_to(shape).map_err(|_| crate::TensorError::ShapeMismatch {
            op,
            lhs: t.shape().to_vec(),
            rhs: shape.to_vec(),
        })?);
    }
    let strides: [&[usize]; N] = std::array::from_fn(|k| layouts[k].strides());
    let offsets: [usize; N] = std::array::from_fn(|k| layouts[k].offset());
    let (dims, sts) = coalesce(shape, strides);
    let d = dims.len();

    // Try a 2-D block over the last two merged axes, else rows.
    let classify2 = |k: usize, n: usize| match (sts[k][d - 2], sts[k][d - 1]) {
        (sr, 1) if sr == n => Some(Kind::Full),
        (0, 1) => Some(Kind::Row),
        (1, 0) => Some(Kind::Col),
        (0, 0) => Some(Kind::Scalar),
        _ => None,
    };
    let (rows, n, kinds, outer) = if d == 0 {
        (1, 1, [Kind::Full; N], 0)
    } else if let Some(kinds) =
        (d >= 2).then(|| (0..N).map(|k| classify2(k, dims[d - 1])).collect::<Option<Vec<Kind>>>()).flatten()
    {
        (dims[d - 2], dims[d - 1], std::array::from_fn(|k| kinds[k]), d - 2)
    } else {
        let kinds = std::array::from_fn(|k| match sts[k][d - 1] {
            1 => Kind::Full,
            0 => Kind::Scalar,
            s => Kind::Gather(s),
        });
        (1, dims[d - 1], kinds, d - 1)
    };
    let walk = Odometer::new(dims[..outer].to_vec(), std::array::from_fn(|k| sts[k][..outer].to_vec()), offsets);
    let block = rows * n;
    let srcs: [Src<'_>; N] = std::array::from_fn(|k| inputs[k].storage.src_all());
    let mut scratch: [Scratch; N] = std::array::from_fn(|_| Scratch::default());
    for (b, offs) in walk.enumerate() {
        for k in 0..N {
            if let Kind::Gather(s) = kinds[k] {
                scratch[k].gather(srcs[k], offs[k], s, n);
            }
        }
        let operands: [Operand<'_>; N] = std::array::from_fn(|k| {
            let (s, o) = (srcs[k], offs[k]);
            match kinds[k] {
                Kind::Full => Operand::Full(s.slice(o, o + block)),
                Kind::Row => Operand::Row(s.slice(o, o + n)),
                Kind::Col => Operand::Col(s.slice(o, o + rows)),
                Kind::Scalar => Operand::Scalar(s.get_f64(o)),
                Kind::Gather(_) => Operand::Full(scratch[k].view(srcs[k])),
            }
        });
        f(rows, n, operands, out.slice(b * block, (b + 1) * block));
    }
    Ok(())
}

impl Scratch {
    /// The last gathered row of `like`'s dtype.
    fn view(&self, like: Src<'_>) -> Src<'_> {
        match like {
            Src::F64(_) => Src::F64(&self.f64),
            Src::F32(_) => Src::F32(&self.f32),
            Src::F16(_) => Src::F16(&self.f16),
            Src::Bf16(_) => Src::Bf16(&self.bf16),
        }
    }
}
