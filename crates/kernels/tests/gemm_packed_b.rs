//! `PackedB` and `gemm_packed_b`: on every path and input type, products
//! with op(B) packed once are bit-identical to `gemm_on` with B as stored
//! (blocking edges, several KC and NC blocks, all transposes, every output
//! type and epilogue), for one and two threads.

mod common;

use common::{SplitMix, paths, under_emulation};
use half::{bf16, f16};
use mixprec_kernels::gemm::{self, Blocking, Element, Epilogue, Output, PackedB, Path, Transpose, detected_caches};

const TS: [(Transpose, Transpose); 4] = [
    (Transpose::No, Transpose::No),
    (Transpose::No, Transpose::Yes),
    (Transpose::Yes, Transpose::No),
    (Transpose::Yes, Transpose::Yes),
];

fn values<T>(len: usize, seed: u64, conv: impl Fn(f32) -> T) -> Vec<T> {
    let mut rng = SplitMix(seed);
    (0..len).map(|_| conv(rng.next_f32())).collect()
}

fn same(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[allow(clippy::too_many_arguments)]
fn one_case<T: Element>(
    what: &str,
    path: &Path<T>,
    (ta, tb): (Transpose, Transpose),
    (m, n, k): (usize, usize, usize),
    seed: u64,
    conv: impl Fn(f32) -> T + Copy,
) {
    let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
    let (lda, ldb, ldc) = (ac + (seed % 3) as usize, bc + (seed % 2) as usize, n + (seed % 4) as usize);
    let a = values(gemm::required_len(ar, ac, lda), seed, conv);
    let b = values(gemm::required_len(br, bc, ldb), seed ^ 0xB, conv);
    let c0 = values(gemm::required_len(m, n, ldc), seed ^ 0xC, |x| x);
    let bias = values(n, seed ^ 0xD, |x| x);
    let packed = PackedB::on(path, tb, k, n, &b, ldb);
    assert_eq!((packed.k(), packed.n()), (k, n));
    let cases: [(f32, f32, Epilogue<'_>); 3] = [
        (1.0, 0.0, Epilogue::default()),
        (-0.75, 1.5, Epilogue::default()),
        (1.0, 1.0, Epilogue { bias: Some(&bias), relu: true }),
    ];
    for (alpha, beta, e) in cases {
        let (mut want, mut got) = (c0.clone(), c0.clone());
        gemm::gemm_on(path, ta, tb, m, n, k, alpha, &a, lda, &b, ldb, beta, Output::F32(&mut want), ldc, e);
        gemm::gemm_packed_b(ta, m, alpha, &a, lda, &packed, beta, Output::F32(&mut got), ldc, e);
        assert!(same(&want, &got), "{what} {ta:?}{tb:?} {m}×{n}×{k} alpha {alpha} beta {beta}: bits differ");
    }
    // Rounded outputs (through the f32 scratch when k crosses KC blocks).
    let len = gemm::required_len(m, n, ldc);
    let (mut want, mut got) = (vec![f16::ZERO; len], vec![f16::ZERO; len]);
    let e = Epilogue { bias: Some(&bias), relu: false };
    gemm::gemm_on(path, ta, tb, m, n, k, 0.5, &a, lda, &b, ldb, 0.0, Output::F16(&mut want), ldc, e);
    gemm::gemm_packed_b(ta, m, 0.5, &a, lda, &packed, 0.0, Output::F16(&mut got), ldc, e);
    assert!(want.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits()), "{what} f16 out {m}×{n}×{k}");
    let (mut want, mut got) = (vec![bf16::ZERO; len], vec![bf16::ZERO; len]);
    gemm::gemm_on(path, ta, tb, m, n, k, 1.0, &a, lda, &b, ldb, 0.0, Output::Bf16(&mut want), ldc, e);
    gemm::gemm_packed_b(ta, m, 1.0, &a, lda, &packed, 0.0, Output::Bf16(&mut got), ldc, e);
    assert!(want.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits()), "{what} bf16 out {m}×{n}×{k}");
}

fn run<T: Element>(what: &str, path: &Path<T>, conv: impl Fn(f32) -> T + Copy) {
    let bl = Blocking::new(path.shape(), detected_caches());
    let (mr, nr, kc) = (bl.mr, bl.nr, bl.kc);
    // n past NC only where it stays cheap (NC is a few hundred on real caches).
    let wide = if under_emulation() { 2 * nr + 3 } else { bl.nc + nr + 5 };
    let ms = [1, mr + 1, 2 * mr + 3];
    let ns = [1, nr - 1, 2 * nr + 3, wide];
    let ks = [1, kc - 1, 2 * kc + 3];
    let mut seed = 11;
    for &t in &TS {
        for &m in &ms {
            for &n in &ns {
                for &k in &ks {
                    seed += 1;
                    one_case(what, path, t, (m, n, k), seed, conv);
                }
            }
        }
    }
}

#[test]
fn packed_b_products_equal_gemm_on_every_path() {
    for kt in paths() {
        run(&format!("{} sgemm", kt.isa), &kt.gemm.sgemm, |x| x);
        run(&format!("{} hgemm", kt.isa), &kt.gemm.hgemm, f16::from_f32);
        run(&format!("{} bgemm", kt.isa), &kt.gemm.bgemm, bf16::from_f32);
    }
    for (name, path) in gemm::hgemm_alternatives() {
        run(&format!("{name} hgemm"), &path, f16::from_f32);
    }
}

/// An LSTM step's shapes (32×1024×256 and its transpose 32×256×1024): the
/// same bits on one and two threads, and the same as `gemm_on`.
#[test]
fn packed_b_is_bit_identical_for_one_and_two_threads() {
    let k0 = if under_emulation() { 64 } else { 256 };
    for kt in paths() {
        for (tb, k, n) in [(Transpose::Yes, k0, 4 * k0), (Transpose::No, 4 * k0, k0)] {
            let m = 32;
            let w = values(4 * k0 * k0, 3, |x| x);
            let a = values(m * k, 4, |x| x);
            let ldb = if tb == Transpose::No { n } else { k };
            let packed = PackedB::on(&kt.gemm.sgemm, tb, k, n, &w, ldb);
            let mut want = vec![0.0f32; m * n];
            gemm::gemm_on(
                &kt.gemm.sgemm,
                Transpose::No,
                tb,
                m,
                n,
                k,
                1.0,
                &a,
                k,
                &w,
                ldb,
                0.0,
                Output::F32(&mut want),
                n,
                Epilogue::default(),
            );
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut got = vec![f32::NAN; m * n];
                pool.install(|| {
                    gemm::gemm_packed_b(
                        Transpose::No,
                        m,
                        1.0,
                        &a,
                        k,
                        &packed,
                        0.0,
                        Output::F32(&mut got),
                        n,
                        Epilogue::default(),
                    )
                });
                assert!(same(&want, &got), "{} {tb:?} {threads} thread(s)", kt.isa);
            }
        }
    }
}

#[test]
#[should_panic(expected = "A holds")]
fn packed_b_checks_a() {
    let b = vec![1.0f32; 6];
    let packed = PackedB::new(Transpose::No, 2, 3, &b, 3);
    let mut c = vec![0.0f32; 6];
    gemm::gemm_packed_b(Transpose::No, 2, 1.0, &[1.0; 3], 2, &packed, 0.0, Output::F32(&mut c), 3, Epilogue::default());
}

#[test]
#[should_panic(expected = "B holds")]
fn packing_checks_b() {
    let _ = PackedB::new(Transpose::Yes, 4, 3, &[1.0f32; 11], 4);
}
