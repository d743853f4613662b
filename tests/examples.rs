//! Runs the training examples as a user does (the binaries `cargo test`
//! builds beside this test) on small budgets: the `--json` record's exact
//! schema, accuracy after one epoch, flag and data errors, and every figure
//! `reproduce` writes (PNG decoded, SVG text checked).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// DESIGN.md "Example command line and output": exactly these keys, in order.
const KEYS: [&str; 21] = [
    "example",
    "precision",
    "loss_scale",
    "epochs",
    "steps",
    "batch_size",
    "lr",
    "seed",
    "threads",
    "isa",
    "final_train_loss",
    "test_accuracy",
    "val_loss_nats",
    "perplexity",
    "seconds",
    "steps_per_second",
    "peak_tensor_bytes",
    "peak_tensor_bytes_by_dtype",
    "peak_activation_bytes",
    "skipped_steps",
    "final_loss_scale",
];

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built (cargo test builds the examples; run cargo test --workspace)",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        .env(mixprec::data::DATA_DIR_ENV, mixprec::data::shipped_dir())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Checks one JSON line against the schema and returns it.
fn check_record(line: &str) -> serde_json::Map<String, Value> {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let obj = v.as_object().unwrap().clone();
    assert_eq!(obj.len(), KEYS.len(), "{line}");
    let pos: Vec<usize> =
        KEYS.iter().map(|k| line.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k}"))).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "keys out of order: {line}");
    assert!(!line.contains("NaN") && !line.contains("inf"), "{line}");
    for k in ["example", "precision", "loss_scale", "isa"] {
        assert!(obj[k].is_string(), "{k}: {line}");
    }
    for k in [
        "epochs",
        "steps",
        "batch_size",
        "seed",
        "threads",
        "peak_tensor_bytes",
        "peak_activation_bytes",
        "skipped_steps",
    ] {
        assert!(obj[k].is_u64(), "{k}: {line}");
    }
    for k in ["lr", "seconds"] {
        assert!(obj[k].is_f64() || obj[k].is_u64(), "{k}: {line}");
    }
    for k in
        ["final_train_loss", "test_accuracy", "val_loss_nats", "perplexity", "steps_per_second", "final_loss_scale"]
    {
        assert!(obj[k].is_null() || obj[k].is_number(), "{k}: {line}");
    }
    let by = obj["peak_tensor_bytes_by_dtype"].as_object().unwrap();
    assert_eq!(by.keys().cloned().collect::<Vec<_>>(), ["bf16", "f16", "f32"], "{line}");
    assert!(obj["peak_tensor_bytes"].as_u64().unwrap() >= by["f32"].as_u64().unwrap());
    obj
}

fn last_line(out: &Output) -> String {
    text(&out.stdout).lines().last().unwrap_or_default().to_string()
}

#[test]
fn mnist_mlp_one_epoch_f32_and_master_weights() {
    for (precision, scale, f16_bytes) in [("f32", Value::Null, false), ("master-weights", Value::from(65536.0), true)] {
        let out = run("mnist_mlp", &["--epochs", "1", "--json", "--precision", precision]);
        assert!(out.status.success(), "{precision}: {}", text(&out.stderr));
        let r = check_record(&last_line(&out));
        assert_eq!(r["example"], "mnist_mlp");
        assert_eq!(r["precision"], precision);
        assert_eq!(
            (r["epochs"].as_u64(), r["steps"].as_u64(), r["batch_size"].as_u64()),
            (Some(1), Some(469), Some(128))
        );
        let acc = r["test_accuracy"].as_f64().unwrap();
        assert!(acc > 0.95, "{precision}: accuracy {acc}");
        assert!(r["val_loss_nats"].is_null() && r["perplexity"].is_null());
        assert!(r["final_train_loss"].as_f64().unwrap() < 0.5);
        assert!(r["peak_activation_bytes"].as_u64().unwrap() > 0);
        let f16 = r["peak_tensor_bytes_by_dtype"]["f16"].as_u64().unwrap();
        assert_eq!(f16 > 0, f16_bytes, "{precision}: f16 bytes {f16}");
        if precision == "f32" {
            assert_eq!(r["loss_scale"], "none");
            assert!(r["final_loss_scale"].is_null());
        } else {
            assert_eq!(r["loss_scale"], "dynamic");
            // 469 steps are too few to grow; an overflow would halve it.
            assert!(r["final_loss_scale"].as_f64().unwrap() <= scale.as_f64().unwrap());
        }
    }
}

#[test]
fn mnist_mlp_json_is_the_only_stdout_and_steps_limit_the_run() {
    let out =
        run("mnist_mlp", &["--steps", "5", "--json", "--precision", "autocast-bf16", "--seed", "7", "--threads", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1, "{}", text(&out.stdout));
    let r = check_record(&last_line(&out));
    assert_eq!((r["steps"].as_u64(), r["seed"].as_u64(), r["threads"].as_u64()), (Some(5), Some(7), Some(1)));
    assert_eq!(r["precision"], "autocast-bf16");
}

#[test]
fn bad_flags_and_data_are_reported_not_panics() {
    for (args, needle, code) in [
        (&["--precision", "fp8"][..], "--precision", 2),
        (&["--loss-scale", "static:0"], "--loss-scale", 2),
        (&["--epochs", "0"], "--epochs", 2),
        (&["--lr=-0.1"], "--lr", 2),
        (&["--optimizer", "rmsprop"], "--optimizer", 2),
        (&["--bogus"], "--bogus", 2),
        (&["--precision", "pure-f16", "--loss-scale", "dynamic"], "--loss-scale", 1),
        (&["--data", "/nonexistent/mnist", "--steps", "1"], "/nonexistent/mnist", 1),
    ] {
        let out = run("mnist_mlp", args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let help = run("mnist_mlp", &["--help"]);
    let help = text(&help.stdout);
    for flag in [
        "--precision",
        "--loss-scale",
        "--epochs",
        "--batch-size",
        "--lr",
        "--optimizer",
        "--threads",
        "--seed",
        "--data",
        "--json",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(
        help.contains("[default: 10]") && help.contains("[default: 0.1]") && help.contains("[default: sgd]"),
        "{help}"
    );
}

#[test]
fn reproduce_quick_writes_every_figure_and_a_record_per_configuration() {
    let dir = std::env::temp_dir().join(format!("mixprec-reproduce-{}", std::process::id()));
    let out = run("reproduce", &["--steps", "40", "--seeds", "1,2", "--json", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let records: Vec<_> = stdout.lines().filter(|l| l.starts_with('{')).map(check_record).collect();
    assert_eq!(records.len(), 7, "{stdout}");
    let precisions: Vec<&str> = records.iter().map(|r| r["precision"].as_str().unwrap()).collect();
    assert_eq!(
        precisions,
        [
            "f32",
            "pure-f16",
            "master-weights",
            "master-weights",
            "master-weights",
            "master-weights",
            "master-weights-bf16"
        ]
    );
    let scales: Vec<&str> = records.iter().map(|r| r["loss_scale"].as_str().unwrap()).collect();
    assert_eq!(scales, ["none", "none", "none", "static:1024", "dynamic", "stats", "none"]);
    assert!(stdout.lines().rev().take(7).all(|l| l.starts_with('{')), "the records are the last lines");
    // One record per configuration over both seeds: the first seed, the two runs' steps.
    for r in &records {
        assert_eq!((r["seed"].as_u64(), r["steps"].as_u64()), (Some(1), Some(80)), "{r:?}");
    }
    assert!(stdout.contains("| configuration |"), "{stdout}");
    for (stem, texts) in [
        (
            "loss_curves",
            &["Training loss", "step", "cross-entropy loss", "FP32", "pure FP16", "mixed, dynamic", "BF16 mixed"][..],
        ),
        (
            "activation_gradients",
            &["Activation gradients", "log2 |gradient|", "fraction of values", "scale 1", "2^-24", "2^-14"],
        ),
        ("weight_gradients", &["Weight gradients", "log2 |gradient|", "fraction of values", "scale 1", "2^-24"]),
        (
            "loss_scale_sweep",
            &["Loss-scale sweep", "log2 loss scale", "fraction of nonzero", "flushed to zero", "subnormal", "dynamic"],
        ),
    ] {
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        for t in texts {
            assert!(svg.contains(t), "{stem}.svg lacks {t:?}");
        }
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(dir.join(format!("{stem}.png"))).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert!(info.width >= 600 && info.height >= 400, "{stem}: {}x{}", info.width, info.height);
        let px = &buf[..info.buffer_size()];
        let bpp = info.color_type.samples();
        let distinct: std::collections::HashSet<&[u8]> = px.chunks(bpp).collect();
        assert!(distinct.len() > 8, "{stem}.png is nearly one flat colour ({} colours)", distinct.len());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn mnist_cnn_and_char_lm_take_the_same_flags_and_print_the_same_record() {
    let out = run("mnist_cnn", &["--steps", "3", "--batch-size", "32", "--json", "--precision", "master-weights"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = check_record(&last_line(&out));
    assert_eq!(
        (r["example"].as_str(), r["steps"].as_u64(), r["batch_size"].as_u64()),
        (Some("mnist_cnn"), Some(3), Some(32))
    );
    let acc = r["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc) && r["val_loss_nats"].is_null());
    // Master weights: f16 working copies, and the batch-norm parameters stay FP32.
    assert!(r["peak_tensor_bytes_by_dtype"]["f16"].as_u64().unwrap() > 0);

    let out = run(
        "char_lm",
        &["--steps", "2", "--batch-size", "4", "--valid-chars", "640", "--json", "--precision", "autocast-bf16"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = check_record(&last_line(&out));
    assert_eq!((r["example"].as_str(), r["steps"].as_u64()), (Some("char_lm"), Some(2)));
    let nats = r["val_loss_nats"].as_f64().unwrap();
    // Two steps from a uniform guess over the vocabulary: still near ln(vocab) (≈ 4.1–4.5).
    assert!(nats > 2.0 && nats < 6.0, "{nats}");
    assert!((r["perplexity"].as_f64().unwrap() - nats.exp()).abs() < 1e-9 * nats.exp());
    assert!(r["test_accuracy"].is_null());

    let out = run("char_lm", &["--data", "/nonexistent/text.txt", "--steps", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/text.txt"), "{}", text(&out.stderr));
}
