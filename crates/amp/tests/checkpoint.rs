//! Checkpoints: bit-exact round trips in every precision mode, and validation — every
//! kind of bad file or mismatched model is a typed error naming the tensor
//! and the mismatch; every truncation and every single-bit flip of a file is
//! refused; arbitrary bytes never panic the loader.

#[path = "common/train.rs"]
mod train;

use mixprec_amp::checkpoint::{FORMAT_VERSION, OptimizerState};
use mixprec_amp::{Checkpoint, CheckpointError, Precision};
use mixprec_autograd::tensor::{DType, Tensor};
use proptest::prelude::*;
use train::Run;

fn trained(precision: Precision, adam: bool) -> Run {
    let mut run = Run::new(precision, adam);
    run.train(4);
    run
}

fn values(run: &Run) -> Vec<Vec<f32>> {
    run.params.iter().map(|(_, v)| v.value().to_vec_f32().unwrap()).collect()
}

#[test]
fn round_trip_in_every_mode_is_exact_and_deterministic() {
    for precision in Precision::ALL {
        for adam in [false, true] {
            let run = trained(precision, adam);
            let c = run.capture();
            let bytes = c.to_bytes().unwrap();
            let back = Checkpoint::from_bytes(&bytes).unwrap();
            assert_eq!(back.differences(&c), Vec::<String>::new(), "{precision} adam={adam}");
            let again = Checkpoint::from_bytes(&back.to_bytes().unwrap()).unwrap();
            assert!(again.differences(&c).is_empty());
            assert_eq!(back.model, train::MODEL);
            assert_eq!(back.precision, precision);
            assert_eq!(back.step, 4);
            assert_eq!(back.scaler, c.scaler);
            assert_eq!(back.optimizer, c.optimizer);
            assert_eq!(back.rngs.len(), 2);
            assert_eq!(back.extra.get("note").map(String::as_str), Some("test run"));
            assert_eq!(back.masters.len(), if precision.has_master_weights() { 4 } else { 0 }, "{precision}");
            for ((n1, t1), (n2, t2)) in c.params.iter().zip(&back.params) {
                assert_eq!(n1, n2);
                assert_eq!(t1.dtype(), t2.dtype());
                assert_eq!(t1.dtype(), run.params[0].1.dtype());
                let bits = |t: &Tensor| t.to_vec_f64().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(t1), bits(t2), "{n1}");
            }
            // Restoring into a fresh run gives its values back.
            let mut fresh = Run::new(precision, adam);
            fresh.restore(&back).unwrap();
            assert_eq!(values(&fresh), values(&run), "{precision} adam={adam}");
            assert_eq!(fresh.scaler.state(), run.scaler.state());
            assert_eq!(fresh.data_rng, run.data_rng);
        }
    }
}

fn restore_err(c: &Checkpoint, precision: Precision, adam: bool, hidden: usize) -> CheckpointError {
    let mut run = Run::with_hidden(precision, adam, hidden);
    let before = values(&run);
    let err = run.restore(c).unwrap_err();
    assert_eq!(values(&run), before, "a failed restore writes nothing ({err})");
    err
}

#[test]
fn restoring_into_another_model_or_run_names_the_mismatch() {
    let c = trained(Precision::MasterWeights, true).capture();

    let e = restore_err(&c, Precision::MasterWeights, true, 48);
    assert!(
        matches!(&e, CheckpointError::Shape { tensor, expected, found }
            if tensor == "model/fc1.weight" && expected == &[48, 16] && found == &[32, 16]),
        "{e:?}"
    );
    assert!(e.to_string().contains("model/fc1.weight") && e.to_string().contains("[32, 16]"), "{e}");

    let e = restore_err(&c, Precision::Autocast, true, 32);
    assert!(
        matches!(e, CheckpointError::Precision { expected: Precision::Autocast, found: Precision::MasterWeights }),
        "{e:?}"
    );

    let e = restore_err(&c, Precision::MasterWeights, false, 32);
    assert!(
        matches!(&e, CheckpointError::Optimizer { expected, found } if expected == "sgd" && found == "adamw"),
        "{e:?}"
    );

    let mut other = c.clone();
    other.model = "resnet".into();
    let e = restore_err(&other, Precision::MasterWeights, true, 32);
    assert!(matches!(&e, CheckpointError::OtherModel { found, .. } if found == "resnet"), "{e:?}");

    let mut missing = c.clone();
    missing.params.retain(|(n, _)| n != "fc2.bias");
    missing.masters.retain(|(n, _)| n != "fc2.bias");
    if let Some(o) = &mut missing.optimizer {
        let i = o.params.iter().position(|n| n == "fc2.bias").unwrap();
        o.params.remove(i);
        if let OptimizerState::AdamW { state, .. } = &mut o.state {
            state.steps.remove(i);
            state.exp_avg.remove(i);
            state.exp_avg_sq.remove(i);
        }
    }
    let missing = Checkpoint::from_bytes(&missing.to_bytes().unwrap()).unwrap();
    let e = restore_err(&missing, Precision::MasterWeights, true, 32);
    assert!(matches!(&e, CheckpointError::Missing { tensor } if tensor == "model/fc2.bias"), "{e:?}");

    let mut wrong_dtype = c.clone();
    wrong_dtype.params[2].1 = wrong_dtype.params[2].1.to_dtype(DType::F32).unwrap();
    let e = restore_err(&wrong_dtype, Precision::MasterWeights, true, 32);
    assert!(
        matches!(&e, CheckpointError::DType { tensor, expected, found }
            if tensor == "model/fc2.weight" && expected == "f16" && found == "f32"),
        "{e:?}"
    );

    let mut no_master = c.clone();
    no_master.masters.remove(0);
    let e = restore_err(&no_master, Precision::MasterWeights, true, 32);
    assert!(matches!(&e, CheckpointError::Missing { tensor } if tensor == "master/fc1.weight"), "{e:?}");

    let mut bad_scale = c.clone();
    bad_scale.scaler.as_mut().unwrap().state.scale = f32::INFINITY;
    let e = restore_err(&bad_scale, Precision::MasterWeights, true, 32);
    assert!(matches!(e, CheckpointError::Invalid { .. }), "{e:?}");

    let mut no_rng = c.clone();
    no_rng.rngs.clear();
    let e = Run::new(Precision::MasterWeights, true).restore(&no_rng).unwrap_err();
    assert!(matches!(&e, CheckpointError::Missing { tensor } if tensor == "rng/data"), "{e:?}");
}

/// Values a file can hold but no optimizer accepts: a learning rate that is
/// NaN or negative is refused before anything is written (the optimizers'
/// `set_lr` takes any value); an Adam step count at the end of u64 loads (it
/// is a count) and the next step is an error, not a wrap to a first step.
#[test]
fn out_of_range_optimizer_values_in_a_file() {
    for adam in [false, true] {
        for lr in [f64::NAN, -0.5] {
            let mut c = trained(Precision::MasterWeights, adam).capture();
            let snap = c.optimizer.as_mut().unwrap();
            match &mut snap.state {
                OptimizerState::Sgd { config, .. } => config.lr = lr,
                OptimizerState::Adam { config, .. } | OptimizerState::AdamW { config, .. } => config.lr = lr,
            }
            let back = Checkpoint::from_bytes(&c.to_bytes().unwrap()).unwrap();
            let e = restore_err(&back, Precision::MasterWeights, adam, 32);
            assert!(matches!(&e, CheckpointError::Metadata { key, .. } if key == "optimizer.lr"), "{e:?}");
        }
    }
    let mut c = trained(Precision::F32, true).capture();
    match &mut c.optimizer.as_mut().unwrap().state {
        OptimizerState::AdamW { state, .. } => state.steps.iter_mut().for_each(|s| *s = u64::MAX),
        other => panic!("{other:?}"),
    }
    let back = Checkpoint::from_bytes(&c.to_bytes().unwrap()).unwrap();
    let mut run = Run::new(Precision::F32, true);
    run.restore(&back).unwrap();
    let x = mixprec_autograd::Var::new(Tensor::from_vec(vec![0.5f32; 4 * 16], &[4, 16]).unwrap());
    let loss = run.net.forward(&x).cross_entropy(&[0, 1, 2, 3], mixprec_autograd::CrossEntropy::default()).unwrap();
    run.scaler.scale(&loss).unwrap().backward().unwrap();
    let before = values(&run);
    let e = run.scaler.step(&mut *run.opt).unwrap_err();
    assert!(e.to_string().contains("u64::MAX"), "{e}");
    assert_eq!(values(&run), before);
}

/// A small checkpoint file for the byte-level tests.
fn small_file() -> Vec<u8> {
    let mut run = Run::with_hidden(Precision::MasterWeights, false, 3);
    run.train(2);
    run.capture().to_bytes().unwrap()
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = small_file();
    for len in 0..bytes.len() {
        match Checkpoint::from_bytes(&bytes[..len]) {
            Err(CheckpointError::Truncated { expected, found }) => {
                assert_eq!(found, len as u64);
                assert!(expected > found);
            }
            other => panic!("{len} of {} bytes: {other:?}", bytes.len()),
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(Checkpoint::from_bytes(&longer), Err(CheckpointError::Header { .. })));
}

#[test]
fn every_single_bit_flip_is_detected() {
    let bytes = small_file();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 8;
    let mut corrupted_tensor = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            match Checkpoint::from_bytes(&b) {
                Ok(_) => panic!("flipping bit {bit} of byte {i} went unnoticed"),
                Err(CheckpointError::Corrupted { part }) if i >= header_len => {
                    assert!(part.starts_with("tensor `"), "{part}");
                    corrupted_tensor += 1;
                }
                Err(e) if i >= header_len => panic!("byte {i} is tensor data: {e:?}"),
                Err(_) => {}
            }
        }
    }
    assert_eq!(corrupted_tensor, 8 * (bytes.len() - header_len));
}

#[test]
fn a_flipped_data_byte_names_its_tensor() {
    let run = trained(Precision::F32, false);
    let c = run.capture();
    let bytes = c.to_bytes().unwrap();
    // The last tensor in the data section is the one with the last name
    // among the widest dtype (safetensors orders by dtype, then name).
    let n = bytes.len();
    let mut b = bytes.clone();
    b[n - 1] ^= 0x40;
    let e = Checkpoint::from_bytes(&b).unwrap_err();
    assert!(matches!(&e, CheckpointError::Corrupted { part } if part.contains('`')), "{e:?}");
    assert!(e.to_string().contains("SHA-256"), "{e}");
}

#[test]
fn other_formats_versions_and_foreign_files_are_refused() {
    let bytes = small_file();
    let needle = format!("\"format_version\":\"{FORMAT_VERSION}\"");
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_bytes()).expect("the version is in the header");
    let mut v2 = bytes.clone();
    v2[at + needle.len() - 2] = b'2';
    assert!(
        matches!(Checkpoint::from_bytes(&v2), Err(CheckpointError::FormatVersion { ref found, supported: 1 }) if found == "2")
    );

    // A plain safetensors file (no metadata), as `safetensors.torch.save_file` writes.
    let plain = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut file = (plain.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(plain);
    file.extend_from_slice(&[0u8; 8]);
    assert!(matches!(Checkpoint::from_bytes(&file), Err(CheckpointError::NotACheckpoint { found: None })));

    assert!(matches!(Checkpoint::from_bytes(b"PK\x03\x04 a zip file"), Err(CheckpointError::Header { .. })));
    assert!(matches!(Checkpoint::from_bytes(&[]), Err(CheckpointError::Truncated { expected: 8, found: 0 })));
}

#[test]
fn save_and_load_through_a_directory() {
    let dir = std::env::temp_dir().join(format!("mixprec-ckpt-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let c = trained(Precision::AutocastBf16, true).capture();
    let path = c.save_in(dir.join("run")).unwrap();
    assert!(path.ends_with("run/checkpoint.safetensors"));
    let back = Checkpoint::load_from(dir.join("run")).unwrap();
    assert!(back.differences(&c).is_empty(), "{:?}", back.differences(&c));
    let names: Vec<_> = std::fs::read_dir(dir.join("run")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("checkpoint.safetensors")], "no temporary file is left");
    let e = Checkpoint::load_from(dir.join("nowhere")).unwrap_err();
    assert!(matches!(e, CheckpointError::Io { op: "read", .. }), "{e:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Checkpoint::from_bytes(&bytes);
    }

    #[test]
    fn arbitrary_headers_never_panic(header in "\\{[ -~]{0,200}\\}", data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&data);
        let _ = Checkpoint::from_bytes(&file);
    }
}

#[path = "common/interop_fixture.rs"]
mod interop_fixture;

/// Written by `scripts/checkpoint_interop.py write` (numpy, safetensors,
/// ml_dtypes); `scripts/checkpoint_interop.sh` checks the other direction.
#[test]
fn a_checkpoint_python_wrote_equals_the_fixture_bit_for_bit() {
    let c = Checkpoint::from_bytes(include_bytes!("fixtures/checkpoint_python_v1.safetensors")).unwrap();
    assert_eq!(c.differences(&interop_fixture::fixture()), Vec::<String>::new());
    assert_eq!(c.params[0].1.dtype(), DType::F16);
    assert_eq!(c.params[2].1.dtype(), DType::BF16);
    // And what mixprec writes reads back the same.
    let ours = Checkpoint::from_bytes(&interop_fixture::fixture().to_bytes().unwrap()).unwrap();
    assert!(ours.differences(&c).is_empty());
}

/// The same fixture as Python wrote it before the statistics rule learned a
/// peak ratio from overflows (no `scaler.peak_ratio`): it reads with ratio
/// 1, that rule's state, and differs from the fixture in nothing else.
#[test]
fn a_checkpoint_from_before_the_peak_ratio_reads_with_ratio_one() {
    let c = Checkpoint::from_bytes(include_bytes!("fixtures/checkpoint_python_v1_no_peak_ratio.safetensors")).unwrap();
    let mut want = interop_fixture::fixture();
    assert_eq!(c.differences(&want), ["scaler"]);
    let scaler = want.scaler.as_mut().unwrap();
    assert_eq!(c.scaler.as_ref().unwrap().state.peak_ratio, 1.0);
    scaler.state.peak_ratio = 1.0;
    assert_eq!(c.differences(&want), Vec::<String>::new());
}
