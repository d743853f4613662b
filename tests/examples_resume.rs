//! `--save` / `--resume` on the example binaries: a run stopped after some
//! steps (`--stop-after`) and resumed in a new process ends bit-identical to
//! the uninterrupted run (every tensor of the final checkpoint, the
//! scaler, the generators, the JSON record); a checkpoint of another model,
//! precision or recipe, or a damaged one, is refused with a typed error.
//!
//! The runs train on the first 256 training and test images of the shipped
//! MNIST (4 steps per epoch at batch 64), so epochs are short enough to
//! stop mid-epoch and on an epoch boundary in a few seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mixprec::amp::checkpoint::Checkpoint;
use mixprec::data::{MNIST_FILES, read_idx};
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples_resume-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} is not built (cargo test --workspace builds the examples)", path.display());
    path
}

fn run<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(name: &str, args: &[S]) -> Output {
    Command::new(example(name))
        .args(args)
        .env(mixprec::data::DATA_DIR_ENV, mixprec::data::shipped_dir())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mixprec-resume-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The first `n` items of each shipped MNIST file, written as raw IDX files
/// under the standard names in `dir`.
fn mnist_subset(dir: &Path, n: usize) {
    for name in MNIST_FILES {
        let (dims, data) =
            read_idx(mixprec::data::shipped_dir().join("mnist").join(format!("{name}.gz"))).unwrap().into_parts();
        let item: usize = dims[1..].iter().product();
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        out.extend((n as u32).to_be_bytes());
        for d in &dims[1..] {
            out.extend((*d as u32).to_be_bytes());
        }
        out.extend(&data[..n * item]);
        std::fs::write(dir.join(name), out).unwrap();
    }
}

/// Runs `name` and returns its JSON record; fails the test on an error exit.
fn record<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    name: &str,
    args: &[S],
) -> (serde_json::Map<String, Value>, String) {
    let out = run(name, args);
    assert!(out.status.success(), "{name} {args:?}: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    (v.as_object().unwrap().clone(), text(&out.stderr))
}

/// The record's fields that a resumed run must reproduce exactly (not
/// timings, thread counts or memory peaks).
fn outcome(r: &serde_json::Map<String, Value>) -> Vec<(String, Value)> {
    ["steps", "final_train_loss", "test_accuracy", "val_loss_nats", "skipped_steps", "final_loss_scale"]
        .iter()
        .map(|k| (k.to_string(), r[*k].clone()))
        .collect()
}

/// `a` then `b`, owned.
fn cat(a: &[&str], b: &[&str]) -> Vec<String> {
    a.iter().chain(b).map(|x| x.to_string()).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Stops `name` after `stop` of its steps with `--save`, resumes it in a
/// new process (on another thread count) and checks the result against the
/// uninterrupted run: the final checkpoints have no bit of difference and
/// the records agree. Returns the uninterrupted run's checkpoint.
fn stop_resume_matches(name: &str, flags: &[&str], stop: u64, dir: &Path) -> Checkpoint {
    let (a, b, c) = (dir.join("stopped"), dir.join("resumed"), dir.join("whole"));
    let with = |extra: &[&str]| cat(flags, extra);
    let stop_s = stop.to_string();
    let (ra, _) = record(name, &with(&["--json", "--threads", "2", "--save", s(&a), "--stop-after", &stop_s]));
    assert_eq!(ra["steps"].as_u64(), Some(stop), "{name} {flags:?}");
    assert_eq!(Checkpoint::load_from(&a).unwrap().step, stop, "{name} {flags:?}");
    let (rb, _) = record(name, &with(&["--json", "--threads", "1", "--resume", s(&a), "--save", s(&b)]));
    let (rc, _) = record(name, &with(&["--json", "--threads", "2", "--save", s(&c)]));
    assert_eq!(outcome(&rb), outcome(&rc), "{name} {flags:?}: resumed vs uninterrupted record");
    let (cb, cc) = (Checkpoint::load_from(&b).unwrap(), Checkpoint::load_from(&c).unwrap());
    assert_eq!(cb.differences(&cc), Vec::<String>::new(), "{name} {flags:?}: resumed vs uninterrupted checkpoint");
    assert!(cc.step > stop, "{name} {flags:?}");
    cc
}

#[test]
fn mnist_mlp_resumes_bit_exactly_in_f32_and_both_master_weight_modes() {
    let dir = scratch("mlp");
    mnist_subset(&dir, 256);
    let data = dir.to_str().unwrap().to_string();
    // 4 steps per epoch, 3 epochs: stop mid-epoch (6, 10: the last epoch, whose
    // losses make the record's final_train_loss) and on a boundary (8).
    for (precision, stop, scaled) in
        [("f32", 6, false), ("master-weights", 10, true), ("master-weights-bf16", 8, false)]
    {
        let run_dir = dir.join(precision);
        let flags = ["--data", &data, "--batch-size", "64", "--epochs", "3", "--precision", precision];
        let c = stop_resume_matches("mnist_mlp", &flags, stop, &run_dir);
        assert_eq!((c.model.as_str(), c.step), ("mnist_mlp", 12));
        assert_eq!(c.masters.is_empty(), precision == "f32", "{precision}");
        assert_eq!(c.scaler.unwrap().enabled, scaled, "{precision}");
        assert!(c.optimizer.is_some() && c.rngs.len() == 1, "{precision}");
    }
    // Saves land at each epoch's end by default, every N steps with
    // --save-every, and always at the end.
    let every = |extra: &[&str]| {
        let save = dir.join("every");
        let mut args = vec!["--data", &data, "--batch-size", "64", "--epochs", "2", "--steps", "7", "--json"];
        args.extend(["--save", s(&save)]);
        args.extend(extra);
        let (_, stderr) = record("mnist_mlp", &args);
        stderr
            .lines()
            .filter_map(|l| l.strip_prefix("saved step ")?.split(' ').next()?.parse().ok())
            .collect::<Vec<u64>>()
    };
    assert_eq!(every(&[]), [4, 7]);
    assert_eq!(every(&["--save-every", "3"]), [3, 6, 7]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mnist_cnn_resumes_bit_exactly_with_batch_norm_statistics() {
    let dir = scratch("cnn");
    mnist_subset(&dir, 256);
    let data = dir.to_str().unwrap().to_string();
    let flags = ["--data", &data, "--batch-size", "64", "--epochs", "2", "--precision", "master-weights"];
    let c = stop_resume_matches("mnist_cnn", &flags, 5, &dir.join("run"));
    let bufs: Vec<&str> = c.buffers.iter().map(|(n, _)| n.as_str()).collect();
    for b in ["bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"] {
        assert!(bufs.contains(&b), "{b} not saved: {bufs:?}");
    }
    // The statistics moved from their initial values (zero mean).
    let mean = c.buffer("bn1.running_mean", &[32], mixprec::tensor::DType::F32).unwrap().to_vec_f32().unwrap();
    assert!(mean.iter().any(|&m| m != 0.0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn char_lm_resumes_bit_exactly_with_adam() {
    let dir = scratch("charlm");
    let flags = ["--steps", "5", "--batch-size", "4", "--valid-chars", "640", "--precision", "autocast"];
    let c = stop_resume_matches("char_lm", &flags, 2, &dir);
    assert_eq!(c.optimizer.unwrap().state.kind(), "adam");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resuming_the_wrong_checkpoint_is_a_typed_error() {
    let dir = scratch("wrong");
    mnist_subset(&dir, 256);
    let data = dir.to_str().unwrap().to_string();
    let saved = dir.join("mlp-o2");
    let base = ["--data", &data, "--batch-size", "64", "--epochs", "1"];
    let with = |extra: &[&str]| cat(&base, extra);
    record("mnist_mlp", &with(&["--json", "--precision", "master-weights", "--stop-after", "2", "--save", s(&saved)]));
    let corrupt = dir.join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    let mut bytes = std::fs::read(saved.join("checkpoint.safetensors")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    std::fs::write(corrupt.join("checkpoint.safetensors"), bytes).unwrap();
    let missing = dir.join("nothing-here");
    for (example, args, needles) in [
        (
            "mnist_cnn",
            with(&["--precision", "master-weights", "--resume", s(&saved)]),
            &["`mnist_mlp`", "`mnist_cnn`"][..],
        ),
        ("mnist_mlp", with(&["--precision", "f32", "--resume", s(&saved)]), &["precision", "master-weights", "f32"]),
        ("mnist_mlp", with(&["--precision", "master-weights-bf16", "--resume", s(&saved)]), &["master-weights-bf16"]),
        (
            "mnist_mlp",
            with(&["--precision", "master-weights", "--lr", "0.2", "--resume", s(&saved)]),
            &["--lr", "0.1", "0.2"],
        ),
        (
            "mnist_mlp",
            with(&["--precision", "master-weights", "--optimizer", "adam", "--resume", s(&saved)]),
            &["--optimizer", "adam"],
        ),
        (
            "mnist_mlp",
            with(&["--precision", "master-weights", "--loss-scale", "static:1024", "--resume", s(&saved)]),
            &["--loss-scale", "static:1024"],
        ),
        (
            "mnist_mlp",
            with(&["--precision", "master-weights", "--steps", "3", "--resume", s(&saved)]),
            &["--steps 4", "--steps 3"],
        ),
        ("mnist_mlp", with(&["--precision", "master-weights", "--resume", s(&corrupt)]), &["corrupted"]),
        ("mnist_mlp", with(&["--precision", "master-weights", "--resume", s(&missing)]), &["nothing-here"]),
    ] {
        let out = run(example, &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{example} {args:?}: {err}");
        assert!(err.contains("checkpoint") || err.contains("--resume"), "{example} {args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{example} {args:?}: {n} not in {err}");
        }
        assert!(!err.contains("panicked"), "{example} {args:?}: {err}");
    }
    let help = text(&run("mnist_cnn", &["--help"]).stdout);
    for flag in ["--save <DIR>", "--save-every <N>", "--resume <DIR>", "--stop-after <STEP>"] {
        assert!(help.contains(flag), "{flag} missing from --help: {help}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
