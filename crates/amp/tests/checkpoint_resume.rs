//! Bit-exact resume in every precision mode, with SGD (Nesterov momentum,
//! weight decay) and AdamW: N steps in one process, save; load in a new
//! process, M more steps, save; the result is byte-identical to N + M
//! uninterrupted steps (parameters, FP32 masters, optimizer state, scaler
//! state and skipped-step count, generator states, step counter).

#[path = "common/train.rs"]
mod train;

use std::path::{Path, PathBuf};

use std::process::Command;

use mixprec_amp::{Checkpoint, Precision};
use train::Run;

const ROLE: &str = "MIXPREC_CKPT_RESUME_CHILD";
const TEST: &str = "resume_in_a_new_process_is_bit_exact_in_every_mode";
const N: u64 = 5;
const M: u64 = 6;

fn child(role: &str) {
    let mut it = role.split(':');
    let (phase, precision, adam, dir) =
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let precision: Precision = precision.parse().unwrap();
    let mut run = Run::new(precision, adam == "adam");
    let dir = PathBuf::from(dir);
    if phase == "first" {
        run.train(N);
        run.capture().save(dir.join("first.safetensors")).unwrap();
    } else {
        let c = Checkpoint::load(dir.join("first.safetensors")).unwrap();
        run.restore(&c).unwrap();
        run.train(M);
        run.capture().save(dir.join("resumed.safetensors")).unwrap();
    }
}

fn spawn(phase: &str, precision: Precision, opt: &str, dir: &Path) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
        .env(ROLE, format!("{phase}:{precision}:{opt}:{}", dir.display()))
        .status()
        .unwrap();
    assert!(status.success(), "{phase} {precision} {opt}: the child failed");
}

#[test]
fn resume_in_a_new_process_is_bit_exact_in_every_mode() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    let root = std::env::temp_dir().join(format!("mixprec-resume-{}", std::process::id()));
    let mut checked = 0;
    for precision in Precision::ALL {
        for opt in ["sgd", "adam"] {
            let dir = root.join(format!("{precision}-{opt}"));
            std::fs::create_dir_all(&dir).unwrap();
            spawn("first", precision, opt, &dir);
            spawn("second", precision, opt, &dir);

            let mut straight = Run::new(precision, opt == "adam");
            straight.train(N + M);
            let expected = straight.capture();
            let resumed = Checkpoint::load(dir.join("resumed.safetensors")).unwrap();
            assert_eq!(resumed.step, N + M);
            let diff = resumed.differences(&expected);
            assert!(
                diff.is_empty(),
                "{precision} {opt}: the resumed run differs from the uninterrupted one in {diff:?}"
            );
            // The state was not trivial: the f16 modes skipped steps and
            // moved their scale; the optimizer has state for every parameter.
            if precision.default_loss_scaling() {
                let s = expected.scaler.unwrap();
                assert!(s.skipped_steps > 0, "{precision}: {s:?}");
            }
            eprintln!(
                "{precision} {opt}: {N}+{M} steps resumed bit-exactly (scaler {:?})",
                expected.scaler.map(|s| (s.state.scale, s.state.growth_tracker, s.skipped_steps))
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
    std::fs::remove_dir_all(&root).unwrap();
}
