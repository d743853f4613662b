//! Elementwise kernels over typed slices ([`Src`]/[`Dst`]): binary
//! arithmetic with broadcasting along contiguous rows, unary math, the
//! derivatives autograd needs, and `select` (PyTorch's `where`). One table
//! entry per family; the op is an argument, so one entry serves every op and
//! every mix of f64/f32/f16/bf16 inputs and output.
//!
//! Shapes: the output is a `rows × n` row-major block. Each input is an
//! [`Operand`]: a full block, a row vector (`n`, the same for every row), a
//! column vector (`rows`, one per row) or a scalar.
//!
//! Precision: f16/bf16 inputs widen exactly; arithmetic is FP32 (f64 when an
//! input or the output is f64) with one rounding to the output type, so
//! `+ − × ÷`, `sqrt`, min/max and comparisons are correctly rounded. Scalar
//! operands are first rounded to the compute type (f32 unless f64), as
//! PyTorch does. See `docs/numerics.md` for the bounds of the others.

use crate::dispatch::{active, kernel_table};
use crate::slice::{Dst, Src};

/// A binary operation, `a op b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a × b`.
    Mul,
    /// `a ÷ b`.
    Div,
    /// IEEE 754-2019 `maximum`: NaN if either is NaN; `max(−0, +0) = +0`.
    Maximum,
    /// IEEE 754-2019 `minimum`: NaN if either is NaN; `min(−0, +0) = −0`.
    Minimum,
    /// `a^b` (`powf`); within the unary-math bound.
    Pow,
    /// `1` if `a == b` else `0` (NaN compares unequal; `−0 == +0`).
    Eq,
    /// `1` if `a != b` else `0`.
    Ne,
    /// `1` if `a < b` else `0`.
    Lt,
    /// `1` if `a <= b` else `0`.
    Le,
    /// `1` if `a > b` else `0`.
    Gt,
    /// `1` if `a >= b` else `0`.
    Ge,
}

impl BinaryOp {
    /// Every op.
    pub const ALL: [BinaryOp; 13] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Pow,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
    ];

    /// The op's name as PyTorch spells it.
    pub const fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Pow => "pow",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
        }
    }

    /// Whether the op returns `0`/`1` rather than a value.
    pub const fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge)
    }

    /// The op applied in f64 (the reference semantics; exact for comparisons
    /// and min/max, one f64 rounding for arithmetic).
    #[inline]
    pub fn apply_f64(self, a: f64, b: f64) -> f64 {
        let t = |c: bool| if c { 1.0 } else { 0.0 };
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Maximum => maximum(a, b),
            BinaryOp::Minimum => minimum(a, b),
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Eq => t(a == b),
            BinaryOp::Ne => t(a != b),
            BinaryOp::Lt => t(a < b),
            BinaryOp::Le => t(a <= b),
            BinaryOp::Gt => t(a > b),
            BinaryOp::Ge => t(a >= b),
        }
    }
}

/// IEEE 754-2019 `maximum` (NaN-propagating, `+0 > −0`).
#[inline]
pub fn maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// IEEE 754-2019 `minimum` (NaN-propagating, `−0 < +0`).
#[inline]
pub fn minimum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// One input of a `rows × n` elementwise kernel.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a> {
    /// A full `rows × n` row-major block.
    Full(Src<'a>),
    /// A row vector of `n` elements, the same for every row.
    Row(Src<'a>),
    /// A column vector of `rows` elements, one per row.
    Col(Src<'a>),
    /// One value for every element.
    Scalar(f64),
}

impl Operand<'_> {
    /// Elements this operand must hold for a `rows × n` block (`None` for a scalar).
    pub fn required_len(&self, rows: usize, n: usize) -> Option<usize> {
        match self {
            Operand::Full(_) => Some(rows * n),
            Operand::Row(_) => Some(n),
            Operand::Col(_) => Some(rows),
            Operand::Scalar(_) => None,
        }
    }

    fn check(&self, what: &str, rows: usize, n: usize) {
        let len = match self {
            Operand::Full(s) | Operand::Row(s) | Operand::Col(s) => s.len(),
            Operand::Scalar(_) => return,
        };
        let need = self.required_len(rows, n).unwrap_or(0);
        assert_eq!(len, need, "ew: operand {what} holds {len} elements, a {rows}×{n} block needs {need}");
    }
}

/// A unary operation, `f(x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `−x` (exact).
    Neg,
    /// `|x|` (exact).
    Abs,
    /// `eˣ`.
    Exp,
    /// `ln x` (`−Inf` at ±0, NaN below 0).
    Log,
    /// `√x` (correctly rounded; NaN below 0, `√−0 = −0`).
    Sqrt,
    /// `1/√x`.
    Rsqrt,
    /// `1/x` (correctly rounded).
    Recip,
    /// `x²` (correctly rounded).
    Square,
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + e⁻ˣ)`.
    Sigmoid,
    /// `max(x, 0)`; NaN stays NaN, `relu(−0) = 0`.
    Relu,
    /// GELU, tanh form: `x·σ(2·√(2/π)·(x + 0.044715·x³))`, which equals
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` without its cancellation.
    GeluTanh,
    /// GELU, erf form: `0.5·x·erfc(−x/√2)`.
    GeluErf,
}

impl UnaryOp {
    /// Every op.
    pub const ALL: [UnaryOp; 13] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Recip,
        UnaryOp::Square,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::GeluTanh,
        UnaryOp::GeluErf,
    ];

    /// The op's name as PyTorch spells it.
    pub const fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Recip => "reciprocal",
            UnaryOp::Square => "square",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::GeluTanh => "gelu_tanh",
            UnaryOp::GeluErf => "gelu",
        }
    }

    /// Whether the result is correctly rounded on every path (exact or one
    /// IEEE operation); the others are within the unary-math bound.
    pub const fn is_exact(self) -> bool {
        matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sqrt | UnaryOp::Recip | UnaryOp::Square | UnaryOp::Relu)
    }
}

/// The derivative of a unary op, applied to an incoming gradient:
/// `dx = g · f'(·)`, from the forward input `x` or output `y` as named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GradOp {
    /// `x > 0 ? g : 0` (0 at `x = 0` and for NaN `x`, even if `g` is NaN, as
    /// PyTorch's `threshold_backward`), from the input.
    Relu,
    /// `g · sign(x)` (0 at `x = ±0`), from the input.
    Abs,
    /// `g · y`, from the output of `exp`.
    Exp,
    /// `g / x`, from the input of `log`.
    Log,
    /// `g / (2y)`, from the output of `sqrt`.
    Sqrt,
    /// `−g · y³ / 2`, from the output of `rsqrt`.
    Rsqrt,
    /// `−g · y²`, from the output of `reciprocal`.
    Recip,
    /// `2 · g · x`, from the input of `square`.
    Square,
    /// `g · (1 − y²)`, from the output of `tanh`.
    Tanh,
    /// `g · y · (1 − y)`, from the output of `sigmoid`.
    Sigmoid,
    /// `g · (σ(2u) + x · 4σ(2u)σ(−2u) · √(2/π)(1 + 3·0.044715·x²)/2)` with
    /// `u = √(2/π)(x + 0.044715x³)`, from the input.
    GeluTanh,
    /// `g · (Φ(x) + x·φ(x))`, from the input.
    GeluErf,
}

impl GradOp {
    /// Every op.
    pub const ALL: [GradOp; 12] = [
        GradOp::Relu,
        GradOp::Abs,
        GradOp::Exp,
        GradOp::Log,
        GradOp::Sqrt,
        GradOp::Rsqrt,
        GradOp::Recip,
        GradOp::Square,
        GradOp::Tanh,
        GradOp::Sigmoid,
        GradOp::GeluTanh,
        GradOp::GeluErf,
    ];
}

kernel_table! {
    /// The elementwise kernels of one ISA path.
    pub struct Table {
        /// `dst = a op b` over a `rows × n` block.
        binary: fn(BinaryOp, usize, usize, Operand<'_>, Operand<'_>, Dst<'_>),
        /// `acc = acc op b` in place over a `rows × n` block.
        binary_assign: fn(BinaryOp, usize, usize, Dst<'_>, Operand<'_>),
        /// `dst = f(x)`.
        unary: fn(UnaryOp, Src<'_>, Dst<'_>),
        /// `dst = g · f'(saved)`.
        unary_grad: fn(GradOp, Src<'_>, Src<'_>, Dst<'_>),
        /// `dst = cond != 0 ? a : b` over a `rows × n` block.
        select: fn(usize, usize, Operand<'_>, Operand<'_>, Operand<'_>, Dst<'_>),
        /// `y = alpha·x + y` in place, one fused multiply-add per element.
        axpy: fn(f32, Src<'_>, Dst<'_>),
        /// One LSTM step's gates, cell and hidden state for a batch.
        lstm_cell: fn(usize, &mut [f32], &[f32], &mut [f32], &mut [f32], Dst<'_>),
        /// The gradients of one LSTM step's gate pre-activations and cell.
        lstm_cell_grad: fn(usize, LstmSaved<'_>, Src<'_>, &[f32], &mut [f32], Dst<'_>),
    }
}

/// What [`lstm_cell_grad`] reads from one step's forward pass, each a
/// `rows × ·` block: the gate activations `[i f g o]` (`4H` per row), the
/// cell that entered the step and `tanh` of the cell it produced (`H` each).
#[derive(Clone, Copy, Debug)]
pub struct LstmSaved<'a> {
    /// `σ(i) σ(f) tanh(g) σ(o)`, `rows × 4H`.
    pub act: &'a [f32],
    /// `c_{t−1}`, `rows × H`.
    pub c_prev: &'a [f32],
    /// `tanh(c_t)`, `rows × H`.
    pub tanh_c: &'a [f32],
}

/// One LSTM step for `rows = c_prev.len() / hs` batch rows, in one pass
/// (PyTorch's gate order i, f, g, o): `gates` holds each row's
/// pre-activations `[i f g o]` (`4·hs` values) and is overwritten with
/// `σ(i) σ(f) tanh(g) σ(o)`; then `c = σ(f)·c_prev + σ(i)·tanh(g)` (two
/// products and a sum, each rounded in f32), `tanh_c = tanh(c)` and `h =
/// σ(o)·tanh_c`, rounded once to `h`'s type.
///
/// `σ` and `tanh` are the unary kernels' (docs/numerics.md: ≤ 1 ulp on the
/// reference, ≤ 4 ulp of f32 on the SIMD paths; `σ(±Inf) = 1/0`,
/// `tanh(±Inf) = ±1`); NaN propagates, ±0 and subnormals follow IEEE
/// arithmetic, nothing is flushed. The products and sums are exact f32
/// operations on every path.
///
/// # Panics
/// If `hs == 0`, the lengths of `c_prev`, `c`, `tanh_c`, `h` differ or are
/// not a multiple of `hs`, or `gates` does not hold `4·hs` per row.
pub fn lstm_cell(hs: usize, gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tanh_c: &mut [f32], h: Dst<'_>) {
    check_lstm("lstm_cell", hs, gates.len(), c_prev.len(), [c.len(), tanh_c.len(), h.len()]);
    (active().ew.lstm_cell.f)(hs, gates, c_prev, c, tanh_c, h)
}

/// The backward of [`lstm_cell`] for one step: with `dh = dy + dh_next` and
/// `dc` the cell's gradient from the later step (updated in place),
///
/// ```text
/// dc' = dc + dh·o·(1 − tanh_c²)
/// d_i = dc'·g·(i·(1 − i))      d_f = dc'·c_prev·(f·(1 − f))
/// d_g = dc'·i·(1 − g²)         d_o = dh·tanh_c·(o·(1 − o))
/// dc  ← dc'·f
/// ```
///
/// each operation an f32 operation in that order (no fused multiply-add), so
/// every path is bit-identical to the reference; `dgates` (`rows × 4H`, gate
/// order i, f, g, o) is rounded once to its type. NaN and ±Inf propagate as
/// IEEE arithmetic says; ±0 and subnormals are kept.
///
/// # Panics
/// If `hs == 0`, or the lengths do not describe the same `rows × hs` step
/// (`act` and `dgates` `4·hs` per row).
pub fn lstm_cell_grad(hs: usize, saved: LstmSaved<'_>, dy: Src<'_>, dh_next: &[f32], dc: &mut [f32], dgates: Dst<'_>) {
    check_lstm(
        "lstm_cell_grad",
        hs,
        saved.act.len(),
        saved.c_prev.len(),
        [saved.tanh_c.len(), dy.len(), dh_next.len(), dc.len()],
    );
    assert_eq!(dgates.len(), saved.act.len(), "ew::lstm_cell_grad: dgates and act lengths differ");
    (active().ew.lstm_cell_grad.f)(hs, saved, dy, dh_next, dc, dgates)
}

fn check_lstm<const N: usize>(what: &str, hs: usize, gates: usize, cells: usize, others: [usize; N]) {
    assert!(hs > 0, "ew::{what}: hidden size 0");
    assert!(cells.is_multiple_of(hs), "ew::{what}: {cells} cell values are not rows of {hs}");
    assert_eq!(gates, 4 * cells, "ew::{what}: {gates} gate values for {cells} cell values (want 4 per cell)");
    assert!(others.iter().all(|&l| l == cells), "ew::{what}: lengths {others:?} differ from the {cells} cell values");
}

/// `dst[i, j] = a[i, j] op b[i, j]` over a `rows × n` row-major block, each
/// operand full, a row vector, a column vector or a scalar. Computes in FP32
/// (f64 if any slice is f64) and rounds once to `dst`'s type.
///
/// # Panics
/// If `dst` does not hold `rows × n` elements or an operand has the wrong length.
pub fn binary(op: BinaryOp, rows: usize, n: usize, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) {
    assert_eq!(
        dst.len(),
        rows * n,
        "ew::binary: dst holds {} elements, a {rows}×{n} block needs {}",
        dst.len(),
        rows * n
    );
    a.check("a", rows, n);
    b.check("b", rows, n);
    (active().ew.binary.f)(op, rows, n, a, b, dst)
}

/// `acc[i, j] = acc[i, j] op b[i, j]` in place (the in-place form of
/// [`binary`]: gradient accumulation, optimizer updates).
///
/// # Panics
/// If `acc` does not hold `rows × n` elements or `b` has the wrong length.
pub fn binary_assign(op: BinaryOp, rows: usize, n: usize, acc: Dst<'_>, b: Operand<'_>) {
    assert_eq!(acc.len(), rows * n, "ew::binary_assign: acc holds {} elements, needs {}", acc.len(), rows * n);
    b.check("b", rows, n);
    (active().ew.binary_assign.f)(op, rows, n, acc, b)
}

/// `dst[i] = f(x[i])`, rounded once to `dst`'s type.
///
/// # Panics
/// If the lengths differ.
pub fn unary(op: UnaryOp, x: Src<'_>, dst: Dst<'_>) {
    assert_eq!(x.len(), dst.len(), "ew::unary: x and dst lengths differ");
    (active().ew.unary.f)(op, x, dst)
}

/// `dst[i] = g[i] · f'(saved[i])`, rounded once to `dst`'s type.
///
/// # Panics
/// If the lengths differ.
pub fn unary_grad(op: GradOp, g: Src<'_>, saved: Src<'_>, dst: Dst<'_>) {
    assert!(g.len() == dst.len() && saved.len() == dst.len(), "ew::unary_grad: g, saved and dst lengths differ");
    (active().ew.unary_grad.f)(op, g, saved, dst)
}

/// `y[i] = alpha·x[i] + y[i]` in place: one FP32 fused multiply-add per
/// element (f64 when `x` or `y` is f64), rounded once to f32 and then to
/// `y`'s type (exact for an f32 `y`). `x` may be any type. NaN and ±Inf
/// propagate as IEEE `fma` says (`0·Inf + y` is NaN); ±0 and subnormals are
/// kept. Gradient accumulation with a weight, SGD without state.
///
/// # Panics
/// If the lengths differ.
pub fn axpy(alpha: f32, x: Src<'_>, y: Dst<'_>) {
    assert_eq!(x.len(), y.len(), "ew::axpy: x holds {} elements, y {}", x.len(), y.len());
    (active().ew.axpy.f)(alpha, x, y)
}

/// `dst[i, j] = cond[i, j] != 0 ? a[i, j] : b[i, j]` (NaN counts as true),
/// the chosen value converted once to `dst`'s type.
///
/// # Panics
/// If `dst` does not hold `rows × n` elements or an operand has the wrong length.
pub fn select(rows: usize, n: usize, cond: Operand<'_>, a: Operand<'_>, b: Operand<'_>, dst: Dst<'_>) {
    assert_eq!(dst.len(), rows * n, "ew::select: dst holds {} elements, needs {}", dst.len(), rows * n);
    cond.check("cond", rows, n);
    a.check("a", rows, n);
    b.check("b", rows, n);
    (active().ew.select.f)(rows, n, cond, a, b, dst)
}
