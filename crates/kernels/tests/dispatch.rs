//! What the dispatcher chose, asserted rather than assumed: no training
//! kernel silently falls back to the scalar reference on a SIMD path, and the
//! CPU features detected under qemu are the ones the emulated CPU has.

use mixprec_kernels::{Isa, dispatch_report, features};

/// Kernels whose SIMD implementations have not landed yet, as `(kernel or
/// "family." prefix, paths)`. Each listed kernel must still be scalar there:
/// once a path implements it the test fails until the entry is narrowed or
/// removed, so this list only shrinks.
const PENDING: &[(&str, &[Isa])] = &[];

fn pending(kernel: &str, isa: Isa) -> bool {
    PENDING.iter().any(|(k, isas)| (kernel == *k || (k.ends_with('.') && kernel.starts_with(k))) && isas.contains(&isa))
}

#[test]
fn no_kernel_falls_back_to_scalar_on_a_simd_path() {
    // A fallback is a SIMD column naming the scalar column's implementation.
    let report = dispatch_report();
    eprintln!("{report}");
    let scalar = report.isas.iter().position(|&i| i == Isa::Scalar).expect("scalar column");
    let mut fallbacks = Vec::new();
    let mut stale = Vec::new();
    for (kernel, imps) in &report.rows {
        for (&isa, imp) in report.isas.iter().zip(imps) {
            if isa == Isa::Scalar {
                continue;
            }
            match (*imp == imps[scalar], pending(kernel, isa)) {
                (true, false) => fallbacks.push(format!("{kernel} on {isa}: {imp}")),
                (false, true) => stale.push(format!("{kernel} on {isa} is now {imp}: remove it from PENDING")),
                _ => {}
            }
        }
    }
    assert!(fallbacks.is_empty(), "scalar fallbacks on SIMD paths:\n{}", fallbacks.join("\n"));
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

/// `aarch64-test.sh` exports the qemu CPU model: `max` has FEAT_FP16 and
/// FEAT_FHM, `cortex-a72` has neither. Elsewhere this test says it did not run.
#[test]
fn detection_matches_the_emulated_cpu() {
    let Ok(cpu) = std::env::var("AARCH64_QEMU_CPU") else {
        eprintln!("AARCH64_QEMU_CPU not set: not under qemu, nothing to compare (features {:?})", features());
        return;
    };
    if !cfg!(target_arch = "aarch64") {
        panic!("AARCH64_QEMU_CPU={cpu} set on a non-aarch64 build");
    }
    assert!(Isa::available().contains(&Isa::Neon), "neon not detected under qemu -cpu {cpu}");
    let masked = std::env::var("MIXPREC_FEATURES").unwrap_or_default();
    let f = features();
    eprintln!("qemu -cpu {cpu}: detected {f:?} (MIXPREC_FEATURES={masked:?})");
    match cpu.as_str() {
        "max" => {
            assert!(f.fp16 || masked.contains("-fp16"), "qemu -cpu max: FP16 not detected");
            assert!(f.fhm || masked.contains("-fhm"), "qemu -cpu max: FHM not detected");
        }
        "cortex-a72" => {
            assert!(!f.fp16, "qemu -cpu cortex-a72 has no FP16, but it was detected");
            assert!(!f.fhm, "qemu -cpu cortex-a72 has no FHM, but it was detected");
        }
        other => eprintln!("qemu -cpu {other}: no expectation recorded"),
    }
}
