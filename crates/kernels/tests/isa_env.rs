//! `MIXPREC_ISA` and `MIXPREC_FEATURES` as DESIGN.md specifies them: a bad
//! token panics at first use with a message naming it and the available
//! paths. Each case runs this test binary again as a child process with the
//! variable set, since the choice is made once per process.

use std::process::Command;

use mixprec_kernels::{Isa, active_isa, convert};

const CHILD: &str = "MIXPREC_ISA_ENV_CHILD";

/// In the child: touch a kernel (first use) and print the active path.
#[test]
fn child_entry() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let mut out = [half::f16::ZERO; 1];
    convert::f32_to_f16(&[1.0], &mut out);
    println!("ACTIVE={}", active_isa());
}

fn run_child(vars: &[(&str, &str)]) -> (bool, String) {
    let exe = std::env::current_exe().unwrap();
    // Under qemu-user (the aarch64 test script exports AARCH64_QEMU_CPU) the
    // child must be started through the emulator too.
    let mut cmd = match std::env::var("AARCH64_QEMU_CPU") {
        Ok(cpu) if cfg!(target_arch = "aarch64") => {
            let mut c = Command::new("qemu-aarch64");
            c.args(["-L", "/", "-cpu", &cpu]).arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"]).env(CHILD, "1");
    cmd.env_remove("MIXPREC_ISA").env_remove("MIXPREC_FEATURES");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn every_available_path_can_be_forced() {
    for isa in Isa::available() {
        let (ok, text) = run_child(&[("MIXPREC_ISA", isa.token())]);
        assert!(ok, "{text}");
        assert!(text.contains(&format!("ACTIVE={isa}\n")), "{text}");
    }
}

#[test]
fn unknown_token_panics_naming_it_and_the_available_paths() {
    let (ok, text) = run_child(&[("MIXPREC_ISA", "sse42")]);
    assert!(!ok, "{text}");
    assert!(text.contains("MIXPREC_ISA=sse42") && text.contains("unknown ISA token"), "{text}");
    assert!(text.contains("available here: scalar"), "{text}");
}

#[test]
fn missing_path_panics_instead_of_faulting() {
    let missing = Isa::compiled().iter().copied().find(|i| !i.is_available()).or(if cfg!(target_arch = "x86_64") {
        Some(Isa::Neon)
    } else {
        Some(Isa::Avx2)
    });
    let isa = missing.unwrap();
    let (ok, text) = run_child(&[("MIXPREC_ISA", isa.token())]);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("cannot run the `{isa}` path")), "{text}");
}

#[test]
fn bad_feature_mask_panics_naming_the_item() {
    let (ok, text) = run_child(&[("MIXPREC_FEATURES", "-bf16,-avx9")]);
    assert!(!ok, "{text}");
    assert!(text.contains("`-avx9`"), "{text}");
}
