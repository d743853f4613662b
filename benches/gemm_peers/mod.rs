//! GEMM problems and peer adapters shared by `benches/gemm.rs` and
//! `examples/gemm_peak.rs`: the shapes the issues name, and one call per
//! implementation (mixprec, the `gemm` crate, `matrixmultiply`, `faer`) on
//! the same row-major operands with the same transposes.
#![allow(dead_code)]

use half::{bf16, f16};
use mixprec::kernels::gemm::{self, Transpose};

/// One product `C = op(A)·op(B)` (m×k times k×n) with its transposes.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub name: &'static str,
    pub ta: Transpose,
    pub tb: Transpose,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

impl Shape {
    pub const fn square(name: &'static str, s: usize) -> Shape {
        Shape { name, ta: Transpose::No, tb: Transpose::No, m: s, k: s, n: s }
    }

    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k) as f64
    }

    pub fn label(&self) -> String {
        let t = |t: Transpose| if t == Transpose::No { "N" } else { "T" };
        format!("{}x{}x{}_{}{}", self.m, self.k, self.n, t(self.ta), t(self.tb))
    }
}

const N: Transpose = Transpose::No;
const T: Transpose = Transpose::Yes;

/// Square sizes 64…2048.
pub const SQUARES: [Shape; 6] = [
    Shape::square("64", 64),
    Shape::square("128", 128),
    Shape::square("256", 256),
    Shape::square("512", 512),
    Shape::square("1024", 1024),
    Shape::square("2048", 2048),
];

/// The 8 GEMMs of the MLP step (784-512-512-10, batch 128; W stored in×out,
/// so forward is X·W, weight gradients Xᵀ·G and input gradients G·Wᵀ).
pub const MLP: [Shape; 8] = [
    Shape { name: "fwd1", ta: N, tb: N, m: 128, k: 784, n: 512 },
    Shape { name: "fwd2", ta: N, tb: N, m: 128, k: 512, n: 512 },
    Shape { name: "fwd3", ta: N, tb: N, m: 128, k: 512, n: 10 },
    Shape { name: "wgrad1", ta: T, tb: N, m: 784, k: 128, n: 512 },
    Shape { name: "wgrad2", ta: T, tb: N, m: 512, k: 128, n: 512 },
    Shape { name: "wgrad3", ta: T, tb: N, m: 512, k: 128, n: 10 },
    Shape { name: "igrad2", ta: N, tb: T, m: 128, k: 512, n: 512 },
    Shape { name: "igrad3", ta: N, tb: T, m: 128, k: 10, n: 512 },
];

/// Operands of one shape, in f32, f16 and bf16 (the same values rounded).
pub struct Problem {
    pub s: Shape,
    pub lda: usize,
    pub ldb: usize,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub c: Vec<f32>,
    pub ah: Vec<f16>,
    pub bh: Vec<f16>,
    pub ab: Vec<bf16>,
    pub bb: Vec<bf16>,
}

impl Problem {
    pub fn new(s: Shape) -> Problem {
        let (ar, ac) = if s.ta == N { (s.m, s.k) } else { (s.k, s.m) };
        let (br, bc) = if s.tb == N { (s.k, s.n) } else { (s.n, s.k) };
        let mut state = 0x9E37_79B9u32 ^ (s.m * 31 + s.k * 17 + s.n) as u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let a: Vec<f32> = (0..ar * ac).map(|_| next()).collect();
        let b: Vec<f32> = (0..br * bc).map(|_| next()).collect();
        Problem {
            s,
            lda: ac,
            ldb: bc,
            ah: a.iter().map(|&x| f16::from_f32(x)).collect(),
            bh: b.iter().map(|&x| f16::from_f32(x)).collect(),
            ab: a.iter().map(|&x| bf16::from_f32(x)).collect(),
            bb: b.iter().map(|&x| bf16::from_f32(x)).collect(),
            a,
            b,
            c: vec![0.0; s.m * s.n],
        }
    }

    /// (row stride, column stride) of op(A) and op(B).
    fn strides(&self) -> ((isize, isize), (isize, isize)) {
        let (lda, ldb) = (self.lda as isize, self.ldb as isize);
        let a = if self.s.ta == N { (lda, 1) } else { (1, lda) };
        let b = if self.s.tb == N { (ldb, 1) } else { (1, ldb) };
        (a, b)
    }
}

/// An implementation under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imp {
    Sgemm,
    Hgemm,
    /// The first of `gemm::hgemm_alternatives()` (AVX-512: the path without
    /// the dot kernel for narrow products; AVX-512-FP16: the f16-panel kernel).
    HgemmAlt,
    Bgemm,
    PeerGemm,
    PeerGemmF16,
    MatrixMultiply,
    Faer,
}

impl Imp {
    pub fn name(self) -> &'static str {
        match self {
            Imp::Sgemm => "mixprec_sgemm",
            Imp::Hgemm => "mixprec_hgemm",
            Imp::HgemmAlt => "mixprec_hgemm_alt",
            Imp::Bgemm => "mixprec_bgemm",
            Imp::PeerGemm if cfg!(feature = "peer-gemm-x86-v4") => "gemm_x86v4",
            Imp::PeerGemm => "gemm",
            Imp::PeerGemmF16 if cfg!(feature = "peer-gemm-x86-v4") => "gemm_f16_x86v4",
            Imp::PeerGemmF16 => "gemm_f16",
            Imp::MatrixMultiply => "matrixmultiply",
            Imp::Faer => "faer",
        }
    }
}

/// Runs one product with `threads` threads (the caller installs the rayon pool;
/// `matrixmultiply` reads `MATMUL_NUM_THREADS` once per process).
pub fn run(imp: Imp, p: &mut Problem, threads: usize) {
    let s = p.s;
    let ((ars, acs), (brs, bcs)) = p.strides();
    match imp {
        Imp::Sgemm => gemm::sgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0, &p.a, p.lda, &p.b, p.ldb, 0.0, &mut p.c, s.n),
        Imp::Hgemm => gemm::hgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0, &p.ah, p.lda, &p.bh, p.ldb, 0.0, &mut p.c, s.n),
        Imp::HgemmAlt => {
            let path = &alternative().expect("no alternative hgemm path on this CPU").1;
            let out = gemm::Output::F32(&mut p.c);
            let e = gemm::Epilogue::default();
            gemm::gemm_on(path, s.ta, s.tb, s.m, s.n, s.k, 1.0, &p.ah, p.lda, &p.bh, p.ldb, 0.0, out, s.n, e)
        }
        Imp::Bgemm => gemm::bgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0, &p.ab, p.lda, &p.bb, p.ldb, 0.0, &mut p.c, s.n),
        Imp::PeerGemm => {
            let par = if threads > 1 { ::gemm::Parallelism::Rayon(threads) } else { ::gemm::Parallelism::None };
            // SAFETY: the pointers and strides describe the operands' full
            // extents (m×k, k×n, m×n row-major with the problem's strides).
            unsafe {
                ::gemm::gemm(
                    s.m,
                    s.n,
                    s.k,
                    p.c.as_mut_ptr(),
                    1,
                    s.n as isize,
                    false,
                    p.a.as_ptr(),
                    acs,
                    ars,
                    p.b.as_ptr(),
                    bcs,
                    brs,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    par,
                )
            }
        }
        Imp::PeerGemmF16 => {
            let par = if threads > 1 { ::gemm::Parallelism::Rayon(threads) } else { ::gemm::Parallelism::None };
            let c = F16_OUT.with(|o| {
                let mut o = o.borrow_mut();
                o.resize(s.m * s.n, f16::ZERO);
                o.as_mut_ptr()
            });
            // SAFETY: as above; the f16 output buffer holds m×n values and
            // lives in this thread's storage for the duration of the call.
            unsafe {
                ::gemm::gemm(
                    s.m,
                    s.n,
                    s.k,
                    c,
                    1,
                    s.n as isize,
                    false,
                    p.ah.as_ptr(),
                    acs,
                    ars,
                    p.bh.as_ptr(),
                    bcs,
                    brs,
                    f16::ZERO,
                    f16::ONE,
                    false,
                    false,
                    false,
                    par,
                )
            }
        }
        Imp::MatrixMultiply => {
            // SAFETY: as above.
            unsafe {
                matrixmultiply::sgemm(
                    s.m,
                    s.k,
                    s.n,
                    1.0,
                    p.a.as_ptr(),
                    ars,
                    acs,
                    p.b.as_ptr(),
                    brs,
                    bcs,
                    0.0,
                    p.c.as_mut_ptr(),
                    s.n as isize,
                    1,
                )
            }
        }
        Imp::Faer => {
            let a = faer::MatRef::from_row_major_slice_with_stride(&p.a, ar(s), ac(s), p.lda);
            let b = faer::MatRef::from_row_major_slice_with_stride(&p.b, br(s), bc(s), p.ldb);
            let a = if s.ta == N { a } else { a.transpose() };
            let b = if s.tb == N { b } else { b.transpose() };
            let c = faer::MatMut::from_row_major_slice_mut(&mut p.c, s.m, s.n);
            let par = if threads > 1 { faer::Par::rayon(threads) } else { faer::Par::Seq };
            faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, b, 1.0f32, par);
        }
    }
}

/// The first alternative hgemm path this CPU can run, if any.
pub fn alternative() -> Option<&'static (&'static str, gemm::Path<f16>)> {
    static ALT: std::sync::OnceLock<Vec<(&'static str, gemm::Path<f16>)>> = std::sync::OnceLock::new();
    ALT.get_or_init(gemm::hgemm_alternatives).first()
}

fn ar(s: Shape) -> usize {
    if s.ta == N { s.m } else { s.k }
}
fn ac(s: Shape) -> usize {
    if s.ta == N { s.k } else { s.m }
}
fn br(s: Shape) -> usize {
    if s.tb == N { s.k } else { s.n }
}
fn bc(s: Shape) -> usize {
    if s.tb == N { s.n } else { s.k }
}

thread_local! {
    static F16_OUT: std::cell::RefCell<Vec<f16>> = const { std::cell::RefCell::new(Vec::new()) };
}
