//! GEMM beyond the contract proptest: every path's blocking edges (MR±1,
//! NR±1, KC±1, several KC blocks), bit-identical results for any thread
//! count, and the fused epilogues against the unfused composition.

mod common;

use common::{SplitMix, paths, under_emulation};
use half::{bf16, f16};
use mixprec_kernels::gemm::{self, Blocking, Element, Epilogue, Output, Path, Transpose, detected_caches};

const TS: [(Transpose, Transpose); 4] = [
    (Transpose::No, Transpose::No),
    (Transpose::No, Transpose::Yes),
    (Transpose::Yes, Transpose::No),
    (Transpose::Yes, Transpose::Yes),
];

struct Mats<T> {
    a: Vec<T>,
    lda: usize,
    b: Vec<T>,
    ldb: usize,
    af: Vec<f32>,
    bf: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
fn mats<T: Copy>(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    pad: usize,
    seed: u64,
    conv: impl Fn(f32) -> T,
    back: impl Fn(T) -> f32,
) -> Mats<T> {
    let mut rng = SplitMix(seed);
    let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
    let (lda, ldb) = (ac + pad, bc + pad);
    let a: Vec<T> = (0..gemm::required_len(ar, ac, lda)).map(|_| conv(rng.next_f32())).collect();
    let b: Vec<T> = (0..gemm::required_len(br, bc, ldb)).map(|_| conv(rng.next_f32())).collect();
    let af = a.iter().map(|&x| back(x)).collect();
    let bf = b.iter().map(|&x| back(x)).collect();
    Mats { a, lda, b, ldb, af, bf }
}

/// The bound of docs/numerics.md against an f64 oracle, for C = alpha·op(A)·op(B) + beta·C0.
#[allow(clippy::too_many_arguments)]
fn check<T>(
    what: &str,
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    x: &Mats<T>,
    alpha: f32,
    beta: f32,
    c0: &[f32],
    got: &[f32],
    ldc: usize,
) {
    let u = 2.0f64.powi(-24);
    for i in 0..m {
        for j in 0..n {
            let (mut dot, mut abs) = (0.0f64, 0.0f64);
            for p in 0..k {
                let a = if ta == Transpose::No { x.af[i * x.lda + p] } else { x.af[p * x.lda + i] } as f64;
                let b = if tb == Transpose::No { x.bf[p * x.ldb + j] } else { x.bf[j * x.ldb + p] } as f64;
                dot += a * b;
                abs += (a * b).abs();
            }
            let c = if beta == 0.0 { 0.0 } else { c0[i * ldc + j] as f64 };
            let want = alpha as f64 * dot + beta as f64 * c;
            let bound = 2.0 * k as f64 * u * (alpha as f64).abs() * abs + 2.0 * u * (beta as f64 * c).abs();
            let g = got[i * ldc + j] as f64;
            assert!(
                (g - want).abs() <= bound,
                "{what} {ta:?}{tb:?} {m}x{n}x{k}: C[{i},{j}] = {g}, want {want} ± {bound}"
            );
        }
    }
}

fn edge_dims<T>(path: &Path<T>) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let shape = path.shape();
    let bl = Blocking::new(shape, detected_caches());
    let (mr, nr, kc) = (bl.mr, bl.nr, bl.kc);
    (
        vec![1, mr - 1, mr, mr + 1, 2 * mr + 1],
        vec![1, nr - 1, nr, nr + 1, 2 * nr + 3],
        vec![kc - 1, kc, kc + 1, 2 * kc + 3],
    )
}

fn run_edges<T: Element>(name: &str, path: &Path<T>, conv: impl Fn(f32) -> T + Copy, back: impl Fn(T) -> f32 + Copy) {
    let (ms, ns, ks) = edge_dims(path);
    let mut seed = 1;
    for &(ta, tb) in &TS {
        for &m in &ms {
            for &n in &ns {
                for &k in &ks {
                    seed += 1;
                    let x = mats(ta, tb, m, n, k, (seed % 3) as usize, seed, conv, back);
                    let ldc = n + (seed % 4) as usize;
                    let mut rng = SplitMix(seed ^ 0xC0);
                    let c0: Vec<f32> = (0..gemm::required_len(m, n, ldc)).map(|_| rng.next_f32()).collect();
                    let (alpha, beta) = if seed % 2 == 0 { (1.0, 0.0) } else { (-0.75, 1.5) };
                    let mut c = c0.clone();
                    if beta == 0.0 {
                        c.iter_mut().for_each(|v| *v = f32::NAN);
                    }
                    let e = Epilogue::default();
                    gemm::gemm_on(
                        path,
                        ta,
                        tb,
                        m,
                        n,
                        k,
                        alpha,
                        &x.a,
                        x.lda,
                        &x.b,
                        x.ldb,
                        beta,
                        Output::F32(&mut c),
                        ldc,
                        e,
                    );
                    check(name, ta, tb, m, n, k, &x, alpha, beta, &c0, &c, ldc);
                }
            }
        }
    }
}

/// m = MR±1, n = NR±1, k = KC±1 and 2·KC+3 (so deep products cross blocks),
/// all transposes, on every path and input type.
#[test]
fn blocking_edges_on_every_path() {
    for k in paths() {
        run_edges(&format!("{} sgemm", k.isa), &k.gemm.sgemm, |x| x, |x| x);
        run_edges(&format!("{} hgemm", k.isa), &k.gemm.hgemm, f16::from_f32, f16::to_f32);
        run_edges(&format!("{} bgemm", k.isa), &k.gemm.bgemm, bf16::from_f32, bf16::to_f32);
    }
    for (name, path) in gemm::hgemm_alternatives() {
        run_edges(&format!("{name} hgemm"), &path, f16::from_f32, f16::to_f32);
    }
}

/// Long products (k > 1000) with large leading dimensions.
#[test]
fn deep_products_with_wide_strides() {
    for kt in paths() {
        for &(ta, tb) in &TS {
            let (m, n, k) = (37, 45, 1203);
            let x = mats(ta, tb, m, n, k, 129, 77, |v| v, |v| v);
            let ldc = n + 200;
            let c0 = vec![0.25f32; gemm::required_len(m, n, ldc)];
            let mut c = c0.clone();
            let e = Epilogue::default();
            gemm::gemm_on(
                &kt.gemm.sgemm,
                ta,
                tb,
                m,
                n,
                k,
                0.5,
                &x.a,
                x.lda,
                &x.b,
                x.ldb,
                2.0,
                Output::F32(&mut c),
                ldc,
                e,
            );
            check(&format!("{} sgemm deep", kt.isa), ta, tb, m, n, k, &x, 0.5, 2.0, &c0, &c, ldc);
            for i in 0..m - 1 {
                assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == 0.25), "padding of row {i} written");
            }
        }
    }
}

fn run_threads<T: Element>(path: &Path<T>, what: &str, conv: impl Fn(f32) -> T + Copy, back: impl Fn(T) -> f32 + Copy) {
    // Under qemu the depth shrinks; m and n stay ≥ 512 so the work still splits.
    let (m, n, k) = (523, 517, if under_emulation() { 37 } else { 611 });
    let reps = if under_emulation() { 1 } else { 3 };
    for &(ta, tb) in &TS[..2] {
        let x = mats(ta, tb, m, n, k, 1, 5, conv, back);
        let mut reference: Option<Vec<f32>> = None;
        let mut saw_threads = 0;
        for threads in [1, 2, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            // Three calls per count; more while no second thread has taken
            // part (on a loaded machine the idle workers may wake too late
            // to steal from one call).
            for rep in 0..24 {
                if rep >= reps && (threads == 1 || saw_threads > 1) {
                    break;
                }
                let mut c = vec![f32::NAN; m * n];
                let stats = pool.install(|| {
                    gemm::gemm_on(
                        path,
                        ta,
                        tb,
                        m,
                        n,
                        k,
                        1.0,
                        &x.a,
                        x.lda,
                        &x.b,
                        x.ldb,
                        0.0,
                        Output::F32(&mut c),
                        n,
                        Epilogue::default(),
                    );
                    gemm::last_call_stats()
                });
                if threads > 1 {
                    assert!(stats.tasks > 1, "{what}: {threads} threads ran {} task(s)", stats.tasks);
                    saw_threads = saw_threads.max(stats.threads);
                } else {
                    assert_eq!(stats.threads, 1);
                }
                match &reference {
                    None => reference = Some(c),
                    Some(r) => assert!(
                        r.iter().zip(&c).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{what}: {threads} threads changed the bits"
                    ),
                }
            }
        }
        assert!(saw_threads > 1, "{what}: the work never ran on more than one thread");
    }
}

/// Shapes ≥ 512: 1, 2, 3 and 4 threads give bit-identical results, and the
/// multi-threaded calls split the work into several tasks that ran on more
/// than one thread.
#[test]
fn results_are_bit_identical_for_any_thread_count() {
    for k in paths() {
        run_threads(&k.gemm.sgemm, &format!("{} sgemm", k.isa), |x| x, |x| x);
        run_threads(&k.gemm.hgemm, &format!("{} hgemm", k.isa), f16::from_f32, f16::to_f32);
        run_threads(&k.gemm.bgemm, &format!("{} bgemm", k.isa), bf16::from_f32, bf16::to_f32);
    }
    for (name, path) in gemm::hgemm_alternatives() {
        run_threads(&path, &format!("{name} hgemm"), f16::from_f32, f16::to_f32);
    }
}

fn relu(v: f32) -> f32 {
    if v > 0.0 || v.is_nan() { v } else { 0.0 }
}

fn run_fused<T: Element>(path: &Path<T>, what: &str, conv: impl Fn(f32) -> T + Copy, back: impl Fn(T) -> f32 + Copy) {
    let kc = Blocking::new(path.shape(), detected_caches()).kc;
    // n = 23 and 19 leave 7 and 3 columns in a vector (stores of 4 + 2 + 1 and 2 + 1 lanes on avx2).
    for &(m, n, k) in &[(1, 1, 1), (29, 45, 17), (7, 23, 9), (3, 19, 4), (64, 70, kc + 5), (130, 33, 2 * kc + 1)] {
        for &(ta, tb) in &TS {
            let x = mats(ta, tb, m, n, k, 0, (m * n + k) as u64, conv, back);
            let bias: Vec<f32> = (0..n).map(|j| (j as f32 - 10.0) * 0.37).collect();
            for relu_on in [false, true] {
                let epi = Epilogue { bias: Some(&bias), relu: relu_on };
                let mut plain = vec![0.0f32; m * n];
                gemm::gemm_on(
                    path,
                    ta,
                    tb,
                    m,
                    n,
                    k,
                    0.5,
                    &x.a,
                    x.lda,
                    &x.b,
                    x.ldb,
                    0.0,
                    Output::F32(&mut plain),
                    n,
                    Epilogue::default(),
                );
                let unfused: Vec<f32> = plain
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let v = v + bias[i % n];
                        if relu_on { relu(v) } else { v }
                    })
                    .collect();
                let mut f = vec![f32::NAN; m * n];
                gemm::gemm_on(path, ta, tb, m, n, k, 0.5, &x.a, x.lda, &x.b, x.ldb, 0.0, Output::F32(&mut f), n, epi);
                let mut h = vec![f16::NAN; m * n];
                gemm::gemm_on(path, ta, tb, m, n, k, 0.5, &x.a, x.lda, &x.b, x.ldb, 0.0, Output::F16(&mut h), n, epi);
                let mut b = vec![bf16::NAN; m * n];
                gemm::gemm_on(path, ta, tb, m, n, k, 0.5, &x.a, x.lda, &x.b, x.ldb, 0.0, Output::Bf16(&mut b), n, epi);
                for i in 0..m * n {
                    let tag = format!("{what} {ta:?}{tb:?} {m}x{n}x{k} relu={relu_on} [{i}]");
                    assert_eq!(f[i].to_bits(), unfused[i].to_bits(), "{tag}: f32 {} vs {}", f[i], unfused[i]);
                    assert_eq!(h[i].to_bits(), f16::from_f32(unfused[i]).to_bits(), "{tag}: f16");
                    assert_eq!(b[i].to_bits(), bf16::from_f32(unfused[i]).to_bits(), "{tag}: bf16");
                    if relu_on {
                        assert!(f[i] >= 0.0 && f[i].to_bits() >> 31 == 0, "{tag}: ReLU left {}", f[i]);
                    }
                }
            }
        }
    }
}

/// The fused bias + ReLU epilogue and the f16/bf16 outputs equal the unfused
/// composition (GEMM into f32, add the bias, ReLU, round once) bit for bit,
/// including products deeper than KC whose partial sums wait in f32.
#[test]
fn fused_epilogues_equal_the_unfused_composition() {
    for k in paths() {
        run_fused(&k.gemm.sgemm, &format!("{} sgemm", k.isa), |x| x, |x| x);
        run_fused(&k.gemm.hgemm, &format!("{} hgemm", k.isa), f16::from_f32, f16::to_f32);
        run_fused(&k.gemm.bgemm, &format!("{} bgemm", k.isa), bf16::from_f32, bf16::to_f32);
    }
    for (name, path) in gemm::hgemm_alternatives() {
        run_fused(&path, &format!("{name} hgemm"), f16::from_f32, f16::to_f32);
    }
}

/// `path` with its shallow kernels removed, so every tile runs on the MR×NR kernel.
fn without_shallow<T>(path: &Path<T>) -> Option<Path<T>> {
    match path {
        Path::F32(imp) if imp.tall.is_some() || imp.shallow.is_some() => {
            Some(Path::F32(gemm::Impl { tall: None, shallow: None, ..*imp }))
        }
        Path::F16(imp) if imp.tall.is_some() || imp.shallow.is_some() => {
            Some(Path::F16(gemm::Impl { tall: None, shallow: None, ..*imp }))
        }
        Path::Pairs(imp) if imp.tall.is_some() || imp.shallow.is_some() => {
            Some(Path::Pairs(gemm::Impl { tall: None, shallow: None, ..*imp }))
        }
        _ => None,
    }
}

/// The deepest product a path's shallow kernel takes (0 without one).
fn shallow_max_k<T>(path: &Path<T>) -> usize {
    fn of<T, P>(imp: &gemm::Impl<T, P>) -> usize {
        imp.tall.as_ref().map_or(0, |t| t.max_k).max(imp.shallow.as_ref().map_or(0, |s| s.max_k))
    }
    match path {
        Path::F32(imp) => of(imp),
        Path::F16(imp) => of(imp),
        Path::Pairs(imp) => of(imp),
    }
}

fn run_shallow<T: Element>(path: &Path<T>, what: &str, conv: impl Fn(f32) -> T + Copy, back: impl Fn(T) -> f32 + Copy) {
    let Some(plain) = without_shallow(path) else {
        return;
    };
    // Every depth up to the kernel's deepest (odd and even), rows past
    // several groups with a ragged end, columns with full and partial
    // vectors and panels; more than 256 rows and 512 columns (the bf16
    // shallow kernel's row chunks and packed column blocks) with tails.
    let mut shapes = vec![
        (1, 1, 1),
        (5, 17, 3),
        (37, 33, 10),
        (128, 70, 12),
        (131, 45, 11),
        (29, 64, 7),
        (200, 10, 10),
        (3, 40, 13),
        (261, 1041, 9),
        (258, 530, 16),
    ];
    shapes.extend((1..=shallow_max_k(path)).map(|k| (2 * k + 5, [32, 47, 16, 75][k % 4], k)));
    let mut seed = 900;
    // Products that read A in place: the shallow kernel ran (pair-packed
    // paths take it only for A stored m×k).
    let mut direct = 0;
    // ... of which with op(B) stored n×k read in place by columns.
    let mut cols = 0;
    for &(m, n, k) in &shapes {
        for &(ta, tb) in &TS {
            seed += 1;
            let x = mats(ta, tb, m, n, k, (seed % 3) as usize, seed, conv, back);
            let ldc = n + (seed % 5) as usize;
            let mut rng = SplitMix(seed ^ 0x5A);
            let c0: Vec<f32> = (0..gemm::required_len(m, n, ldc)).map(|_| rng.next_f32()).collect();
            let bias: Vec<f32> = (0..n).map(|j| (j as f32 - 7.0) * 0.29).collect();
            let tag = format!("{what} {ta:?}{tb:?} {m}x{n}x{k}");
            for (alpha, beta, epi) in [
                (1.0, 0.0, Epilogue::default()),
                (-0.75, 0.0, Epilogue::default()),
                (-0.75, 1.5, Epilogue::default()),
                (1.0, 1.0, Epilogue::default()),
                (0.5, 0.0, Epilogue { bias: Some(&bias), relu: true }),
            ] {
                let run = |p: &Path<T>, out: Output<'_>| {
                    gemm::gemm_on(p, ta, tb, m, n, k, alpha, &x.a, x.lda, &x.b, x.ldb, beta, out, ldc, epi)
                };
                let (mut got, mut want) = (c0.clone(), c0.clone());
                if beta == 0.0 {
                    got.iter_mut().chain(want.iter_mut()).for_each(|v| *v = f32::NAN);
                }
                run(path, Output::F32(&mut got));
                let stats = gemm::last_call_stats();
                direct += usize::from(!stats.packed_a);
                cols += usize::from(!stats.packed_a && !stats.packed_b && tb == Transpose::Yes);
                run(&plain, Output::F32(&mut want));
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{tag} alpha {alpha} beta {beta}: C[{i}] = {g}, MR×NR kernel {w}"
                    );
                }
                if epi.bias.is_none() {
                    check(&tag, ta, tb, m, n, k, &x, alpha, beta, &c0, &got, ldc);
                }
                if beta == 0.0 {
                    let (mut h, mut hw) = (vec![f16::NAN; c0.len()], vec![f16::NAN; c0.len()]);
                    run(path, Output::F16(&mut h));
                    run(&plain, Output::F16(&mut hw));
                    assert!(h.iter().zip(&hw).all(|(a, b)| a.to_bits() == b.to_bits()), "{tag}: f16 output");
                    let (mut b, mut bw) = (vec![bf16::NAN; c0.len()], vec![bf16::NAN; c0.len()]);
                    run(path, Output::Bf16(&mut b));
                    run(&plain, Output::Bf16(&mut bw));
                    assert!(b.iter().zip(&bw).all(|(a, b)| a.to_bits() == b.to_bits()), "{tag}: bf16 output");
                }
            }
        }
    }
    assert!(direct >= 8, "{what}: the shallow kernel ran {direct} times");
    assert!(cols >= 8, "{what}: the shallow kernel read op(B) by columns {cols} times");
}

/// Shallow products (k up to 13, m well past MR) on the paths with a shallow
/// kernel give the MR×NR kernel's results bit for bit, for every transpose,
/// alpha/beta, the fused epilogue and f16/bf16 outputs, within the bound.
#[test]
fn shallow_products_equal_the_micro_kernel() {
    for k in paths() {
        run_shallow(&k.gemm.sgemm, &format!("{} sgemm", k.isa), |x| x, |x| x);
        run_shallow(&k.gemm.hgemm, &format!("{} hgemm", k.isa), f16::from_f32, f16::to_f32);
        run_shallow(&k.gemm.bgemm, &format!("{} bgemm", k.isa), bf16::from_f32, bf16::to_f32);
    }
}

/// Shallow products large enough to split (m·n·k ≥ 2^21) give bit-identical
/// results on 1, 2, 3 and 4 threads, for A stored m×k and both layouts of B.
#[test]
fn shallow_products_are_bit_identical_for_any_thread_count() {
    for kt in paths() {
        let path = &kt.gemm.bgemm;
        if without_shallow(path).is_none() {
            continue;
        }
        let (m, n, k) = if under_emulation() { (1030, 200, 10) } else { (4099, 70, 10) };
        for tb in [Transpose::No, Transpose::Yes] {
            let x = mats(Transpose::No, tb, m, n, k, 1, 17, bf16::from_f32, bf16::to_f32);
            let mut reference: Option<Vec<f32>> = None;
            for threads in [1, 2, 3, 4] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut c = vec![f32::NAN; m * n];
                let stats = pool.install(|| {
                    let out = Output::F32(&mut c);
                    gemm::gemm_on(
                        path,
                        Transpose::No,
                        tb,
                        m,
                        n,
                        k,
                        1.0,
                        &x.a,
                        x.lda,
                        &x.b,
                        x.ldb,
                        0.0,
                        out,
                        n,
                        Epilogue::default(),
                    );
                    gemm::last_call_stats()
                });
                assert!(!stats.packed_a && !stats.packed_b, "{}: the shallow kernel did not run", kt.isa);
                if threads > 1 && m * n * k >= 1 << 21 {
                    assert!(stats.tasks > 1, "{}: {threads} threads ran {} task(s)", kt.isa, stats.tasks);
                }
                match &reference {
                    None => reference = Some(c),
                    Some(r) => assert!(
                        r.iter().zip(&c).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{} bgemm {tb:?}: {threads} threads changed the bits",
                        kt.isa
                    ),
                }
            }
        }
    }
}

/// bgemm's shallow products with subnormal bf16 inputs give the MR×NR
/// kernel's bits (on the `vdpbf16ps` path both count them as zero), and
/// alpha = 0 reads neither operand (NaN A) on every path.
#[test]
fn shallow_bgemm_subnormals_and_alpha_zero() {
    for kt in paths() {
        let path = &kt.gemm.bgemm;
        let Some(plain) = without_shallow(path) else {
            continue;
        };
        let (m, n, k) = (21, 40, 9);
        for tb in [Transpose::No, Transpose::Yes] {
            let mut x = mats(Transpose::No, tb, m, n, k, 2, 31, bf16::from_f32, bf16::to_f32);
            // Every third element of A and fifth of B subnormal (± 2^-130 and so on).
            for (i, v) in x.a.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
                *v = bf16::from_bits((0x0001 + (i as u16 % 0x7F)) | if i % 2 == 0 { 0x8000 } else { 0 });
            }
            for (i, v) in x.b.iter_mut().enumerate().filter(|(i, _)| i % 5 == 0) {
                *v = bf16::from_bits(0x0040 + (i as u16 % 0x3F));
            }
            let run = |p: &Path<bf16>, alpha: f32, a: &[bf16], c: &mut [f32]| {
                let out = Output::F32(c);
                gemm::gemm_on(
                    p,
                    Transpose::No,
                    tb,
                    m,
                    n,
                    k,
                    alpha,
                    a,
                    x.lda,
                    &x.b,
                    x.ldb,
                    0.5,
                    out,
                    n,
                    Epilogue::default(),
                )
            };
            let c0: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.25 - 3.0).collect();
            let (mut got, mut want) = (c0.clone(), c0.clone());
            run(path, 1.5, &x.a, &mut got);
            run(&plain, 1.5, &x.a, &mut want);
            assert!(
                got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()),
                "{} bgemm {tb:?}: subnormal inputs",
                kt.isa
            );
            let nan_a = vec![bf16::NAN; x.a.len()];
            let mut c = c0.clone();
            run(path, 0.0, &nan_a, &mut c);
            assert!(c.iter().zip(&c0).all(|(g, w)| *g == 0.5 * w), "{} bgemm {tb:?}: alpha = 0", kt.isa);
        }
    }
}

/// With alpha = 0 the epilogue still applies to beta·C, and A/B (NaN) are not read.
#[test]
fn epilogue_with_alpha_zero_reads_neither_operand() {
    let a = vec![f32::NAN; 6];
    let b = vec![f32::NAN; 6];
    let bias = [1.0f32, -5.0];
    let mut c = vec![2.0f32, 2.0, 2.0, 2.0, 2.0, 2.0];
    let epi = Epilogue { bias: Some(&bias), relu: true };
    gemm::gemm_ex(Transpose::No, Transpose::No, 3, 2, 2, 0.0, &a, 2, &b, 2, 0.5, Output::F32(&mut c), 2, epi);
    assert_eq!(c, vec![2.0, 0.0, 2.0, 0.0, 2.0, 0.0]);
    let mut h = vec![f16::NAN; 6];
    gemm::gemm_ex(Transpose::No, Transpose::No, 3, 2, 0, 1.0, &a, 0, &b, 2, 0.0, Output::F16(&mut h), 2, epi);
    assert_eq!(h, vec![f16::ONE, f16::ZERO, f16::ONE, f16::ZERO, f16::ONE, f16::ZERO]);
}

#[test]
#[should_panic(expected = "needs an f32 C")]
fn low_precision_output_rejects_beta() {
    let mut h = vec![f16::ZERO; 4];
    gemm::gemm_ex(
        Transpose::No,
        Transpose::No,
        2,
        2,
        2,
        1.0,
        &[1.0f32; 4],
        2,
        &[1.0; 4],
        2,
        1.0,
        Output::F16(&mut h),
        2,
        Epilogue::default(),
    );
}

#[test]
#[should_panic(expected = "bias holds 1 values")]
fn short_bias_is_rejected() {
    let mut c = vec![0.0f32; 4];
    let epi = Epilogue { bias: Some(&[1.0]), relu: false };
    gemm::gemm_ex(
        Transpose::No,
        Transpose::No,
        2,
        2,
        2,
        1.0,
        &[1.0f32; 4],
        2,
        &[1.0; 4],
        2,
        0.0,
        Output::F32(&mut c),
        2,
        epi,
    );
}

/// Every path's bf16 pair packers reproduce the portable layout exactly:
/// both transposes, odd and even depths, short panels, unaligned starts.
#[test]
fn pair_packers_match_the_reference_layout() {
    use mixprec_kernels::gemm::pack::{pack_a_bf16_pairs_generic, pack_b_bf16_pairs_generic};
    let mut rng = SplitMix(0x9A1B);
    let src: Vec<bf16> = (0..80 * 80).map(|_| bf16::from_bits(rng.next_u64() as u16)).collect();
    for kt in paths() {
        let Path::Pairs(imp) = kt.gemm.bgemm else { continue };
        let (mr, nr) = (imp.shape.mr, imp.shape.nr);
        for t in [Transpose::No, Transpose::Yes] {
            for depth in [1usize, 2, 3, 16, 31, 33, 64] {
                for (start, count) in [(0, 1), (3, mr - 1), (5, mr)] {
                    let ld = 80;
                    let pairs = depth.div_ceil(2);
                    let (mut want, mut got) = (vec![7u32; count * pairs], vec![9u32; count * pairs]);
                    pack_a_bf16_pairs_generic(&src, ld, t, start, count, 7, depth, &mut want);
                    (imp.pack_a.f)(&src, ld, t, start, count, 7, depth, &mut got);
                    assert_eq!(got, want, "{} pack_a {t:?} depth {depth} rows {count}", kt.isa);
                }
                for (start, count) in [(0, 1), (3, nr - 1), (1, nr), (9, 17)] {
                    let ld = 80;
                    let pairs = depth.div_ceil(2);
                    let (mut want, mut got) = (vec![7u32; nr * pairs], vec![9u32; nr * pairs]);
                    pack_b_bf16_pairs_generic(&src, ld, t, start, count, 5, depth, nr, &mut want);
                    (imp.pack_b.f)(&src, ld, t, start, count, 5, depth, nr, &mut got);
                    assert_eq!(got, want, "{} pack_b {t:?} depth {depth} cols {count}", kt.isa);
                }
            }
        }
    }
}

fn check_packers<T: Copy, P: Copy + PartialEq + std::fmt::Debug>(
    what: &str,
    imp: &gemm::Impl<T, P>,
    src: &[T],
    fill: (P, P),
    ref_a: impl Fn(&[T], usize, Transpose, usize, usize, usize, usize, &mut [P]),
    ref_b: impl Fn(&[T], usize, Transpose, usize, usize, usize, usize, usize, &mut [P]),
) {
    let (mr, nr, ld) = (imp.shape.mr, imp.shape.nr, 80);
    for t in [Transpose::No, Transpose::Yes] {
        for depth in [1usize, 2, 3, 4, 5, 16, 31, 33, 64] {
            for (start, count) in [(0, 1), (3, 2), (2, 3), (3, mr - 1), (5, mr)] {
                let (mut want, mut got) = (vec![fill.0; count * depth], vec![fill.1; count * depth]);
                ref_a(src, ld, t, start, count, 7, depth, &mut want);
                (imp.pack_a.f)(src, ld, t, start, count, 7, depth, &mut got);
                assert_eq!(got, want, "{what} pack_a {t:?} depth {depth} rows {count}");
            }
            for (start, count) in [(0, 1), (3, nr - 1), (1, nr), (9, 5), (2, nr / 2 + 1)] {
                let (mut want, mut got) = (vec![fill.0; nr * depth], vec![fill.1; nr * depth]);
                ref_b(src, ld, t, start, count, 5, depth, nr, &mut want);
                (imp.pack_b.f)(src, ld, t, start, count, 5, depth, nr, &mut got);
                assert_eq!(got, want, "{what} pack_b {t:?} depth {depth} cols {count}");
            }
        }
    }
}

/// Every path's f32 and f16 packers reproduce the portable layout exactly
/// (values widened exactly, zero padding, transposes, unaligned starts, depths
/// around the 4-, 8- and 16-step blocks of the SIMD packers).
#[test]
fn packers_match_the_reference_layout() {
    use mixprec_kernels::gemm::pack::{pack_a_f16_generic, pack_a_f32_generic, pack_b_f16_generic, pack_b_f32_generic};
    let mut rng = SplitMix(0x5EED);
    let s32: Vec<f32> = (0..80 * 80).map(|_| rng.next_f32()).collect();
    let s16: Vec<f16> = s32.iter().map(|&x| f16::from_f32(x)).collect();
    let sb16: Vec<bf16> = s32.iter().map(|&x| bf16::from_f32(x)).collect();
    let fill = (7.0f32, 9.0f32);
    let mut seen = 0;
    for kt in paths() {
        if let Path::F32(imp) = &kt.gemm.sgemm {
            check_packers(&format!("{} sgemm", kt.isa), imp, &s32, fill, pack_a_f32_generic, pack_b_f32_generic);
            seen += 1;
        }
        match &kt.gemm.hgemm {
            Path::F32(imp) => {
                check_packers(&format!("{} hgemm", kt.isa), imp, &s16, fill, pack_a_f32_generic, pack_b_f32_generic)
            }
            Path::F16(imp) => {
                let fill = (f16::from_f32(7.0), f16::from_f32(9.0));
                check_packers(&format!("{} hgemm", kt.isa), imp, &s16, fill, pack_a_f16_generic, pack_b_f16_generic)
            }
            Path::Pairs(_) => {}
        }
        if let Path::F32(imp) = &kt.gemm.bgemm {
            check_packers(&format!("{} bgemm", kt.isa), imp, &sb16, fill, pack_a_f32_generic, pack_b_f32_generic);
        }
    }
    assert!(seen > 0);
}

/// On AVX-512-FP16 CPUs bgemm widens bf16 while packing into the FP32 kernel
/// instead of the `vdpbf16ps` pair kernel, which runs at half the FMA rate
/// there (docs/kernels.md).
#[test]
fn avx512fp16_bgemm_widens_into_the_f32_kernel() {
    let Some(t) = mixprec_kernels::table(mixprec_kernels::Isa::Avx512Fp16) else {
        eprintln!("skipped path avx512fp16: not available here");
        return;
    };
    assert!(matches!(t.gemm.bgemm, Path::F32(_)), "avx512fp16 bgemm: {:?}", t.gemm.bgemm.shape());
    assert_eq!(t.gemm.bgemm.shape().kpack, 1);
}

/// `path` with its narrow and dot kernels removed, so narrow products run untransposed.
fn without_narrow<T>(path: &Path<T>) -> Option<Path<T>> {
    match path {
        Path::F32(imp) if imp.narrow.is_some() || imp.dot.is_some() => {
            Some(Path::F32(gemm::Impl { narrow: None, dot: None, ..*imp }))
        }
        Path::F16(imp) if imp.narrow.is_some() || imp.dot.is_some() => {
            Some(Path::F16(gemm::Impl { narrow: None, dot: None, ..*imp }))
        }
        Path::Pairs(imp) if imp.narrow.is_some() || imp.dot.is_some() => {
            Some(Path::Pairs(gemm::Impl { narrow: None, dot: None, ..*imp }))
        }
        _ => None,
    }
}

fn run_narrow<T: Element>(path: &Path<T>, what: &str, conv: impl Fn(f32) -> T + Copy, back: impl Fn(T) -> f32 + Copy) {
    let plain = without_narrow(path);
    let kc = Blocking::new(path.shape(), detected_caches()).kc;
    let (mr, nr) = (path.shape().mr, path.shape().nr);
    // n from 1 to MR, m from 2·NR (the narrow paths' threshold) past several
    // NR panels with a ragged last one, k from 1 to past KC (partial sums in
    // the f32 scratch for f16/bf16 outputs), odd and even; the MLP's n = 10
    // shapes.
    let shapes = [
        (2 * nr, 1, 1),
        (2 * nr + 1, mr, 3),
        (128, 10, 512),
        (512, 10, 128),
        (97, 7, 33),
        (130, 2, kc + 3),
        (200, 10, 10),
        (75, 13, 2 * kc + 1),
        (66, 5, 47),
    ];
    let dot_min_k = match path {
        Path::F32(i) => i.dot.as_ref().map(|d| d.min_k),
        Path::F16(i) => i.dot.as_ref().map(|d| d.min_k),
        Path::Pairs(i) => i.dot.as_ref().map(|d| d.min_k),
    };
    let mut seed = 4200;
    let (mut transposed, mut dot, mut want_dot) = (0, 0, 0);
    for &(m, n, k) in &shapes {
        for &(ta, tb) in &TS {
            seed += 1;
            let x = mats(ta, tb, m, n, k, (seed % 3) as usize, seed, conv, back);
            let ldc = n + (seed % 5) as usize;
            let mut rng = SplitMix(seed ^ 0x77);
            let c0: Vec<f32> = (0..gemm::required_len(m, n, ldc)).map(|_| rng.next_f32()).collect();
            let bias: Vec<f32> = (0..n).map(|j| (j as f32 - 4.0) * 0.31).collect();
            let tag = format!("{what} narrow {ta:?}{tb:?} {m}x{n}x{k} ldc {ldc}");
            for (alpha, beta, epi) in [
                (1.0, 0.0, Epilogue::default()),
                (-0.75, 1.5, Epilogue::default()),
                (1.0, 1.0, Epilogue::default()),
                (0.5, 0.0, Epilogue { bias: Some(&bias), relu: true }),
                (1.0, 0.0, Epilogue { bias: Some(&bias), relu: false }),
            ] {
                let run = |p: &Path<T>, out: Output<'_>, epi: Epilogue<'_>| {
                    gemm::gemm_on(p, ta, tb, m, n, k, alpha, &x.a, x.lda, &x.b, x.ldb, beta, out, ldc, epi);
                    gemm::last_call_stats()
                };
                let mut got = c0.clone();
                if beta == 0.0 {
                    got.iter_mut().for_each(|v| *v = f32::NAN);
                }
                let stats = run(path, Output::F32(&mut got), epi);
                transposed += usize::from(stats.transposed);
                dot += usize::from(stats.dot);
                want_dot += usize::from(ta == Transpose::No && dot_min_k.is_some_and(|d| k >= d));
                if epi.bias.is_none() {
                    check(&tag, ta, tb, m, n, k, &x, alpha, beta, &c0, &got, ldc);
                }
                for i in 0..m - 1 {
                    let pad = &got[i * ldc + n..(i + 1) * ldc];
                    let was = &c0[i * ldc + n..(i + 1) * ldc];
                    let kept =
                        pad.iter().zip(was).all(|(a, b)| a.to_bits() == b.to_bits() || beta == 0.0 && a.is_nan());
                    assert!(kept, "{tag}: padding of row {i} written");
                }
                // The reference: the untransposed product on the same path
                // (same FMAs, so the same bits), or for the dot kernel, whose
                // sums are ordered differently, its own product without the
                // epilogue, composed with it.
                let (want, reference) = if stats.dot {
                    let mut base = vec![f32::NAN; c0.len()];
                    if beta != 0.0 {
                        base.copy_from_slice(&c0);
                    }
                    assert!(run(path, Output::F32(&mut base), Epilogue::default()).dot);
                    let composed: Vec<f32> = base
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| match epi.bias {
                            Some(b) if i % ldc < n => {
                                let v = v + b[i % ldc];
                                if epi.relu { relu(v) } else { v }
                            }
                            _ => v,
                        })
                        .collect();
                    (composed, None)
                } else {
                    let Some(plain) = &plain else { continue };
                    let mut want = c0.clone();
                    if beta == 0.0 {
                        want.iter_mut().for_each(|v| *v = f32::NAN);
                    }
                    let s = run(plain, Output::F32(&mut want), epi);
                    assert!(!s.transposed && !s.dot, "{tag}: the plain path ran a narrow kernel");
                    (want, Some(plain))
                };
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{tag} alpha {alpha} beta {beta}: C[{i}] = {g}, reference {w}"
                    );
                }
                if beta == 0.0 {
                    let (mut h, mut b) = (vec![f16::NAN; c0.len()], vec![bf16::NAN; c0.len()]);
                    run(path, Output::F16(&mut h), epi);
                    run(path, Output::Bf16(&mut b), epi);
                    let (hw, bw): (Vec<f16>, Vec<bf16>) = match reference {
                        Some(plain) => {
                            let (mut hw, mut bw) = (vec![f16::NAN; c0.len()], vec![bf16::NAN; c0.len()]);
                            run(plain, Output::F16(&mut hw), epi);
                            run(plain, Output::Bf16(&mut bw), epi);
                            (hw, bw)
                        }
                        // One rounding of the f32 result; padding untouched (NaN).
                        None => (
                            got.iter().map(|&v| f16::from_f32(v)).collect(),
                            got.iter().map(|&v| bf16::from_f32(v)).collect(),
                        ),
                    };
                    // Padding must keep the NaN it was filled with.
                    let (hn, bn) = (f16::NAN.to_bits(), bf16::NAN.to_bits());
                    let ok = |a: u16, b: u16, nan: u16, i: usize| if i % ldc < n { a == b } else { a == nan };
                    let dh = h.iter().zip(&hw).enumerate().position(|(i, (a, b))| !ok(a.to_bits(), b.to_bits(), hn, i));
                    assert!(dh.is_none(), "{tag} alpha {alpha}: f16 output differs at {dh:?}");
                    let db = b.iter().zip(&bw).enumerate().position(|(i, (a, b))| !ok(a.to_bits(), b.to_bits(), bn, i));
                    assert!(db.is_none(), "{tag} alpha {alpha}: bf16 output differs at {db:?}");
                }
            }
        }
    }
    if plain.is_some() {
        // Every product with A stored k×m ran transposed; with a dot kernel
        // every one with A stored m×k and k from its `min_k` ran on it.
        let all = shapes.len() * TS.len() * 5;
        let ok = transposed >= all / 2 && dot == want_dot;
        assert!(ok, "{what}: transposed {transposed}, dot {dot} (expected {want_dot}) of {all}");
    } else {
        assert_eq!(transposed + dot, 0, "{what}: a path without narrow kernels ran one");
    }
}

/// Narrow products (n ≤ MR, m ≥ 2·NR: the MLP's n = 10 layer) on every
/// path: within the bound, padding of C untouched; where the path has a
/// narrow kernel (Cᵀ = op(B)ᵀ·op(A)ᵀ, stored transposed) bit-identical to
/// the untransposed product for every transpose, alpha/beta (beta = 0 over a
/// NaN C), the fused epilogue, f16/bf16 outputs and depths past KC; where it
/// has a dot kernel (A stored m×k), the fused epilogue and the f16/bf16
/// outputs bit-identical to the composition of its own f32 product.
#[test]
fn narrow_products_equal_the_untransposed_product() {
    for k in paths() {
        run_narrow(&k.gemm.sgemm, &format!("{} sgemm", k.isa), |x| x, |x| x);
        run_narrow(&k.gemm.hgemm, &format!("{} hgemm", k.isa), f16::from_f32, f16::to_f32);
        run_narrow(&k.gemm.bgemm, &format!("{} bgemm", k.isa), bf16::from_f32, bf16::to_f32);
    }
    for (name, path) in gemm::hgemm_alternatives() {
        run_narrow(&path, &format!("{name} hgemm"), f16::from_f32, f16::to_f32);
    }
}
fn run_narrow_threads<T: Element>(
    path: &Path<T>,
    what: &str,
    conv: impl Fn(f32) -> T + Copy,
    back: impl Fn(T) -> f32 + Copy,
) {
    let (m, n, k) = (4099, 10, if under_emulation() { 53 } else { 301 });
    for &(ta, tb) in &TS {
        let x = mats(ta, tb, m, n, k, 2, 17, conv, back);
        let mut reference: Option<Vec<f32>> = None;
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = vec![f32::NAN; m * n];
            let stats = pool.install(|| {
                gemm::gemm_on(
                    path,
                    ta,
                    tb,
                    m,
                    n,
                    k,
                    1.0,
                    &x.a,
                    x.lda,
                    &x.b,
                    x.ldb,
                    0.0,
                    Output::F32(&mut c),
                    n,
                    Epilogue::default(),
                );
                gemm::last_call_stats()
            });
            if threads > 1 && m * n * k >= 1 << 21 {
                assert!(stats.tasks > 1, "{what}: {threads} threads ran {} task(s)", stats.tasks);
            }
            match &reference {
                None => reference = Some(c),
                Some(r) => assert!(
                    r.iter().zip(&c).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{what} {ta:?}{tb:?}: {threads} threads changed the bits"
                ),
            }
        }
    }
}

/// Narrow products give bit-identical results for 1, 2 and 3 threads.
#[test]
fn narrow_products_are_bit_identical_for_any_thread_count() {
    for k in paths() {
        run_narrow_threads(&k.gemm.sgemm, &format!("{} sgemm", k.isa), |x| x, |x| x);
        run_narrow_threads(&k.gemm.hgemm, &format!("{} hgemm", k.isa), f16::from_f32, f16::to_f32);
        run_narrow_threads(&k.gemm.bgemm, &format!("{} bgemm", k.isa), bf16::from_f32, bf16::to_f32);
    }
    for (name, path) in gemm::hgemm_alternatives() {
        run_narrow_threads(&path, &format!("{name} hgemm"), f16::from_f32, f16::to_f32);
    }
}

/// `path` with its wide kernel taking every product it can (f32, A stored
/// m×k), where the path has one.
fn wide_everywhere<T: Element>(path: &Path<T>) -> Option<Path<T>> {
    match path {
        Path::F32(imp) => imp.wide.map(|w| {
            let wide = gemm::Wide { min_m: 1, min_n: 1, min_k: 1, ..w };
            Path::F32(gemm::Impl { wide: Some(wide), ..*imp })
        }),
        _ => None,
    }
}

/// `path` without its wide kernel.
fn without_wide<T: Element>(path: &Path<T>) -> Path<T> {
    match path {
        Path::F32(imp) => Path::F32(gemm::Impl { wide: None, ..*imp }),
        other => *other,
    }
}

/// The wide kernel (4×96, A's rows in place), forced onto every shape: the
/// f64 bound on the MR×NR kernel's blocking edges and on its own (tiles of
/// 1 to 5 rows, 95 to 97 and 193 columns, KC±1), all transposes, padded
/// leading dimensions, beta = 0 over NaN, and bit-identical results to the
/// MR×NR kernel (same KC blocks, same FMAs per element); the installed
/// table takes it at 512³. sgemm, and hgemm (f16 widened exactly).
#[test]
fn wide_kernel_matches_the_oracle_and_the_micro_kernel() {
    let mut ran = false;
    for kt in paths() {
        let s = wide_matches(&kt.gemm.sgemm, &format!("{} sgemm wide", kt.isa), |x| x, |x| x);
        let h = wide_matches(&kt.gemm.hgemm, &format!("{} hgemm wide", kt.isa), f16::from_f32, f16::to_f32);
        assert_eq!(s, h, "{}: sgemm and hgemm share the wide kernel", kt.isa);
        ran |= s;
    }
    if mixprec_kernels::Isa::Avx512.is_available() {
        assert!(ran, "the avx512 path has a wide kernel for sgemm and hgemm");
    }
}

/// [`wide_kernel_matches_the_oracle_and_the_micro_kernel`] for one path;
/// false when it has no wide kernel.
fn wide_matches<T: Element>(
    installed: &Path<T>,
    what: &str,
    conv: impl Fn(f32) -> T + Copy,
    back: impl Fn(T) -> f32 + Copy,
) -> bool {
    {
        let Some(wide) = wide_everywhere(installed) else { return false };
        let what = what.to_string();
        run_edges(&what, &wide, conv, back);
        run_fused(&wide, &what, conv, back);
        let plain = without_wide(installed);
        let kc = Blocking::new(plain.shape(), detected_caches()).kc;
        let mut seed = 900;
        for &(ta, tb) in &TS {
            for m in [1, 3, 4, 5, 9] {
                for n in [1, 17, 95, 96, 97, 193] {
                    for k in [1, 7, kc - 1, kc + 1] {
                        seed += 1;
                        let x = mats(ta, tb, m, n, k, (seed % 3) as usize, seed, conv, back);
                        let ldc = n + (seed % 5) as usize;
                        let mut rng = SplitMix(seed ^ 0x77);
                        let c0: Vec<f32> = (0..gemm::required_len(m, n, ldc)).map(|_| rng.next_f32()).collect();
                        let (alpha, beta) = if seed % 2 == 0 { (1.0, 0.0) } else { (-0.75, 1.5) };
                        let run = |path: &Path<T>| {
                            let mut c = c0.clone();
                            if beta == 0.0 {
                                c.iter_mut().for_each(|v| *v = f32::NAN);
                                // Padding between rows keeps its value.
                                for i in 0..m {
                                    c[i * ldc + n..].iter_mut().take(ldc - n).for_each(|v| *v = 0.5);
                                }
                            }
                            gemm::gemm_on(
                                path,
                                ta,
                                tb,
                                m,
                                n,
                                k,
                                alpha,
                                &x.a,
                                x.lda,
                                &x.b,
                                x.ldb,
                                beta,
                                Output::F32(&mut c),
                                ldc,
                                Epilogue::default(),
                            );
                            (c, gemm::last_call_stats())
                        };
                        let (got, stats) = run(&wide);
                        let (want, _) = run(&plain);
                        let tag = format!("{what} {ta:?}{tb:?} {m}x{n}x{k}");
                        assert_eq!(stats.blocking.map(|b| b.nr) == Some(96), ta == Transpose::No, "{tag}: path taken");
                        check(&tag, ta, tb, m, n, k, &x, alpha, beta, &c0, &got, ldc);
                        for i in 0..m {
                            for j in n..ldc {
                                if let Some(&v) = got.get(i * ldc + j) {
                                    let orig = if beta == 0.0 { 0.5 } else { c0[i * ldc + j] };
                                    assert_eq!(v.to_bits(), orig.to_bits(), "{tag}: padding C[{i},{j}] written");
                                }
                            }
                        }
                        assert!(
                            got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{tag}: bits differ from the MR×NR kernel"
                        );
                    }
                }
            }
        }
        // The installed table takes the wide kernel for large products on
        // one or two threads, the MR×NR kernel on more, with the same bits.
        let s = 512;
        let x = mats(Transpose::No, Transpose::No, s, s, s, 0, 3, conv, back);
        let mut bits = Vec::new();
        for threads in [1, 2, 16] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let (c, stats) = pool.install(|| {
                let mut c = vec![0.0f32; s * s];
                gemm::gemm_on(
                    installed,
                    Transpose::No,
                    Transpose::No,
                    s,
                    s,
                    s,
                    1.0,
                    &x.a,
                    x.lda,
                    &x.b,
                    x.ldb,
                    0.0,
                    Output::F32(&mut c),
                    s,
                    Epilogue::default(),
                );
                (c, gemm::last_call_stats())
            });
            let wide = !stats.packed_a && stats.blocking.map(|b| (b.mr, b.nr)) == Some((4, 96));
            assert_eq!(wide, threads <= 2, "{what}, {threads} threads: {stats:?}");
            bits.push(c.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
        assert!(bits.windows(2).all(|w| w[0] == w[1]), "{what}: bits depend on the thread count");
    }
    true
}
