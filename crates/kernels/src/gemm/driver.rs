//! The five loops around the micro-kernel, packing, threads and buffers.
//!
//! ```text
//! IC  rows of C in blocks of MC     A block MC×KC packed once, shared (L3)
//!  PC  depth in blocks of KC
//!   JC  columns in blocks of NC     B block KC×NC packed, shared (L2)
//!    IR  rows in micro-panels       one A micro-panel MR×KC stays in L1 ...
//!     JR  columns in micro-panels   ... while it sweeps the B block
//! ```
//! Threads split the IR loop (rows of C, so each thread owns whole rows and
//! the split needs no `unsafe`) and pack the A and B blocks together, through
//! rayon's fork-join: a waiting thread sleeps or steals work, never spins on a
//! flag. K is never split, so every element is the same sequence of FMAs,
//! blocks of KC deep, whatever the thread count: results are bit-identical.
//!
//! Large products with A stored m×k and f32 output take the path's wide
//! kernel instead (`gemm_wide`: A's rows read in place, f16 A widened once,
//! B packed in wide panels), on the same depth blocks and FMAs per element,
//! so with the same bits.
//!
//! Packing buffers live in the calling thread's thread-local storage and only
//! grow, so a steady sequence of calls allocates nothing. Where packing does
//! not pay (few rows to reuse a B block, or few columns to reuse an A panel)
//! and the micro-kernel can read the input type directly, it reads A through
//! strides and B by rows instead.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use half::{bf16, f16};
use rayon::prelude::*;

use super::{
    APanel, BPanel, Blocking, Dst, Element, Epilogue, Impl, MicroTile, Output, Prev, Tall, TileOut, Transpose,
    detected_caches,
};

/// Below this many multiply-adds (m·n·k) a product runs on the calling thread.
const PARALLEL_MIN_MNK: usize = 1 << 21;

pub(crate) struct Args<'a, T> {
    pub ta: Transpose,
    pub tb: Transpose,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub a: &'a [T],
    pub lda: usize,
    pub b: &'a [T],
    pub ldb: usize,
    pub beta: f32,
    pub ldc: usize,
    pub epilogue: Epilogue<'a>,
}

/// What the calling thread's last GEMM did (for tests and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Compute tasks (groups of micro-panels) the rows were split into.
    pub tasks: usize,
    /// Distinct threads that ran compute tasks.
    pub threads: usize,
    /// Whether A was packed.
    pub packed_a: bool,
    /// Whether B was packed.
    pub packed_b: bool,
    /// The block sizes used.
    pub blocking: Option<Blocking>,
    /// Whether the product ran as Cᵀ = op(B)ᵀ·op(A)ᵀ on the path's narrow
    /// kernel (n up to MR; the blocking is then that of the swapped product).
    pub transposed: bool,
    /// Whether the product ran on the path's dot kernel (n up to MR, A
    /// stored m×k and read in place, lanes along k; no blocking).
    pub dot: bool,
}

thread_local! {
    static LAST: Cell<CallStats> = const {
        Cell::new(CallStats { tasks: 0, threads: 0, packed_a: false, packed_b: false, blocking: None, transposed: false, dot: false })
    };
    static SCRATCH: RefCell<Buf<f32>> = const { RefCell::new(Buf::new()) };
    /// f16/bf16 operands widened to f32 for the unpacked path.
    static WIDE: RefCell<(Buf<f32>, Buf<f32>)> = const { RefCell::new((Buf::new(), Buf::new())) };
}

/// What the calling thread's last GEMM call did.
pub fn last_call_stats() -> CallStats {
    LAST.with(Cell::get)
}

/// A growable buffer that hands out 64-byte-aligned slices.
pub(crate) struct Buf<P> {
    v: Vec<P>,
}

impl<P: Copy + Default> Buf<P> {
    pub(crate) const fn new() -> Self {
        Buf { v: Vec::new() }
    }

    fn get(&mut self, len: usize) -> &mut [P] {
        let pad = 64 / std::mem::size_of::<P>();
        if self.v.len() < len + pad {
            self.v = vec![P::default(); (len + pad).next_power_of_two()];
        }
        let off = self.v.as_ptr().align_offset(64).min(pad);
        &mut self.v[off..off + len]
    }
}

/// A packed element type: its thread-local packing buffers.
pub(crate) trait Packed: Copy + Default + Send + Sync + 'static {
    /// Runs `f` with this thread's A and B buffers (fresh ones if a nested
    /// call on this thread already holds them).
    fn with_bufs<R>(f: impl FnOnce(&mut Buf<Self>, &mut Buf<Self>) -> R) -> R;
    /// `s` as a slice of `Self` when `Self` is f32.
    fn from_f32(s: &[f32]) -> Option<&[Self]>;
}

macro_rules! packed_impl {
    ($t:ty, $s:ident => $from:expr) => {
        impl Packed for $t {
            fn with_bufs<R>(f: impl FnOnce(&mut Buf<Self>, &mut Buf<Self>) -> R) -> R {
                thread_local! {
                    static BUFS: RefCell<(Buf<$t>, Buf<$t>)> = const { RefCell::new((Buf::new(), Buf::new())) };
                }
                BUFS.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut g) => {
                        let (a, b) = &mut *g;
                        f(a, b)
                    }
                    Err(_) => f(&mut Buf::new(), &mut Buf::new()),
                })
            }
            fn from_f32($s: &[f32]) -> Option<&[Self]> {
                $from
            }
        }
    };
}
packed_impl!(f32, s => Some(s));
packed_impl!(f16, _s => None);
packed_impl!(u32, _s => None);

/// Rows of the destination (and of the f32 scratch), split between threads.
enum Rows<'a> {
    F32(&'a mut [f32]),
    F16(&'a mut [f16]),
    Bf16(&'a mut [bf16]),
}

impl<'a> Rows<'a> {
    fn split(self, at: usize) -> (Rows<'a>, Rows<'a>) {
        match self {
            Rows::F32(c) => {
                let (x, y) = c.split_at_mut(at.min(c.len()));
                (Rows::F32(x), Rows::F32(y))
            }
            Rows::F16(c) => {
                let (x, y) = c.split_at_mut(at.min(c.len()));
                (Rows::F16(x), Rows::F16(y))
            }
            Rows::Bf16(c) => {
                let (x, y) = c.split_at_mut(at.min(c.len()));
                (Rows::Bf16(x), Rows::Bf16(y))
            }
        }
    }

    fn reborrow(&mut self) -> Rows<'_> {
        match self {
            Rows::F32(c) => Rows::F32(c),
            Rows::F16(c) => Rows::F16(c),
            Rows::Bf16(c) => Rows::Bf16(c),
        }
    }

    fn tile(&mut self, off: usize, ld: usize) -> Dst<'_> {
        match self {
            Rows::F32(c) => Dst::F32(&mut c[off..], ld),
            Rows::F16(c) => Dst::F16(&mut c[off..], ld),
            Rows::Bf16(c) => Dst::Bf16(&mut c[off..], ld),
        }
    }
}

/// Micro-panel `q` of a block of `rows` rows: its first row and height.
/// Heights differ by at most one, so no panel is a thin, slow edge.
#[inline]
fn panel(q: usize, np: usize, rows: usize) -> (usize, usize) {
    let (base, extra) = (rows / np, rows % np);
    (q * base + q.min(extra), base + usize::from(q < extra))
}

/// `src[..len]` as f32: itself for f32, else widened into `buf`.
fn in_place<'b, T: Element>(src: &'b [T], len: usize, buf: &'b mut Buf<f32>) -> &'b [f32] {
    match T::as_f32(src) {
        Some(s) => &s[..len],
        None => {
            let dst = buf.get(len);
            T::widen(&src[..len], dst);
            dst
        }
    }
}

pub(crate) fn gemm<T: Element, P: Packed>(imp: &Impl<T, P>, x: &Args<'_, T>, c: Output<'_>) {
    gemm_with(imp, x, None, c)
}

/// [`gemm`] with op(B) already packed whole by [`pack_b_whole`] (`x.b` is
/// not read): every (PC, JC) block is a window into it, so the products are
/// the same FMAs, bit for bit, as when B is packed block by block.
pub(crate) fn gemm_packed_b<T: Element, P: Packed>(imp: &Impl<T, P>, x: &Args<'_, T>, b: &[P], c: Output<'_>) {
    gemm_with(imp, x, Some(b), c)
}

/// op(B) (`k × n`) packed whole: micro-panel `jb` of NR columns holds all
/// `⌈k/kpack⌉` depth steps at `[jb·NR·⌈k/kpack⌉ ..]`, in the layout of the
/// path's B packing, so depth steps `pc..` of a panel start at `pc/kpack·NR`.
pub(crate) fn pack_b_whole<T: Element, P: Packed>(
    imp: &Impl<T, P>,
    tb: Transpose,
    k: usize,
    n: usize,
    b: &[T],
    ldb: usize,
) -> Vec<P> {
    let (nr, ks) = (imp.shape.nr, k.div_ceil(imp.shape.kpack));
    let mut out = vec![P::default(); n.div_ceil(nr) * nr * ks];
    if ks > 0 {
        out.chunks_mut(nr * ks).enumerate().for_each(|(jb, dst)| {
            let j0 = jb * nr;
            (imp.pack_b.f)(b, ldb, tb, j0, nr.min(n - j0), 0, k, nr, dst);
        });
    }
    out
}

fn gemm_with<T: Element, P: Packed>(imp: &Impl<T, P>, x: &Args<'_, T>, pre_b: Option<&[P]>, c: Output<'_>) {
    if x.m == 0 || x.n == 0 {
        return;
    }
    if x.alpha == 0.0 || x.k == 0 {
        return scale_only(x, c);
    }
    if let Some(dot) =
        imp.dot.filter(|d| pre_b.is_none() && x.ta == Transpose::No && x.k >= d.min_k && narrow_shape(imp, x))
    {
        return gemm_dot(imp, &dot, x, c);
    }
    if let Some(ukr) = imp.narrow.filter(|_| pre_b.is_none() && narrow(imp, x)) {
        return gemm_narrow(imp, ukr.f, x, c);
    }
    if let Some(sh) = imp.shallow.filter(|s| pre_b.is_none() && x.ta == Transpose::No && x.k <= s.max_k) {
        return gemm_shallow(&sh, x, c);
    }
    let c = match (imp.wide, c) {
        (Some(w), Output::F32(c)) if pre_b.is_none() && wide_shape(&w, x) && product_threads(x) <= WIDE_MAX_THREADS => {
            // f16 A is widened once (exactly) and its rows read in place.
            return WIDE.with(|cell| {
                let mut guard = cell.try_borrow_mut().ok();
                let mut own = Buf::new();
                let wa = match guard.as_deref_mut() {
                    Some((a, _)) => a,
                    None => &mut own,
                };
                let a = in_place(x.a, super::required_len(x.m, x.k, x.lda), wa);
                gemm_wide(imp, &w, x, a, c)
            });
        }
        (_, c) => c,
    };
    WIDE.with(|cell| {
        let mut guard = cell.try_borrow_mut().ok();
        let mut own = (Buf::new(), Buf::new());
        let (wa, wb) = match guard.as_deref_mut() {
            Some((a, b)) => (a, b),
            None => (&mut own.0, &mut own.1),
        };
        gemm_blocks(imp, x, pre_b, c, wa, wb)
    })
}

fn gemm_blocks<T: Element, P: Packed>(
    imp: &Impl<T, P>,
    x: &Args<'_, T>,
    pre_b: Option<&[P]>,
    c: Output<'_>,
    wide_a: &mut Buf<f32>,
    wide_b: &mut Buf<f32>,
) {
    let (m, n, k) = (x.m, x.n, x.k);
    let bl = Blocking::new(imp.shape, detected_caches()).for_product(m, n, k);
    let kp = imp.shape.kpack;
    let threads = if m * n * k < PARALLEL_MIN_MNK { 1 } else { rayon::current_num_threads().max(1) };
    // An A micro-panel is reused once per B micro-panel, a B block once per A
    // micro-panel: with fewer than three reuses, reading in place is cheaper.
    // f16/bf16 inputs are then widened once (a contiguous conversion, far
    // cheaper than packing's transposed writes) and read in place as f32.
    let (ar, ac) = if x.ta == Transpose::No { (m, k) } else { (k, m) };
    let (br, bc) = if x.tb == Transpose::No { (k, n) } else { (n, k) };
    // A shallow product (k up to about ten) runs on the path's shallow kernel
    // when it has one: A read in place (f16/bf16 widened unless that would
    // widen much more than the m×k elements it uses), B held in registers.
    let a_len = super::required_len(ar, ac, x.lda);
    let tall = imp.tall.filter(|t| k <= t.max_k && (T::as_f32(x.a).is_some() || a_len <= 4 * m * k));
    let a_f32 = (imp.unpacked && (n <= 2 * bl.nr || tall.is_some())).then(|| in_place(x.a, a_len, wide_a));
    // The shallow kernel also reads op(B) stored n×k in place, by columns
    // (transposed in registers), so it packs neither operand.
    let b_f32 = (pre_b.is_none() && imp.unpacked && ((x.tb == Transpose::No && m <= 2 * bl.mr) || tall.is_some()))
        .then(|| in_place(x.b, super::required_len(br, bc, x.ldb), wide_b));
    let a_direct = a_f32.and_then(P::from_f32);
    let tall = tall.filter(|_| a_direct.is_some());
    let b_direct = b_f32.and_then(P::from_f32);
    let pack_a = a_direct.is_none();
    let pack_b = b_direct.is_none() && pre_b.is_none();
    let ks_whole = k.div_ceil(kp);
    let low_precision_out = !matches!(c, Output::F32(_));
    let stats = AtomicUsize::new(0);
    let seen = AtomicU64::new(0);

    let mut rows = match c {
        Output::F32(c) => Rows::F32(c),
        Output::F16(c) => Rows::F16(c),
        Output::Bf16(c) => Rows::Bf16(c),
    };
    P::with_bufs(|abuf, bbuf| {
        SCRATCH.with(|scratch_cell| {
            let mut scratch_guard = scratch_cell.try_borrow_mut().ok();
            let mut own = Buf::new();
            let scratch_buf: &mut Buf<f32> = match scratch_guard.as_deref_mut() {
                Some(s) => s,
                None => &mut own,
            };
            let need_scratch = low_precision_out && k > bl.kc;
            let mut ic = 0;
            while ic < m {
                let mcb = bl.mc.min(m - ic);
                let np = mcb.div_ceil(bl.mr);
                let (mut block, after) = rows.split(if ic + mcb < m { mcb * x.ldc } else { usize::MAX });
                let mut scratch = if need_scratch { Some(scratch_buf.get(mcb * n)) } else { None };
                let mut pc = 0;
                while pc < k {
                    let kcb = bl.kc.min(k - pc);
                    let ks = kcb.div_ceil(kp);
                    let first = pc == 0;
                    let last = pc + kcb == k;
                    let apacked: Option<&[P]> = if pack_a {
                        let buf = abuf.get(mcb * ks);
                        pack_a_block(imp, x, threads, buf, ic, mcb, np, pc, kcb, ks);
                        Some(&*buf)
                    } else {
                        None
                    };
                    let mut jc = 0;
                    while jc < n {
                        let ncb = bl.nc.min(n - jc);
                        let nb = ncb.div_ceil(bl.nr);
                        // (packed B, offset of the block's first panel, stride between panels)
                        let (bpacked, b_off, b_stride): (Option<&[P]>, usize, usize) = if let Some(pre) = pre_b {
                            // jc is a multiple of NC (a multiple of NR), pc of KC (a multiple of 16).
                            (Some(pre), jc * ks_whole + pc / kp * bl.nr, bl.nr * ks_whole)
                        } else if pack_b {
                            let buf = bbuf.get(nb * bl.nr * ks);
                            pack_b_block(imp, x, threads, buf, &bl, jc, ncb, pc, kcb, ks);
                            (Some(&*buf), 0, bl.nr * ks)
                        } else {
                            (None, 0, 0)
                        };
                        let step = Step {
                            x,
                            bl: &bl,
                            imp,
                            ic,
                            mcb,
                            np,
                            pc,
                            ks,
                            jc,
                            ncb,
                            nb,
                            first,
                            last,
                            apacked,
                            bpacked,
                            b_off,
                            b_stride,
                            a_direct,
                            b_direct,
                            tall: tall.as_ref(),
                            stats: &stats,
                            seen: &seen,
                        };
                        let grain = np.div_ceil(4 * threads).max(1);
                        let scr = scratch.as_deref_mut();
                        compute(&step, 0, np, grain, threads > 1, &mut block, scr);
                        jc += ncb;
                    }
                    pc += kcb;
                }
                rows = after;
                ic += mcb;
            }
        })
    });
    LAST.with(|l| {
        l.set(CallStats {
            tasks: stats.load(Ordering::Relaxed),
            threads: seen.load(Ordering::Relaxed).count_ones() as usize,
            packed_a: pack_a,
            packed_b: pack_b || pre_b.is_some(),
            blocking: Some(bl),
            transposed: false,
            dot: false,
        })
    });
}

/// Whether a product runs transposed on the narrow kernel: n fits one
/// micro-panel of rows (so the swapped product is a single row of tiles
/// whose lanes are all rows of C) and m is wide enough to fill the lanes.
/// On f32 panels only when A is stored k×m, so op(A)ᵀ packs row by row: with
/// A stored m×k the transposing pack costs more than the idle lanes of the
/// untransposed kernel (hgemm 128×512×10 NN: 53.9 GFLOP/s transposed against
/// 58.5 untransposed; 512×128×10 TN: 74.8 against 57.5). The bf16 pair
/// kernel gains either way (see docs/kernels.md). A function of the shape
/// and layout only, so the choice, and the bits, do not depend on the
/// thread count.
fn narrow<T, P>(imp: &Impl<T, P>, x: &Args<'_, T>) -> bool {
    narrow_shape(imp, x) && (imp.shape.kpack == 2 || x.ta == Transpose::Yes)
}

/// n fits one micro-panel of rows, m fills two of columns.
fn narrow_shape<T, P>(imp: &Impl<T, P>, x: &Args<'_, T>) -> bool {
    x.n <= imp.shape.mr && x.m >= 2 * imp.shape.nr
}

/// The most threads a product runs on the wide kernel with. One and two
/// threads gain from it here (Zen 4: 2048³ 1.99× one thread on two), but on
/// the 16-core Xeon at 2048³ it ran at 557 GFLOP/s against the MR×NR
/// kernel's 1008.6 (faer 1068.8 and 1219.7 in those runs; docs/kernels.md),
/// so more threads keep the MR×NR kernel. Both give the same bits, so the
/// choice does not change results.
const WIDE_MAX_THREADS: usize = 2;

/// The threads a product of this size runs on (one below `PARALLEL_MIN_MNK`).
fn product_threads<T>(x: &Args<'_, T>) -> usize {
    if x.m * x.n * x.k < PARALLEL_MIN_MNK { 1 } else { rayon::current_num_threads().max(1) }
}

/// Whether a product runs on the path's wide kernel: A stored m×k
/// (its rows read in place), and every dimension at least the kernel's
/// minimum. A function of the shape and layout only.
fn wide_shape<T>(w: &super::Wide<T>, x: &Args<'_, T>) -> bool {
    x.ta == Transpose::No && x.m >= w.min_m && x.n >= w.min_n && x.k >= w.min_k
}

/// A large product with f32 output on the wide kernel (`a`: A as f32): for
/// each (KC, NC) block, op(B) packed (widened) into micro-panels `w.nr` wide,
/// then every group of `w.mr` rows of A, read in place, against each panel
/// in turn (the group's KC-deep rows
/// stay in L1 while it sweeps the packed block from L2). KC is the path's
/// (the same depth blocks as its MR×NR kernel, whose FMAs per element run
/// in the same order, so the bits are the same); NC keeps the packed block
/// in three quarters of L2. Threads split the row groups; K is never split,
/// so the bits do not depend on threads.
fn gemm_wide<T: Element, P: Packed>(imp: &Impl<T, P>, w: &super::Wide<T>, x: &Args<'_, T>, a: &[f32], c: &mut [f32]) {
    let (m, n, k) = (x.m, x.n, x.k);
    let caches = detected_caches();
    let kc = Blocking::new(imp.shape, caches).for_product(m, n, k).kc;
    let nc_l2 = (caches.l2 * 3 / 4 / (kc * std::mem::size_of::<f32>()) / w.nr * w.nr).max(w.nr);
    let nc = super::blocking::balanced(n, nc_l2, w.nr);
    let threads = product_threads(x);
    let groups = m.div_ceil(w.mr);
    let stats = AtomicUsize::new(0);
    let seen = AtomicU64::new(0);
    let mut rows = Rows::F32(c);
    f32::with_bufs(|_, bbuf| {
        let mut pc = 0;
        while pc < k {
            let kcb = kc.min(k - pc);
            let mut jc = 0;
            while jc < n {
                let ncb = nc.min(n - jc);
                let nb = ncb.div_ceil(w.nr);
                let buf = bbuf.get(nb * w.nr * kcb);
                let one = |jb: usize, dst: &mut [f32]| {
                    let j0 = jb * w.nr;
                    (w.pack_b.f)(x.b, x.ldb, x.tb, jc + j0, w.nr.min(ncb - j0), pc, kcb, w.nr, dst);
                };
                if threads > 1 {
                    buf.par_chunks_mut(w.nr * kcb).enumerate().for_each(|(jb, dst)| one(jb, dst));
                } else {
                    buf.chunks_mut(w.nr * kcb).enumerate().for_each(|(jb, dst)| one(jb, dst));
                }
                let step = WideStep {
                    x,
                    w,
                    a: &a[pc..],
                    b: buf,
                    kcb,
                    jc,
                    ncb,
                    first: pc == 0,
                    last: pc + kcb == k,
                    stats: &stats,
                    seen: &seen,
                };
                let grain = groups.div_ceil(4 * threads).max(1);
                wide_groups(&step, 0, groups, grain, threads > 1, &mut rows);
                jc += ncb;
            }
            pc += kcb;
        }
    });
    LAST.with(|l| {
        l.set(CallStats {
            tasks: stats.load(Ordering::Relaxed),
            threads: seen.load(Ordering::Relaxed).count_ones() as usize,
            packed_a: false,
            packed_b: true,
            blocking: Some(Blocking { mr: w.mr, nr: w.nr, kc, mc: m, nc }),
            transposed: false,
            dot: false,
        })
    });
}

/// One (PC, JC) block of a product on the wide kernel.
struct WideStep<'s, 'a, T: 'static> {
    x: &'s Args<'a, T>,
    w: &'s super::Wide<T>,
    /// A from the block's first depth step (row i at `[i·lda..]`).
    a: &'s [f32],
    /// The packed B block.
    b: &'s [f32],
    kcb: usize,
    jc: usize,
    ncb: usize,
    first: bool,
    last: bool,
    stats: &'s AtomicUsize,
    seen: &'s AtomicU64,
}

/// Row groups `g0..g1` of the block (`rows` starts at row `g0·mr`).
fn wide_groups<T: Element>(
    s: &WideStep<'_, '_, T>,
    g0: usize,
    g1: usize,
    grain: usize,
    par: bool,
    rows: &mut Rows<'_>,
) {
    let (x, mr, nr) = (s.x, s.w.mr, s.w.nr);
    if par && g1 - g0 > grain {
        let mid = (g0 + g1) / 2;
        let (mut top, mut bottom) = rows.reborrow().split((mid - g0) * mr * x.ldc);
        rayon::join(
            || wide_groups(s, g0, mid, grain, par, &mut top),
            || wide_groups(s, mid, g1, grain, par, &mut bottom),
        );
        return;
    }
    s.stats.fetch_add(1, Ordering::Relaxed);
    let id = rayon::current_thread_index().map_or(63, |i| i.min(63));
    s.seen.fetch_or(1 << id, Ordering::Relaxed);
    let beta_prev = if x.beta == 0.0 { Prev::None } else { Prev::Beta(x.beta) };
    for g in g0..g1 {
        let (r0, lr) = (g * mr, (g - g0) * mr);
        let h = mr.min(x.m - r0);
        let a = APanel::Strided { data: &s.a[r0 * x.lda..], rs: x.lda, cs: 1 };
        for jb in 0..s.ncb.div_ceil(nr) {
            let j0 = jb * nr;
            let wdt = nr.min(s.ncb - j0);
            let col = s.jc + j0;
            let tile =
                MicroTile { k: s.kcb, m: h, n: wdt, a, b: BPanel::Packed(&s.b[jb * nr * s.kcb..][..nr * s.kcb]) };
            let mut out = TileOut {
                alpha: x.alpha,
                prev: if s.first { beta_prev } else { Prev::Dst },
                bias: if s.last { x.epilogue.bias.map(|bias| &bias[col..col + wdt]) } else { None },
                relu: s.last && x.epilogue.relu,
                dst: rows.tile(lr * x.ldc + col, x.ldc),
            };
            (s.w.ukr.f)(&tile, &mut out);
        }
    }
}

/// A narrow product with A stored m×k on the path's dot kernel: op(B)ᵀ
/// packed once (n rows along k), A's rows read in place; threads split the
/// rows of C.
fn gemm_dot<T: Element, P: Packed>(imp: &Impl<T, P>, dot: &super::Dot<T, P>, x: &Args<'_, T>, c: Output<'_>) {
    let (m, n, k) = (x.m, x.n, x.k);
    let ldbt = super::dot_ldbt(k, imp.shape.kpack);
    let threads = if m * n * k < PARALLEL_MIN_MNK { 1 } else { rayon::current_num_threads().max(1) };
    let stats = AtomicUsize::new(0);
    let seen = AtomicU64::new(0);
    let mut rows = match c {
        Output::F32(c) => Rows::F32(c),
        Output::F16(c) => Rows::F16(c),
        Output::Bf16(c) => Rows::Bf16(c),
    };
    P::with_bufs(|_, bbuf| {
        let bt = bbuf.get(n * ldbt);
        (dot.pack.f)(x.b, x.ldb, x.tb, k, n, bt, ldbt);
        let task = DotTask { x, ukr: dot.ukr.f, bt, ldbt, stats: &stats, seen: &seen };
        // About four tasks per thread, at least 64 rows each.
        let grain = m.div_ceil(4 * threads).max(64);
        dot_rows(&task, 0, m, grain, threads > 1, &mut rows);
    });
    LAST.with(|l| {
        l.set(CallStats {
            tasks: stats.load(Ordering::Relaxed),
            threads: seen.load(Ordering::Relaxed).count_ones() as usize,
            packed_a: false,
            packed_b: true,
            blocking: None,
            transposed: false,
            dot: true,
        })
    });
}

struct DotTask<'s, 'a, T: 'static, P: 'static> {
    x: &'s Args<'a, T>,
    ukr: super::DotFn<T, P>,
    bt: &'s [P],
    ldbt: usize,
    stats: &'s AtomicUsize,
    seen: &'s AtomicU64,
}

/// Rows `r0..r1` of C (`rows` starts at row r0).
fn dot_rows<T: Element, P: Packed>(
    s: &DotTask<'_, '_, T, P>,
    r0: usize,
    r1: usize,
    grain: usize,
    par: bool,
    rows: &mut Rows<'_>,
) {
    let x = s.x;
    if par && r1 - r0 > grain {
        let mid = (r0 + r1) / 2;
        let (mut top, mut bottom) = rows.reborrow().split((mid - r0) * x.ldc);
        rayon::join(|| dot_rows(s, r0, mid, grain, par, &mut top), || dot_rows(s, mid, r1, grain, par, &mut bottom));
        return;
    }
    s.stats.fetch_add(1, Ordering::Relaxed);
    let id = rayon::current_thread_index().map_or(63, |i| i.min(63));
    s.seen.fetch_or(1 << id, Ordering::Relaxed);
    let mut out = TileOut {
        alpha: x.alpha,
        prev: if x.beta == 0.0 { Prev::None } else { Prev::Beta(x.beta) },
        bias: x.epilogue.bias.map(|b| &b[..x.n]),
        relu: x.epilogue.relu,
        dst: rows.tile(0, x.ldc),
    };
    (s.ukr)(&x.a[r0 * x.lda..], x.lda, r1 - r0, s.bt, s.ldbt, x.k, x.n, &mut out);
}

/// Rows of C per shallow-kernel call: their A rows (a few KiB for k up to
/// 16) stay in L1 while the kernel runs them through its packed B columns.
const SHALLOW_ROWS: usize = 256;

/// A shallow product with A stored m×k on the path's [`super::Shallow`]
/// kernel: A read in place, op(B) packed by the kernel a block of columns
/// at a time; each call runs up to [`SHALLOW_ROWS`] rows. Threads split the
/// rows of C; every element is the same dot products whatever the split.
fn gemm_shallow<T: Element>(sh: &super::Shallow<T>, x: &Args<'_, T>, c: Output<'_>) {
    let (m, n, k) = (x.m, x.n, x.k);
    let threads = if m * n * k < PARALLEL_MIN_MNK { 1 } else { rayon::current_num_threads().max(1) };
    let stats = AtomicUsize::new(0);
    let seen = AtomicU64::new(0);
    let mut rows = match c {
        Output::F32(c) => Rows::F32(c),
        Output::F16(c) => Rows::F16(c),
        Output::Bf16(c) => Rows::Bf16(c),
    };
    let task = ShallowTask { x, ukr: sh.ukr.f, stats: &stats, seen: &seen };
    let grain = m.div_ceil(4 * threads).max(64);
    shallow_rows(&task, 0, m, grain, threads > 1, &mut rows);
    LAST.with(|l| {
        l.set(CallStats {
            tasks: stats.load(Ordering::Relaxed),
            threads: seen.load(Ordering::Relaxed).count_ones() as usize,
            packed_a: false,
            packed_b: false,
            blocking: None,
            transposed: false,
            dot: false,
        })
    });
}

struct ShallowTask<'s, 'a, T: 'static> {
    x: &'s Args<'a, T>,
    ukr: super::ShallowFn<T>,
    stats: &'s AtomicUsize,
    seen: &'s AtomicU64,
}

/// Rows `r0..r1` of a shallow product (`rows` starts at row r0).
fn shallow_rows<T: Element>(
    s: &ShallowTask<'_, '_, T>,
    r0: usize,
    r1: usize,
    grain: usize,
    par: bool,
    rows: &mut Rows<'_>,
) {
    let x = s.x;
    if par && r1 - r0 > grain {
        let mid = (r0 + r1) / 2;
        let (mut top, mut bottom) = rows.reborrow().split((mid - r0) * x.ldc);
        rayon::join(
            || shallow_rows(s, r0, mid, grain, par, &mut top),
            || shallow_rows(s, mid, r1, grain, par, &mut bottom),
        );
        return;
    }
    s.stats.fetch_add(1, Ordering::Relaxed);
    let id = rayon::current_thread_index().map_or(63, |i| i.min(63));
    s.seen.fetch_or(1 << id, Ordering::Relaxed);
    let prev = if x.beta == 0.0 { Prev::None } else { Prev::Beta(x.beta) };
    let mut i = r0;
    while i < r1 {
        let h = SHALLOW_ROWS.min(r1 - i);
        let tile =
            super::ShallowTile { k: x.k, m: h, n: x.n, a: &x.a[i * x.lda..], lda: x.lda, b: x.b, ldb: x.ldb, tb: x.tb };
        let mut out = TileOut {
            alpha: x.alpha,
            prev,
            bias: x.epilogue.bias.map(|bias| &bias[..x.n]),
            relu: x.epilogue.relu,
            dst: rows.tile((i - r0) * x.ldc, x.ldc),
        };
        (s.ukr)(&tile, &mut out);
        i += h;
    }
}

/// Cᵀ = op(B)ᵀ·op(A)ᵀ for a narrow C (n ≤ MR): the swapped product has n
/// rows, one micro-panel, and m columns, so the narrow kernel's vector lanes
/// run along the rows of C (all of them busy) instead of along n (n of 16).
/// op(B)ᵀ is packed as the A panel and op(A)ᵀ block by block as B panels;
/// the kernel transposes each tile in registers and stores rows of C, with
/// the full epilogue. Every element is the same sequence of FMAs (or
/// dot-product pairs) as on the MR×NR kernel, KC blocks included, so the
/// results are bit-identical to the untransposed product. Threads split the
/// B panels (whole rows of C).
fn gemm_narrow<T: Element, P: Packed>(imp: &Impl<T, P>, ukr: super::UkrFn<P>, x: &Args<'_, T>, c: Output<'_>) {
    let flip = |t: Transpose| if t == Transpose::No { Transpose::Yes } else { Transpose::No };
    // The swapped product: op'(A') = op(B)ᵀ (n × k), op'(B') = op(A)ᵀ (k × m).
    let xs = Args {
        ta: flip(x.tb),
        tb: flip(x.ta),
        m: x.n,
        n: x.m,
        k: x.k,
        alpha: x.alpha,
        a: x.b,
        lda: x.ldb,
        b: x.a,
        ldb: x.lda,
        beta: x.beta,
        ldc: x.ldc,
        epilogue: x.epilogue,
    };
    let (rows_c, cols_c, k) = (x.m, x.n, x.k);
    // With A stored k×m, op'(B') is A's rows: read in place where the path
    // has a kernel for it, instead of packed.
    let in_place = imp.dot.as_ref().and_then(|d| d.rows).filter(|_| xs.tb == Transpose::No).map(|r| r.f);
    let bl = Blocking::new(imp.shape, detected_caches()).for_product(xs.m, xs.n, k);
    let kp = imp.shape.kpack;
    let threads = if rows_c * cols_c * k < PARALLEL_MIN_MNK { 1 } else { rayon::current_num_threads().max(1) };
    let low_precision_out = !matches!(c, Output::F32(_));
    let stats = AtomicUsize::new(0);
    let seen = AtomicU64::new(0);
    let mut rows = match c {
        Output::F32(c) => Rows::F32(c),
        Output::F16(c) => Rows::F16(c),
        Output::Bf16(c) => Rows::Bf16(c),
    };
    P::with_bufs(|abuf, bbuf| {
        SCRATCH.with(|scratch_cell| {
            let mut scratch_guard = scratch_cell.try_borrow_mut().ok();
            let mut own = Buf::new();
            let scratch_buf: &mut Buf<f32> = match scratch_guard.as_deref_mut() {
                Some(s) => s,
                None => &mut own,
            };
            // Partial sums of a deep product with an f16/bf16 C, in C's layout (row stride n).
            let mut scratch = (low_precision_out && k > bl.kc).then(|| scratch_buf.get(rows_c * cols_c));
            let mut pc = 0;
            while pc < k {
                let kcb = bl.kc.min(k - pc);
                let ks = kcb.div_ceil(kp);
                let apanel = abuf.get(xs.m * ks);
                pack_a_block(imp, &xs, 1, apanel, 0, xs.m, 1, pc, kcb, ks);
                let mut jc = 0;
                while jc < xs.n {
                    let ncb = bl.nc.min(xs.n - jc);
                    let nb = ncb.div_ceil(bl.nr);
                    let bpanels: &[P] = if in_place.is_some() {
                        &[]
                    } else {
                        let bpanels = bbuf.get(nb * bl.nr * ks);
                        pack_b_block(imp, &xs, threads, bpanels, &bl, jc, ncb, pc, kcb, ks);
                        bpanels
                    };
                    let step = NarrowStep {
                        x: &xs,
                        nr: bl.nr,
                        ks,
                        kcb,
                        ncb,
                        first: pc == 0,
                        last: pc + kcb == k,
                        apanel,
                        bpanels,
                        ukr,
                        in_place: in_place.map(|f| (f, &xs.b[pc * xs.ldb + jc..])),
                        stats: &stats,
                        seen: &seen,
                    };
                    let (_, mut block) = rows.reborrow().split(jc * x.ldc);
                    let scr = scratch.as_deref_mut().map(|s| &mut s[jc * cols_c..]);
                    let grain = nb.div_ceil(4 * threads).max(1);
                    narrow_panels(&step, 0, nb, grain, threads > 1, &mut block, scr);
                    jc += ncb;
                }
                pc += kcb;
            }
        })
    });
    LAST.with(|l| {
        l.set(CallStats {
            tasks: stats.load(Ordering::Relaxed),
            threads: seen.load(Ordering::Relaxed).count_ones() as usize,
            packed_a: true,
            packed_b: in_place.is_none(),
            blocking: Some(bl),
            transposed: true,
            dot: false,
        })
    });
}

/// One (PC, JC) block of a transposed product (`x` is the swapped product).
struct NarrowStep<'s, 'a, T: 'static, P: 'static> {
    x: &'s Args<'a, T>,
    nr: usize,
    ks: usize,
    /// The block's depth in elements.
    kcb: usize,
    ncb: usize,
    first: bool,
    last: bool,
    apanel: &'s [P],
    bpanels: &'s [P],
    ukr: super::UkrFn<P>,
    /// The kernel reading op'(B')'s rows in place, and the block's first row
    /// at its first column (then `bpanels` is empty).
    in_place: Option<(super::RowsFn<T, P>, &'a [T])>,
    stats: &'s AtomicUsize,
    seen: &'s AtomicU64,
}

/// B panels `jb0..jb1` of the block: rows of C from `jc + jb0·NR`, where
/// `rows` and `scratch` (row stride n) start.
fn narrow_panels<T: Element, P: Packed>(
    s: &NarrowStep<'_, '_, T, P>,
    jb0: usize,
    jb1: usize,
    grain: usize,
    par: bool,
    rows: &mut Rows<'_>,
    scratch: Option<&mut [f32]>,
) {
    let (ldc, cols_c) = (s.x.ldc, s.x.m);
    if par && jb1 - jb0 > grain {
        let mid = (jb0 + jb1) / 2;
        let at = (mid - jb0) * s.nr;
        let (mut top, mut bottom) = rows.reborrow().split(at * ldc);
        let (st, sb) = match scratch {
            Some(sc) => {
                let (a, b) = sc.split_at_mut((at * cols_c).min(sc.len()));
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        rayon::join(
            || narrow_panels(s, jb0, mid, grain, par, &mut top, st),
            || narrow_panels(s, mid, jb1, grain, par, &mut bottom, sb),
        );
        return;
    }
    s.stats.fetch_add(1, Ordering::Relaxed);
    let id = rayon::current_thread_index().map_or(63, |i| i.min(63));
    s.seen.fetch_or(1 << id, Ordering::Relaxed);
    let x = s.x;
    let mut scratch = scratch;
    for jb in jb0..jb1 {
        let lr = (jb - jb0) * s.nr;
        let w = s.nr.min(s.ncb - jb * s.nr);
        let bias = if s.last { x.epilogue.bias.map(|bias| &bias[..cols_c]) } else { None };
        let relu = s.last && x.epilogue.relu;
        let beta_prev = if x.beta == 0.0 { Prev::None } else { Prev::Beta(x.beta) };
        let mut out = if matches!(rows, Rows::F32(_)) {
            TileOut {
                alpha: x.alpha,
                prev: if s.first { beta_prev } else { Prev::Dst },
                bias,
                relu,
                dst: rows.tile(lr * ldc, ldc),
            }
        } else {
            match (s.first, s.last, scratch.as_deref_mut()) {
                (true, true, _) => {
                    TileOut { alpha: x.alpha, prev: Prev::None, bias, relu, dst: rows.tile(lr * ldc, ldc) }
                }
                (first, false, Some(sc)) => TileOut {
                    alpha: x.alpha,
                    prev: if first { Prev::None } else { Prev::Dst },
                    bias: None,
                    relu: false,
                    dst: Dst::F32(&mut sc[lr * cols_c..], cols_c),
                },
                (false, true, Some(sc)) => TileOut {
                    alpha: x.alpha,
                    prev: Prev::From { src: &sc[lr * cols_c..], ld: cols_c },
                    bias,
                    relu,
                    dst: rows.tile(lr * ldc, ldc),
                },
                _ => unreachable!("a deep product with an f16/bf16 destination has a scratch"),
            }
        };
        match s.in_place {
            Some((f, b)) => {
                let tile = super::RowsTile { k: s.kcb, m: cols_c, n: w, a: s.apanel, b: &b[jb * s.nr..], ldb: x.ldb };
                f(&tile, &mut out);
            }
            None => {
                let tile = MicroTile {
                    k: s.ks,
                    m: cols_c,
                    n: w,
                    a: APanel::Packed(s.apanel),
                    b: BPanel::Packed(&s.bpanels[jb * s.nr * s.ks..][..s.nr * s.ks]),
                };
                (s.ukr)(&tile, &mut out);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pack_a_block<T: Element, P: Packed>(
    imp: &Impl<T, P>,
    x: &Args<'_, T>,
    threads: usize,
    buf: &mut [P],
    ic: usize,
    mcb: usize,
    np: usize,
    pc: usize,
    kcb: usize,
    ks: usize,
) {
    let kp = imp.shape.kpack;
    // Stored k×m (transposed), a panel's depth steps are rows of the stored
    // matrix, `lda` apart (4 KiB for m = 1024 f32): packed one panel at a
    // time, each panel would fetch every row's line, and its page, again.
    // Instead `chunk` depth steps of every panel in turn, rows that stay
    // in L1 (about 16 KiB of them) while all the panels take their part.
    let row_bytes = mcb * std::mem::size_of::<T>();
    let chunk = if x.ta == Transpose::Yes { (16384 / row_bytes.max(1)).clamp(4, kcb.max(4)) / kp * kp } else { kcb };
    // Panels q0..q1 into `buf` (which starts at panel q0).
    let leaf = |q0: usize, q1: usize, buf: &mut [P]| {
        let (base, _) = panel(q0, np, mcb);
        let mut p0 = 0;
        while p0 < kcb {
            let d = chunk.min(kcb - p0);
            for q in q0..q1 {
                let (r0, h) = panel(q, np, mcb);
                let at = (r0 - base) * ks + p0 / kp * h;
                (imp.pack_a.f)(x.a, x.lda, x.ta, ic + r0, h, pc + p0, d, &mut buf[at..at + d.div_ceil(kp) * h]);
            }
            p0 += d;
        }
    };
    fn rec<P: Send>(
        q0: usize,
        q1: usize,
        par: bool,
        np: usize,
        mcb: usize,
        ks: usize,
        buf: &mut [P],
        leaf: &(dyn Fn(usize, usize, &mut [P]) + Sync),
    ) {
        if !par || q1 - q0 <= 2 {
            leaf(q0, q1, buf);
            return;
        }
        let mid = (q0 + q1) / 2;
        let (r0, _) = panel(q0, np, mcb);
        let (rm, _) = panel(mid, np, mcb);
        let (l, r) = buf.split_at_mut((rm - r0) * ks);
        rayon::join(|| rec(q0, mid, par, np, mcb, ks, l, leaf), || rec(mid, q1, par, np, mcb, ks, r, leaf));
    }
    rec(0, np, threads > 1, np, mcb, ks, buf, &leaf);
}

#[allow(clippy::too_many_arguments)]
fn pack_b_block<T: Element, P: Packed>(
    imp: &Impl<T, P>,
    x: &Args<'_, T>,
    threads: usize,
    buf: &mut [P],
    bl: &Blocking,
    jc: usize,
    ncb: usize,
    pc: usize,
    kcb: usize,
    ks: usize,
) {
    let nr = bl.nr;
    let one = |jb: usize, dst: &mut [P]| {
        let j0 = jb * nr;
        (imp.pack_b.f)(x.b, x.ldb, x.tb, jc + j0, nr.min(ncb - j0), pc, kcb, nr, dst);
    };
    if threads > 1 {
        buf.par_chunks_mut(nr * ks).enumerate().for_each(|(jb, dst)| one(jb, dst));
    } else {
        buf.chunks_mut(nr * ks).enumerate().for_each(|(jb, dst)| one(jb, dst));
    }
}

/// Everything a compute task needs for one (IC, PC, JC) block.
struct Step<'s, 'a, T: 'static, P: 'static> {
    x: &'s Args<'a, T>,
    bl: &'s Blocking,
    imp: &'s Impl<T, P>,
    ic: usize,
    mcb: usize,
    np: usize,
    pc: usize,
    ks: usize,
    jc: usize,
    ncb: usize,
    nb: usize,
    first: bool,
    last: bool,
    apacked: Option<&'s [P]>,
    bpacked: Option<&'s [P]>,
    /// Where the block's first B micro-panel starts in `bpacked`.
    b_off: usize,
    /// The distance between B micro-panels in `bpacked`.
    b_stride: usize,
    a_direct: Option<&'s [P]>,
    b_direct: Option<&'s [P]>,
    /// The shallow kernel, when this product runs on it (A read in place).
    tall: Option<&'s Tall<P>>,
    stats: &'s AtomicUsize,
    seen: &'s AtomicU64,
}

/// Micro-panels `q0..q1` of the block; `rows` starts at the first row of
/// panel `q0` (and so does `scratch`, with row stride n).
fn compute<T: Element, P: Packed>(
    s: &Step<'_, '_, T, P>,
    q0: usize,
    q1: usize,
    grain: usize,
    par: bool,
    rows: &mut Rows<'_>,
    scratch: Option<&mut [f32]>,
) {
    if par && q1 - q0 > grain {
        let mid = (q0 + q1) / 2;
        let (r0, _) = panel(q0, s.np, s.mcb);
        let (rm, _) = panel(mid, s.np, s.mcb);
        let (mut top, mut bottom) = rows.reborrow().split((rm - r0) * s.x.ldc);
        let (st, sb) = match scratch {
            Some(sc) => {
                let (a, b) = sc.split_at_mut((rm - r0) * s.x.n);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        rayon::join(
            || compute(s, q0, mid, grain, par, &mut top, st),
            || compute(s, mid, q1, grain, par, &mut bottom, sb),
        );
        return;
    }
    s.stats.fetch_add(1, Ordering::Relaxed);
    let id = rayon::current_thread_index().map_or(63, |i| i.min(63));
    s.seen.fetch_or(1 << id, Ordering::Relaxed);
    run_panels(s, q0, q1, rows, scratch);
}

fn run_panels<T: Element, P: Packed>(
    s: &Step<'_, '_, T, P>,
    q0: usize,
    q1: usize,
    rows: &mut Rows<'_>,
    mut scratch: Option<&mut [f32]>,
) {
    let (rbase, _) = panel(q0, s.np, s.mcb);
    if let Some(tall) = s.tall {
        // A shallow product: every row of the task against one B panel at a time.
        let (rl, hl) = panel(q1 - 1, s.np, s.mcb);
        let a = a_panel(s, rbase);
        for jb in 0..s.nb {
            run_tile(s, tall.ukr.f, a, rl + hl - rbase, 0, jb, rows, None);
        }
        return;
    }
    for q in q0..q1 {
        let (r0, h) = panel(q, s.np, s.mcb);
        let a = match s.apacked {
            Some(buf) => APanel::Packed(&buf[r0 * s.ks..(r0 + h) * s.ks]),
            None => a_panel(s, r0),
        };
        for jb in 0..s.nb {
            run_tile(s, s.imp.ukr.f, a, h, r0 - rbase, jb, rows, scratch.as_deref_mut());
        }
    }
}

/// op(A) read in place from row `r0` of the block.
fn a_panel<'s, T: Element, P: Packed>(s: &Step<'s, '_, T, P>, r0: usize) -> APanel<'s, P> {
    let (x, row) = (s.x, s.ic + r0);
    let a = s.a_direct.expect("A is packed whenever it cannot be read directly");
    match x.ta {
        Transpose::No => APanel::Strided { data: &a[row * x.lda + s.pc..], rs: x.lda, cs: 1 },
        Transpose::Yes => APanel::Strided { data: &a[s.pc * x.lda + row..], rs: 1, cs: x.lda },
    }
}

/// One tile: rows `lr..lr + h` of the task (`rows` and `scratch` start at
/// its first row) against B micro-panel `jb` of the block, stored with the
/// block's epilogue.
#[allow(clippy::too_many_arguments)]
fn run_tile<T: Element, P: Packed>(
    s: &Step<'_, '_, T, P>,
    ukr: super::UkrFn<P>,
    a: APanel<'_, P>,
    h: usize,
    lr: usize,
    jb: usize,
    rows: &mut Rows<'_>,
    scratch: Option<&mut [f32]>,
) {
    let x = s.x;
    let nr = s.bl.nr;
    let j0 = jb * nr;
    let w = nr.min(s.ncb - j0);
    let col = s.jc + j0;
    let b = match (s.bpacked, s.b_direct) {
        (Some(buf), _) => BPanel::Packed(&buf[s.b_off + jb * s.b_stride..][..nr * s.ks]),
        (None, Some(b)) if x.tb == Transpose::No => BPanel::Rows { data: &b[s.pc * x.ldb + col..], ld: x.ldb },
        (None, Some(b)) => BPanel::Cols { data: &b[col * x.ldb + s.pc..], ld: x.ldb },
        (None, None) => unreachable!("B is packed whenever it cannot be read directly"),
    };
    let tile = MicroTile { k: s.ks, m: h, n: w, a, b };
    let bias = if s.last { x.epilogue.bias.map(|bias| &bias[col..col + w]) } else { None };
    let relu = s.last && x.epilogue.relu;
    let beta_prev = if x.beta == 0.0 { Prev::None } else { Prev::Beta(x.beta) };
    let mut out = if matches!(rows, Rows::F32(_)) {
        TileOut {
            alpha: x.alpha,
            prev: if s.first { beta_prev } else { Prev::Dst },
            bias,
            relu,
            dst: rows.tile(lr * x.ldc + col, x.ldc),
        }
    } else {
        // f16/bf16 destination: partial sums of a deep product wait
        // in the f32 scratch; only the last block rounds to the output.
        match (s.first, s.last, scratch) {
            (true, true, _) => {
                TileOut { alpha: x.alpha, prev: Prev::None, bias, relu, dst: rows.tile(lr * x.ldc + col, x.ldc) }
            }
            (first, false, Some(sc)) => TileOut {
                alpha: x.alpha,
                prev: if first { Prev::None } else { Prev::Dst },
                bias: None,
                relu: false,
                dst: Dst::F32(&mut sc[lr * x.n + col..], x.n),
            },
            (false, true, Some(sc)) => TileOut {
                alpha: x.alpha,
                prev: Prev::From { src: &sc[lr * x.n + col..], ld: x.n },
                bias,
                relu,
                dst: rows.tile(lr * x.ldc + col, x.ldc),
            },
            _ => unreachable!("a deep product with an f16/bf16 destination has a scratch"),
        }
    };
    ukr(&tile, &mut out);
}

/// `C = relu?(beta·C + bias)` without reading A or B (`alpha == 0` or `k == 0`).
fn scale_only<T>(x: &Args<'_, T>, c: Output<'_>) {
    let value = |i: usize, j: usize, old: Option<f32>| {
        let mut v = match old {
            Some(c) if x.beta != 0.0 => x.beta * c,
            _ => 0.0,
        };
        if let Some(bias) = x.epilogue.bias {
            v += bias[j];
        }
        let _ = i;
        if x.epilogue.relu { relu(v) } else { v }
    };
    match c {
        Output::F32(c) => {
            for i in 0..x.m {
                for j in 0..x.n {
                    let e = &mut c[i * x.ldc + j];
                    *e = value(i, j, Some(*e));
                }
            }
        }
        Output::F16(c) => {
            for i in 0..x.m {
                for j in 0..x.n {
                    c[i * x.ldc + j] = f16::from_f32(value(i, j, None));
                }
            }
        }
        Output::Bf16(c) => {
            for i in 0..x.m {
                for j in 0..x.n {
                    c[i * x.ldc + j] = bf16::from_f32(value(i, j, None));
                }
            }
        }
    }
}

/// ReLU as the micro-kernels apply it: `x ≤ 0` (incl. −0) → +0, NaN kept.
#[inline]
pub fn relu(v: f32) -> f32 {
    if v > 0.0 || v.is_nan() { v } else { 0.0 }
}
