//! General matrix products with BLAS semantics, row-major:
//! `C = alpha·op(A)·op(B) + beta·C`, FP32 accumulation for every input type.
//!
//! op(A) is m×k: with [`Transpose::No`] A is stored m×k with row stride
//! `lda ≥ k`; with [`Transpose::Yes`] it is stored k×m with `lda ≥ m`.
//! Likewise B (k×n, `ldb ≥ n`; or n×k, `ldb ≥ k`); C is m×n with `ldc ≥ n`.
//! `beta == 0`: C is never read (it may hold NaN). `alpha == 0` or `k == 0`:
//! A and B are not read and `C = beta·C`. `m == 0` or `n == 0`: no-op.
//!
//! The machinery is BLIS's: five loops ([`driver`]) around an MR×NR
//! micro-kernel, A and B packed into reused buffers, block sizes derived from
//! the detected caches ([`blocking`]). Each ISA path registers, per input
//! type, a micro-kernel, two packing routines and its MR×NR ([`Impl`]); adding
//! a path means writing those three functions and filling an [`Impl`].

pub mod blocking;
mod driver;
pub mod pack;

use half::{bf16, f16};

use crate::dispatch::{Kernel, active};
pub use crate::scalar::gemm::GemmInput;
pub use blocking::{Blocking, CacheSizes, KernelShape, detected_caches};
pub use driver::{CallStats, last_call_stats, relu};

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transpose {
    /// op(X) = X.
    No,
    /// op(X) = Xᵀ.
    Yes,
}

// ---------------------------------------------------------------- registry

/// The A operand of one micro-tile.
#[derive(Clone, Copy, Debug)]
pub enum APanel<'a, P> {
    /// Packed micro-panel: element (i, p) at `[p·m + i]` (m = the tile's rows).
    Packed(&'a [P]),
    /// Unpacked: element (i, p) at `[i·rs + p·cs]`.
    Strided {
        /// The elements.
        data: &'a [P],
        /// Row stride.
        rs: usize,
        /// Column (depth) stride.
        cs: usize,
    },
}

/// The B operand of one micro-tile.
#[derive(Clone, Copy, Debug)]
pub enum BPanel<'a, P> {
    /// Packed micro-panel: element (p, j) at `[p·NR + j]`, zero-padded to NR columns.
    Packed(&'a [P]),
    /// Unpacked rows: element (p, j) at `[p·ld + j]`; nothing past column n is read.
    Rows {
        /// The elements.
        data: &'a [P],
        /// Row stride.
        ld: usize,
    },
    /// Unpacked columns (op(B) stored n×k, read in place by the shallow
    /// kernel): element (p, j) at `[j·ld + p]`; nothing past column n is read.
    Cols {
        /// The elements.
        data: &'a [P],
        /// Column stride.
        ld: usize,
    },
}

/// One micro-tile's operands: `k` depth steps of an `m × n` tile (m ≤ MR, n ≤ NR).
/// For pair-packed paths (`KernelShape::kpack == 2`) a depth step is a pair.
#[derive(Clone, Copy, Debug)]
pub struct MicroTile<'a, P> {
    /// Depth steps.
    pub k: usize,
    /// Rows of the tile.
    pub m: usize,
    /// Columns of the tile.
    pub n: usize,
    /// op(A) rows.
    pub a: APanel<'a, P>,
    /// op(B) columns.
    pub b: BPanel<'a, P>,
}

/// How the previous contents enter a tile's result `v = alpha·acc`.
#[derive(Clone, Copy, Debug)]
pub enum Prev<'a> {
    /// `v` as is; the destination is not read.
    None,
    /// `v = beta·dst + v` (one fused multiply-add; f32 destinations only).
    Beta(f32),
    /// `v = dst + alpha·acc` (one fused multiply-add; f32 destinations only).
    Dst,
    /// `v = src + alpha·acc` from an f32 scratch tile with row stride `ld`.
    From {
        /// The partial sums.
        src: &'a [f32],
        /// Their row stride.
        ld: usize,
    },
}

/// Where a tile's results go, with the destination's row stride.
#[derive(Debug)]
pub enum Dst<'a> {
    /// f32 results.
    F32(&'a mut [f32], usize),
    /// Results rounded once to f16 (round to nearest even).
    F16(&'a mut [f16], usize),
    /// Results rounded once to bf16 (round to nearest even, subnormals kept).
    Bf16(&'a mut [bf16], usize),
}

/// A tile's store: `dst = relu?(prev ⊕ alpha·acc + bias)`, in that order,
/// each step rounded in f32, the conversion to the destination type last.
/// ReLU maps `x ≤ 0` (incl. −0) to +0 and keeps NaN.
#[derive(Debug)]
pub struct TileOut<'a> {
    /// Scale of the product.
    pub alpha: f32,
    /// How the previous value enters.
    pub prev: Prev<'a>,
    /// Per-column bias for the tile's `n` columns.
    pub bias: Option<&'a [f32]>,
    /// Whether ReLU follows.
    pub relu: bool,
    /// The destination tile.
    pub dst: Dst<'a>,
}

/// Where a plain f32 tile goes: `(C, ldc, accumulate)` when the tile is an
/// f32 destination written (`Prev::None`) or accumulated into (`Prev::Dst`)
/// with no bias or ReLU, else `None` (the general epilogue).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
pub(crate) fn plain_dst(out: &mut TileOut<'_>) -> Option<(*mut f32, usize, bool)> {
    if out.bias.is_some() || out.relu {
        return None;
    }
    let accumulate = match out.prev {
        Prev::None => false,
        Prev::Dst => true,
        Prev::Beta(_) | Prev::From { .. } => return None,
    };
    match &mut out.dst {
        Dst::F32(c, ld) => Some((c.as_mut_ptr(), *ld, accumulate)),
        _ => None,
    }
}

/// A micro-kernel: computes one tile's product in FP32 and stores it.
pub type UkrFn<P> = fn(&MicroTile<'_, P>, &mut TileOut<'_>);

/// Packs one micro-panel of A: `(src, ld, trans, i0, rows, p0, depth, dst)`
/// writes op(A)[i0 + i][p0 + p] for `i < rows`, `p < depth` at `dst[p·rows + i]`
/// (pair paths: pairs of depth steps, zero-padded at an odd end).
pub type PackAFn<T, P> = fn(&[T], usize, Transpose, usize, usize, usize, usize, &mut [P]);

/// Packs one micro-panel of B: `(src, ld, trans, j0, cols, p0, depth, nr, dst)`
/// writes op(B)[p0 + p][j0 + j] at `dst[p·nr + j]`, zero for `cols ≤ j < nr`.
pub type PackBFn<T, P> = fn(&[T], usize, Transpose, usize, usize, usize, usize, usize, &mut [P]);

/// One input type's implementation on one path, with packed element type `P`.
#[derive(Clone, Copy, Debug)]
pub struct Impl<T: 'static, P: 'static> {
    /// MR, NR and depth packing.
    pub shape: KernelShape,
    /// The micro-kernel.
    pub ukr: Kernel<UkrFn<P>>,
    /// Packs A micro-panels.
    pub pack_a: Kernel<PackAFn<T, P>>,
    /// Packs B micro-panels.
    pub pack_b: Kernel<PackBFn<T, P>>,
    /// Whether the micro-kernel reads f32 operands in place (strided A, rows
    /// of B; P is f32), which enables the small-matrix path without packing:
    /// f32 inputs are read as they are, f16/bf16 inputs widened once.
    pub unpacked: bool,
    /// A kernel for shallow products that keeps a B micro-panel in registers
    /// and sweeps any number of rows of A read in place (see [`Tall`]).
    pub tall: Option<Tall<P>>,
    /// The micro-kernel with a transposed store, for narrow products (n up
    /// to MR): the driver computes Cᵀ = op(B)ᵀ·op(A)ᵀ so that the rows of C
    /// lie along the vector lanes instead of n of them (see [`UkrFn`]'s
    /// transposed contract in `check_tile_transposed`).
    pub narrow: Option<Kernel<UkrFn<P>>>,
    /// The kernel for narrow products with A stored m×k (see [`Dot`]).
    pub dot: Option<Dot<T, P>>,
    /// A shallow-product kernel reading both operands as stored, for paths
    /// whose packed type is not the input type (bf16 pairs; see [`Shallow`]).
    pub shallow: Option<Shallow<T>>,
    /// The kernel for large f32 products with A stored m×k (see [`Wide`]).
    pub wide: Option<Wide<T>>,
}

/// A micro-kernel of few rows and many columns for large products with A
/// stored m×k and f32 output: A's rows are read in place (no A packing) and op(B) is packed
/// into micro-panels `nr` columns wide (`PackBFn` with that `nr`), so a tile
/// loads `nr/16` B vectors and broadcasts `mr` A values per depth step
/// (`MicroTile` with `APanel::Strided` and `BPanel::Packed`, checked by
/// [`check_tile`] with this `mr` and `nr`). Taken for products of at least
/// `min_m` rows, `min_n` columns and depth `min_k` (f16 inputs widened
/// exactly: A once, B while packing). Its sums run over the path's KC
/// blocks, each element's FMAs in the MR×NR kernel's order, so its results
/// are bit-identical to that kernel's (and do not depend on the thread count).
#[derive(Debug)]
pub struct Wide<T: 'static> {
    /// The kernel (`MicroTile::m` ≤ `mr`, `MicroTile::n` ≤ `nr`).
    pub ukr: Kernel<UkrFn<f32>>,
    /// Its B packer (called with `nr`).
    pub pack_b: Kernel<PackBFn<T, f32>>,
    /// Rows of a tile.
    pub mr: usize,
    /// Columns of a tile (of a packed B micro-panel).
    pub nr: usize,
    /// The smallest m it takes.
    pub min_m: usize,
    /// The smallest n it takes.
    pub min_n: usize,
    /// The smallest k it takes.
    pub min_k: usize,
}

// By hand: derived impls would require `T: Copy`.
impl<T> Clone for Wide<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Wide<T> {}

/// A shallow product's operands as stored: rows `0..m` of A (stored m×k,
/// row stride `lda`) against the `n` columns of op(B) — stored k×n (`tb` No:
/// element (p, j) at `[p·ldb + j]`) or n×k (Yes: `[j·ldb + p]`); nothing past
/// column n or depth k is read.
#[derive(Clone, Copy, Debug)]
pub struct ShallowTile<'a, T> {
    /// Depth in elements.
    pub k: usize,
    /// Rows (any number).
    pub m: usize,
    /// Columns (any number).
    pub n: usize,
    /// A's first row.
    pub a: &'a [T],
    /// A's row stride.
    pub lda: usize,
    /// op(B)'s first column.
    pub b: &'a [T],
    /// B's row stride as stored.
    pub ldb: usize,
    /// How B is stored.
    pub tb: Transpose,
}

/// Computes a [`ShallowTile`] and stores it into the C tile `out` describes
/// (`m` rows × `n` columns), with the dot products of the path's MR×NR
/// micro-kernel in the same order, so the same bits.
pub type ShallowFn<T> = fn(&ShallowTile<'_, T>, &mut TileOut<'_>);

/// A kernel for shallow products (k up to `max_k`) with A stored m×k on a
/// path that packs another type than its input (bf16 pairs): it reads A's
/// rows in place (pairs of a row are adjacent), packs op(B) itself into a
/// small block that stays in L1, and writes each row of C whole, so the
/// product pays no packing of A and no tile's loads, call and store setup
/// per MR rows ([`Tall`] for such paths).
#[derive(Debug)]
pub struct Shallow<T: 'static> {
    /// The kernel.
    pub ukr: Kernel<ShallowFn<T>>,
    /// The deepest product it takes, in elements.
    pub max_k: usize,
}

// By hand: derived impls would require `T: Copy`.
impl<T> Clone for Shallow<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Shallow<T> {}

/// Runs rows of a narrow product (n up to 16) with A stored m×k, read in
/// place: `(a, lda, rows, bt, ldbt, k, n, out)` computes `rows` rows of C
/// (`out` starts at the first) from A's rows at `a` (stride `lda`) and op(B)ᵀ
/// packed by the matching [`PackBtFn`] (`n` rows of stride `ldbt`).
pub type DotFn<T, P> = fn(&[T], usize, usize, &[P], usize, usize, usize, &mut TileOut<'_>);

/// Packs op(B)ᵀ (`n × k`) for a [`DotFn`]: `(b, ldb, tb, k, n, dst, ldbt)`
/// writes row j of op(B)ᵀ at `dst[j·ldbt..]` in the kernel's element type
/// (f32, or bf16 pairs along k), zero-padded to `ldbt`.
pub type PackBtFn<T, P> = fn(&[T], usize, Transpose, usize, usize, &mut [P], usize);

/// A kernel for narrow products (n ≤ MR) with A stored m×k: its vector lanes
/// run along k, so A's rows are read in place (f16 widened and bf16 pairs
/// used in registers) instead of being transposed into panels; each row of
/// C is n dot products of A's row with op(B)ᵀ's rows, whose lanes are summed
/// in a fixed tree at the end. The sums are ordered differently from the
/// MR×NR kernel's (within the same bound), and do not depend on threads.
#[derive(Debug)]
pub struct Dot<T: 'static, P: 'static> {
    /// The row kernel.
    pub ukr: Kernel<DotFn<T, P>>,
    /// Its op(B)ᵀ packer.
    pub pack: Kernel<PackBtFn<T, P>>,
    /// The shallowest product (k) it takes: below, a row's few depth vectors
    /// do not pay for its final lane sums, and the MR×NR path is faster
    /// (hgemm 128×16×10: 0.87× of it; 128×64×10: 1.28×).
    pub min_k: usize,
    /// For narrow products with A stored k×m (run transposed, Cᵀ =
    /// op(B)ᵀ·op(A)ᵀ): the transposed kernel reading op(A)ᵀ's rows in place
    /// instead of the packed B panels (see [`RowsFn`]).
    pub rows: Option<Kernel<RowsFn<T, P>>>,
}

/// A tile of Cᵀ for a narrow product with A stored k×m: the packed op(B)ᵀ
/// panel (`m` rows, `k.div_ceil(kpack)` depth steps, the A panel layout of
/// the path) against `k` rows of `n` elements of the stored A, `ldb` apart,
/// read in place.
#[derive(Clone, Copy, Debug)]
pub struct RowsTile<'a, T, P> {
    /// Depth in elements (with pairs: an odd depth's last pair has a zero
    /// high half).
    pub k: usize,
    /// Rows of the tile (columns of C).
    pub m: usize,
    /// Columns of the tile (rows of C).
    pub n: usize,
    /// The packed op(B)ᵀ panel.
    pub a: &'a [P],
    /// The first of the `k` rows read in place.
    pub b: &'a [T],
    /// Their stride.
    pub ldb: usize,
}

/// Computes a [`RowsTile`] and stores it transposed into the C tile `out`
/// describes (as the narrow [`UkrFn`] does), with the same products as the
/// narrow kernel on packed panels, so the same bits.
pub type RowsFn<T, P> = fn(&RowsTile<'_, T, P>, &mut TileOut<'_>);

// By hand: derived impls would require `T: Copy` and `P: Copy`, which
// function pointers do not need.
impl<T, P> Clone for Dot<T, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, P> Copy for Dot<T, P> {}

/// op(B)ᵀ's row stride for a [`DotFn`]: the depth in packed elements,
/// rounded up to 16 lanes.
pub fn dot_ldbt(k: usize, kpack: usize) -> usize {
    k.div_ceil(kpack).div_ceil(16) * 16
}

/// A micro-kernel variant for depths up to `max_k` (e.g. a layer with ten
/// inputs): it takes tiles of any height with A strided, loads the B panel
/// (packed or rows, up to NR columns) into registers once and runs every row
/// against it, so a shallow product does not pay a tile's loads, call and
/// store setup per MR rows. Its FMAs are the MR×NR kernel's, in the same
/// order, so results are bit-identical to it.
#[derive(Clone, Copy, Debug)]
pub struct Tall<P: 'static> {
    /// The kernel (`MicroTile::m` may exceed MR; A is always `Strided`).
    pub ukr: Kernel<UkrFn<P>>,
    /// The deepest product it takes, in depth steps.
    pub max_k: usize,
}

/// A path for input type `T`, by the packed element type its micro-kernel reads.
#[derive(Clone, Copy, Debug)]
pub enum Path<T: 'static> {
    /// Packed as f32 (f16/bf16 converted while packing).
    F32(Impl<T, f32>),
    /// Packed as f16, converted in registers.
    F16(Impl<T, f16>),
    /// Packed as pairs of 16-bit values along k (`vdpbf16ps`).
    Pairs(Impl<T, u32>),
}

impl<T> Path<T> {
    /// Kernel names: the micro-kernel, the packers, the shallow-product
    /// kernel, the narrow-product kernel, the dot kernel and its packer, the
    /// wide kernel and its B packer (the micro-kernel's or B packer's name
    /// where the path has none).
    fn names(&self) -> [&'static str; 9] {
        fn of<T, P>(i: &Impl<T, P>) -> [&'static str; 9] {
            [
                i.ukr.name,
                i.pack_a.name,
                i.pack_b.name,
                i.tall.as_ref().map(|t| t.ukr.name).or(i.shallow.as_ref().map(|s| s.ukr.name)).unwrap_or(i.ukr.name),
                i.narrow.as_ref().map_or(i.ukr.name, |k| k.name),
                i.dot.as_ref().map_or(i.ukr.name, |d| d.ukr.name),
                i.dot.as_ref().map_or(i.pack_b.name, |d| d.pack.name),
                i.wide.as_ref().map_or(i.ukr.name, |w| w.ukr.name),
                i.wide.as_ref().map_or(i.pack_b.name, |w| w.pack_b.name),
            ]
        }
        match self {
            Path::F32(i) => of(i),
            Path::F16(i) => of(i),
            Path::Pairs(i) => of(i),
        }
    }

    /// MR, NR and depth packing of this path's micro-kernel.
    pub fn shape(&self) -> KernelShape {
        match self {
            Path::F32(i) => i.shape,
            Path::F16(i) => i.shape,
            Path::Pairs(i) => i.shape,
        }
    }
}

/// The GEMM registry of one ISA path (BLIS's context): per input type a
/// micro-kernel, its packing routines and its register-block shape.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    /// f32 inputs.
    pub sgemm: Path<f32>,
    /// f16 inputs, FP32 accumulation.
    pub hgemm: Path<f16>,
    /// bf16 inputs, FP32 accumulation.
    pub bgemm: Path<bf16>,
}

impl Table {
    /// `(kernel, implementation)` for every entry.
    pub fn entries(&self) -> Vec<(&'static str, &'static str)> {
        let [s0, s1, s2, s3, s4, s5, s6, s7, s8] = self.sgemm.names();
        let [h0, h1, h2, h3, h4, h5, h6, h7, h8] = self.hgemm.names();
        let [b0, b1, b2, b3, b4, b5, b6, b7, b8] = self.bgemm.names();
        vec![
            ("sgemm_ukr", s0),
            ("sgemm_pack_a", s1),
            ("sgemm_pack_b", s2),
            ("sgemm_ukr_shallow", s3),
            ("sgemm_ukr_narrow", s4),
            ("sgemm_ukr_dot", s5),
            ("sgemm_pack_bt", s6),
            ("sgemm_ukr_wide", s7),
            ("sgemm_pack_b_wide", s8),
            ("hgemm_ukr", h0),
            ("hgemm_pack_a", h1),
            ("hgemm_pack_b", h2),
            ("hgemm_ukr_shallow", h3),
            ("hgemm_ukr_narrow", h4),
            ("hgemm_ukr_dot", h5),
            ("hgemm_pack_bt", h6),
            ("hgemm_ukr_wide", h7),
            ("hgemm_pack_b_wide", h8),
            ("bgemm_ukr", b0),
            ("bgemm_pack_a", b1),
            ("bgemm_pack_b", b2),
            ("bgemm_ukr_shallow", b3),
            ("bgemm_ukr_narrow", b4),
            ("bgemm_ukr_dot", b5),
            ("bgemm_pack_bt", b6),
            ("bgemm_ukr_wide", b7),
            ("bgemm_pack_b_wide", b8),
        ]
    }
}

/// An input type with a path in every [`Table`].
pub trait Element: GemmInput {
    /// This type's path in `table`.
    fn path(table: &Table) -> &Path<Self>;
}

impl Element for f32 {
    fn path(table: &Table) -> &Path<f32> {
        &table.sgemm
    }
}

impl Element for f16 {
    fn path(table: &Table) -> &Path<f16> {
        &table.hgemm
    }
}

impl Element for bf16 {
    fn path(table: &Table) -> &Path<bf16> {
        &table.bgemm
    }
}

// ---------------------------------------------------------------- public API

/// Elements a slice must hold for a `rows × cols` matrix with row stride `ld`.
#[inline]
pub fn required_len(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 { 0 } else { (rows - 1) * ld + cols }
}

/// Checks the BLAS preconditions shared by every GEMM.
///
/// # Panics
/// If a leading dimension is smaller than its row or a slice is too short.
#[allow(clippy::too_many_arguments)]
pub fn check_args(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    a_len: usize,
    lda: usize,
    b_len: usize,
    ldb: usize,
    c_len: usize,
    ldc: usize,
) {
    let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
    assert!(lda >= ac, "gemm: lda = {lda} is smaller than the {ac} columns of A as stored");
    assert!(ldb >= bc, "gemm: ldb = {ldb} is smaller than the {bc} columns of B as stored");
    assert!(ldc >= n, "gemm: ldc = {ldc} is smaller than n = {n}");
    let need = required_len(ar, ac, lda);
    assert!(a_len >= need, "gemm: A holds {a_len} elements, {ar}×{ac} with lda {lda} needs {need}");
    let need = required_len(br, bc, ldb);
    assert!(b_len >= need, "gemm: B holds {b_len} elements, {br}×{bc} with ldb {ldb} needs {need}");
    let need = required_len(m, n, ldc);
    assert!(c_len >= need, "gemm: C holds {c_len} elements, {m}×{n} with ldc {ldc} needs {need}");
}

/// The destination of [`gemm_ex`]: f32, or f16/bf16 rounded once from the
/// FP32 result.
#[derive(Debug)]
pub enum Output<'a> {
    /// f32 C (may be read when `beta != 0`).
    F32(&'a mut [f32]),
    /// f16 C, written only (`beta` must be 0).
    F16(&'a mut [f16]),
    /// bf16 C, written only (`beta` must be 0).
    Bf16(&'a mut [bf16]),
}

impl Output<'_> {
    fn len(&self) -> usize {
        match self {
            Output::F32(c) => c.len(),
            Output::F16(c) => c.len(),
            Output::Bf16(c) => c.len(),
        }
    }
}

/// What [`gemm_ex`] applies to each element after `alpha·op(A)·op(B) + beta·C`,
/// fused into the micro-kernel's store: `+ bias[j]`, then ReLU.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// One value per column of C (`len ≥ n`): a linear layer's bias.
    pub bias: Option<&'a [f32]>,
    /// ReLU after the bias: `x ≤ 0` (incl. −0) becomes +0, NaN stays NaN.
    pub relu: bool,
}

/// `C = relu?(alpha·op(A)·op(B) + beta·C + bias)` for any input type, with an
/// f32, f16 or bf16 destination; one call is a linear layer's forward.
///
/// Each step is rounded in f32 exactly as the unfused sequence (GEMM into f32,
/// add the bias, ReLU, convert) would round it, so the results are
/// bit-identical to that composition on the same path; the conversion to
/// f16/bf16 is the only rounding beyond f32's.
///
/// # Panics
/// As [`sgemm`]; also if `beta != 0` with an f16/bf16 destination, or the
/// bias holds fewer than `n` values.
#[allow(clippy::too_many_arguments)]
pub fn gemm_ex<T: Element>(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    beta: f32,
    c: Output<'_>,
    ldc: usize,
    epilogue: Epilogue<'_>,
) {
    gemm_on(T::path(&active().gemm), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue)
}

/// [`gemm_ex`] on a given path (tests reach every path's table directly).
///
/// # Panics
/// As [`gemm_ex`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_on<T: Element>(
    path: &Path<T>,
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    beta: f32,
    c: Output<'_>,
    ldc: usize,
    epilogue: Epilogue<'_>,
) {
    check_args(ta, tb, m, n, k, a.len(), lda, b.len(), ldb, c.len(), ldc);
    assert!(
        beta == 0.0 || matches!(c, Output::F32(_)),
        "gemm: beta = {beta} needs an f32 C (f16/bf16 destinations are written only)"
    );
    if let Some(bias) = epilogue.bias {
        assert!(bias.len() >= n, "gemm: the bias holds {} values, n = {n}", bias.len());
    }
    let args = driver::Args { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, ldc, epilogue };
    match path {
        Path::F32(imp) => driver::gemm(imp, &args, c),
        Path::F16(imp) => driver::gemm(imp, &args, c),
        Path::Pairs(imp) => driver::gemm(imp, &args, c),
    }
}

/// `C = alpha·op(A)·op(B) + beta·C` for f32 A and B (see the module docs).
///
/// Runs on the current rayon pool (call inside `pool.install` to choose the
/// threads); results are bit-identical for any thread count.
///
/// # Panics
/// If a leading dimension is smaller than its row, or a slice holds fewer
/// than `(rows−1)·ld + cols` elements.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_ex(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, Output::F32(c), ldc, Epilogue::default())
}

/// `C = alpha·op(A)·op(B) + beta·C` for f16 A and B, accumulated in FP32.
///
/// Runs on the current rayon pool; results are bit-identical for any thread count.
///
/// # Panics
/// As [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub fn hgemm(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f16],
    lda: usize,
    b: &[f16],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_ex(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, Output::F32(c), ldc, Epilogue::default())
}

/// `C = alpha·op(A)·op(B) + beta·C` for bf16 A and B, accumulated in FP32.
///
/// Runs on the current rayon pool; results are bit-identical for any thread
/// count. On the `avx512` path with AVX-512-BF16 the products use
/// `vdpbf16ps`, which treats subnormal bf16 inputs (< 1.2e-38) as zero.
///
/// # Panics
/// As [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub fn bgemm(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[bf16],
    lda: usize,
    b: &[bf16],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_ex(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, Output::F32(c), ldc, Epilogue::default())
}

/// op(B) of a product (`k × n`) packed once on one path, for many products
/// that share it with different A: an RNN's recurrent weight, used at every
/// time step. Packing dominates such products when m is small (one B block
/// packed for a few rows of A); [`gemm_packed_b`] reuses this instead.
#[derive(Clone, Debug)]
pub struct PackedB<T: 'static> {
    /// Boxed: a path is a few hundred bytes of function pointers, and a
    /// `PackedB` sits inside callers' enums beside much smaller variants.
    path: Box<Path<T>>,
    k: usize,
    n: usize,
    data: PackedData,
}

/// The packed elements, by the path's packed element type.
#[derive(Clone, Debug)]
enum PackedData {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Pairs(Vec<u32>),
}

impl<T: Element> PackedB<T> {
    /// Packs op(B) (`k × n`; stored `k × n` with `ldb ≥ n`, or with
    /// [`Transpose::Yes`] `n × k` with `ldb ≥ k`) for the active path.
    ///
    /// # Panics
    /// If `ldb` is smaller than a stored row or `b` is too short.
    pub fn new(tb: Transpose, k: usize, n: usize, b: &[T], ldb: usize) -> PackedB<T> {
        PackedB::on(T::path(&active().gemm), tb, k, n, b, ldb)
    }

    /// [`PackedB::new`] for a given path (tests reach every path's table).
    ///
    /// # Panics
    /// As [`PackedB::new`].
    pub fn on(path: &Path<T>, tb: Transpose, k: usize, n: usize, b: &[T], ldb: usize) -> PackedB<T> {
        let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
        assert!(ldb >= bc, "gemm: ldb = {ldb} is smaller than the {bc} columns of B as stored");
        let need = required_len(br, bc, ldb);
        assert!(b.len() >= need, "gemm: B holds {} elements, {br}×{bc} with ldb {ldb} needs {need}", b.len());
        let data = match path {
            Path::F32(imp) => PackedData::F32(driver::pack_b_whole(imp, tb, k, n, b, ldb)),
            Path::F16(imp) => PackedData::F16(driver::pack_b_whole(imp, tb, k, n, b, ldb)),
            Path::Pairs(imp) => PackedData::Pairs(driver::pack_b_whole(imp, tb, k, n, b, ldb)),
        };
        PackedB { path: Box::new(*path), k, n, data }
    }

    /// The depth `k` of op(B).
    pub fn k(&self) -> usize {
        self.k
    }

    /// The columns `n` of op(B).
    pub fn n(&self) -> usize {
        self.n
    }
}

/// [`gemm_ex`] with op(B) from a [`PackedB`] (`k` and `n` are its own), on
/// the path it was packed for: `C = relu?(alpha·op(A)·op(B) + beta·C + bias)`.
/// The results are bit-identical to [`gemm_ex`] on that path with B as it
/// was packed, for any thread count.
///
/// # Panics
/// As [`gemm_ex`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed_b<T: Element>(
    ta: Transpose,
    m: usize,
    alpha: f32,
    a: &[T],
    lda: usize,
    b: &PackedB<T>,
    beta: f32,
    c: Output<'_>,
    ldc: usize,
    epilogue: Epilogue<'_>,
) {
    let (n, k) = (b.n, b.k);
    // B's checks were made when it was packed: pass an empty, unread B of n columns.
    let (tb, ldb) = (Transpose::No, n);
    check_args(ta, tb, m, n, k, a.len(), lda, required_len(k, n, ldb), ldb, c.len(), ldc);
    assert!(
        beta == 0.0 || matches!(c, Output::F32(_)),
        "gemm: beta = {beta} needs an f32 C (f16/bf16 destinations are written only)"
    );
    if let Some(bias) = epilogue.bias {
        assert!(bias.len() >= n, "gemm: the bias holds {} values, n = {n}", bias.len());
    }
    let args = driver::Args { ta, tb, m, n, k, alpha, a, lda, b: &[], ldb, beta, ldc, epilogue };
    match (&*b.path, &b.data) {
        (Path::F32(imp), PackedData::F32(p)) => driver::gemm_packed_b(imp, &args, p, c),
        (Path::F16(imp), PackedData::F16(p)) => driver::gemm_packed_b(imp, &args, p, c),
        (Path::Pairs(imp), PackedData::Pairs(p)) => driver::gemm_packed_b(imp, &args, p, c),
        _ => unreachable!("a PackedB's data matches its path"),
    }
}

/// hgemm paths this CPU can run that no table installs, by name, so tests
/// and benchmarks can reach them beside the installed one: on AVX-512-FP16
/// the f16-panel kernel that widens in registers (`vcvtph2psx`), measured
/// slower than converting while packing; on AVX-512 the path without the
/// dot kernel (narrow products with A stored m×k on the 14×32 kernel,
/// slower: docs/kernels.md).
pub fn hgemm_alternatives() -> Vec<(&'static str, Path<f16>)> {
    #[allow(unused_mut)]
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if crate::dispatch::Isa::Avx512Fp16.is_available() {
            out.push(("avx512fp16_f16_panels", crate::x86::avx512fp16::gemm::hgemm_f16_panels()));
        }
        if crate::dispatch::Isa::Avx512.is_available() {
            out.push(("avx512_no_dot", crate::x86::avx512::gemm::hgemm_no_dot()));
        }
    }
    out
}

/// Checks that a micro-tile's operands and store hold everything a
/// micro-kernel with an `mr × nr` register block reads or writes (packed B
/// rows are read whole, `nr` wide). SIMD micro-kernels call this before
/// touching memory.
///
/// # Panics
/// If the tile is empty or exceeds `mr × nr`, a slice is too short, or an f32
/// destination is required (`Prev::Beta`, `Prev::Dst`) and absent.
pub fn check_tile<P>(t: &MicroTile<'_, P>, out: &TileOut<'_>, mr: usize, nr: usize) {
    check_tile_as(t, out, mr, nr, false);
}

/// [`check_tile`] for a narrow kernel's transposed store: the tile is a tile
/// of Cᵀ (`t.m` rows of Cᵀ are columns of C, `t.n` columns of Cᵀ are rows of
/// C), and `out` describes the C tile it lands in, `t.n` rows × `t.m`
/// columns (bias: one value per column of C, i.e. per row of the tile).
///
/// # Panics
/// As [`check_tile`], with the destination, scratch and bias bounds transposed.
pub fn check_tile_transposed<P>(t: &MicroTile<'_, P>, out: &TileOut<'_>, mr: usize, nr: usize) {
    check_tile_as(t, out, mr, nr, true);
}

/// The checks of [`check_tile`] (`transposed` false: the C tile is `t.m` rows
/// × `t.n` columns) and [`check_tile_transposed`] (true: `t.n` rows × `t.m`
/// columns, with a leading dimension of at least a row).
fn check_tile_as<P>(t: &MicroTile<'_, P>, out: &TileOut<'_>, mr: usize, nr: usize, transposed: bool) {
    let (m, n, k) = (t.m, t.n, t.k);
    assert!((1..=mr).contains(&m) && (1..=nr).contains(&n), "micro-tile {m}×{n} outside 1..={mr} × 1..={nr}");
    if k > 0 {
        match t.a {
            APanel::Packed(d) => assert!(d.len() >= k * m, "packed A panel too short"),
            APanel::Strided { data, rs, cs } => assert!(data.len() > (m - 1) * rs + (k - 1) * cs, "A too short"),
        }
        match t.b {
            BPanel::Packed(d) => assert!(d.len() >= k * nr, "packed B panel too short"),
            BPanel::Rows { data, ld } => assert!(data.len() >= (k - 1) * ld + n, "B too short"),
            BPanel::Cols { data, ld } => assert!(data.len() >= (n - 1) * ld + k, "B too short"),
        }
    }
    let (rows, cols) = if transposed { (n, m) } else { (m, n) };
    // A row of a transposed tile is stored whole at each leading-dimension step.
    let fits = |len: usize, ld: usize| (!transposed || ld >= cols) && len >= (rows - 1) * ld + cols;
    let (len, ld, f32_dst) = match &out.dst {
        Dst::F32(c, ld) => (c.len(), *ld, true),
        Dst::F16(c, ld) => (c.len(), *ld, false),
        Dst::Bf16(c, ld) => (c.len(), *ld, false),
    };
    assert!(fits(len, ld), "C tile too short");
    assert!(f32_dst || !matches!(out.prev, Prev::Beta(_) | Prev::Dst), "accumulating into an f16/bf16 C tile");
    if let Prev::From { src, ld } = out.prev {
        assert!(fits(src.len(), ld), "scratch tile too short");
    }
    if let Some(bias) = out.bias {
        assert!(bias.len() >= cols, "bias shorter than the tile");
    }
}

/// Register-resident peak loops, so efficiency can be quoted against a peak
/// measured in the same run.
pub mod peak {
    use std::time::Instant;

    /// The instruction a peak loop times.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Loop {
        /// f32 FMA on ymm registers (AVX2 + FMA).
        FmaYmm,
        /// f32 FMA on zmm registers (AVX-512).
        FmaZmm,
        /// bf16 pair dot products `vdpbf16ps` on zmm (AVX-512-BF16).
        DpBf16,
    }

    /// Runs `iters` rounds of one loop: `(flops, seconds)`, or `None` when the
    /// CPU lacks it.
    pub fn run(which: Loop, iters: u64) -> Option<(f64, f64)> {
        let t = Instant::now();
        #[cfg(target_arch = "x86_64")]
        let r = match which {
            Loop::FmaYmm => crate::x86::avx2::gemm::fma_peak(iters),
            Loop::FmaZmm => crate::x86::avx512::gemm::fma_peak(iters),
            Loop::DpBf16 => crate::x86::avx512::gemm::dpbf16_peak(iters),
        };
        #[cfg(not(target_arch = "x86_64"))]
        let r: Option<(f64, f32)> = {
            let _ = (which, iters);
            None
        };
        let secs = t.elapsed().as_secs_f64();
        r.map(|(flops, sink)| {
            std::hint::black_box(sink);
            (flops, secs)
        })
    }

    /// Best GFLOP/s of `reps` timed runs of about 0.1 s each.
    pub fn gflops(which: Loop, reps: usize) -> Option<f64> {
        run(which, 1000)?;
        (0..reps).map(|_| run(which, 2_000_000).map(|(f, s)| f / s / 1e9)).try_fold(0.0f64, |m, x| Some(m.max(x?)))
    }
}
