//! Checkpoints in safetensors: everything a training run needs to continue
//! bit-exactly — the model's parameters (working copies), FP32 masters,
//! optimizer state, loss-scaler state, generator states, extra buffers and
//! the step counter — with the model name, precision mode, shapes and a
//! format version in the metadata.
//!
//! - [`Checkpoint::capture`] takes a snapshot of live objects,
//!   [`Checkpoint::restore`] validates one against them and writes it back
//!   (all or nothing).
//! - [`Checkpoint::save`] writes atomically (temporary file in the same
//!   directory, fsync, rename, fsync of the directory): a crash leaves the
//!   old file or the new one, never a mixture.
//! - [`Checkpoint::from_bytes`] parses and validates any bytes (the fuzz
//!   entry point): every tensor and the header carry a SHA-256 digest, so
//!   truncation, corruption, a foreign file or another format version is a
//!   typed [`CheckpointError`] naming what was wrong, never a panic.
//!
//! The file layout (tensor names, metadata keys) is specified in
//! `docs/reliability.md`; `scripts/checkpoint_interop.py` reads and writes
//! it from Python.

mod error;
mod format;
mod optimizer;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use mixprec_autograd::Var;
use mixprec_autograd::tensor::random::GeneratorState;
use mixprec_autograd::tensor::{DType, Tensor};

pub use error::CheckpointError;
pub use optimizer::{CheckpointOptimizer, OptimizerSnapshot, OptimizerState};

use crate::grad_scaler::{GradScaler, ScalerSnapshot};
use crate::precision::Precision;

/// The `format` metadata value of every mixprec checkpoint.
pub const FORMAT: &str = "mixprec-checkpoint";

/// The layout version this build writes and reads. Any change to tensor
/// names, metadata keys or digests bumps it.
pub const FORMAT_VERSION: u32 = 1;

/// The file name [`Checkpoint::save_in`] and [`Checkpoint::load_from`] use
/// inside a checkpoint directory (`--save DIR`, `--resume DIR`).
pub const FILE_NAME: &str = "checkpoint.safetensors";

/// A training run's state, owned (tensors are cheap handles; parameters
/// written after a capture are copied on write, so the snapshot stays put).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The model's name; a checkpoint restores only into a model of this name.
    pub model: String,
    /// The precision mode the run trains in.
    pub precision: Precision,
    /// Optimizer steps taken (the training loop's counter).
    pub step: u64,
    /// The model's parameters (working copies) by path, in the model's order.
    pub params: Vec<(String, Tensor)>,
    /// FP32 masters of the parameters whose working copy is f16/bf16, by
    /// the parameter's path.
    pub masters: Vec<(String, Tensor)>,
    /// The optimizer's hyper-parameters and state, if any.
    pub optimizer: Option<OptimizerSnapshot>,
    /// The loss scaler's settings and state, if any.
    pub scaler: Option<ScalerSnapshot>,
    /// Generator states by name (data order, dropout masks, …).
    pub rngs: Vec<(String, GeneratorState)>,
    /// Other tensors by name (batch-norm running statistics, …).
    pub buffers: Vec<(String, Tensor)>,
    /// Free-form string metadata (epoch, command line, …).
    pub extra: BTreeMap<String, String>,
}

impl Checkpoint {
    /// A snapshot of a run: `params` is `model.named_parameters()` (the
    /// working copies), `optimizer` the optimizer (a [`MasterWeights`]
    /// contributes its masters), `scaler` the loss scaler. Generators,
    /// buffers and extra metadata are added to the returned value.
    ///
    /// [`MasterWeights`]: crate::MasterWeights
    pub fn capture<O: CheckpointOptimizer + ?Sized>(
        model: &str,
        precision: Precision,
        step: u64,
        params: &[(String, Var)],
        optimizer: &O,
        scaler: &GradScaler,
    ) -> Result<Checkpoint, CheckpointError> {
        let names = NameIndex::new(params);
        let masters = match optimizer.master_params() {
            None => Vec::new(),
            Some(masters) => {
                let working = optimizer.state_params();
                let mut out = Vec::new();
                for (w, m) in working.iter().zip(masters) {
                    if same_param(w, m) {
                        continue;
                    }
                    out.push((names.name_of(w, "a master weight's parameter")?, m.value()));
                }
                out
            }
        };
        let opt_names = optimizer
            .state_params()
            .iter()
            .map(|p| names.name_of(p, "an optimizer parameter"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checkpoint {
            model: model.to_string(),
            precision,
            step,
            params: params.iter().map(|(n, v)| (n.clone(), v.value())).collect(),
            masters,
            optimizer: Some(OptimizerSnapshot { params: opt_names, state: optimizer.export_state() }),
            scaler: Some(scaler.state()),
            rngs: Vec::new(),
            buffers: Vec::new(),
            extra: BTreeMap::new(),
        })
    }

    /// Checks this checkpoint against a live run and, if everything
    /// matches, writes it into the run: parameter values (by path), FP32
    /// masters, optimizer state and learning rate, scaler state. Nothing is
    /// written unless everything validates. Generators and buffers are
    /// read with [`Checkpoint::rng`] and [`Checkpoint::buffer`].
    pub fn restore<O: CheckpointOptimizer + ?Sized>(
        &self,
        model: &str,
        precision: Precision,
        params: &[(String, Var)],
        optimizer: &mut O,
        scaler: &mut GradScaler,
    ) -> Result<(), CheckpointError> {
        if self.model != model {
            return Err(CheckpointError::OtherModel { expected: model.to_string(), found: self.model.clone() });
        }
        if self.precision != precision {
            return Err(CheckpointError::Precision { expected: precision, found: self.precision });
        }
        let mut writes: Vec<(Var, Tensor)> = Vec::new();
        // Parameters, by path.
        let saved: HashMap<&str, &Tensor> = self.params.iter().map(|(n, t)| (n.as_str(), t)).collect();
        for (name, var) in params {
            let tensor_name = format::param_key(name);
            let t = saved.get(name.as_str()).ok_or_else(|| CheckpointError::Missing { tensor: tensor_name.clone() })?;
            check_like(&tensor_name, t, var.shape(), var.dtype())?;
            writes.push((var.clone(), (*t).clone()));
        }
        if let Some((name, _)) = self.params.iter().find(|(n, _)| !params.iter().any(|(p, _)| p == n)) {
            return Err(CheckpointError::Unexpected { tensor: format::param_key(name) });
        }
        // Masters.
        let names = NameIndex::new(params);
        let saved_masters: HashMap<&str, &Tensor> = self.masters.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut used_masters = 0;
        if let Some(masters) = optimizer.master_params() {
            for (w, m) in optimizer.state_params().iter().zip(masters) {
                if same_param(w, m) {
                    continue;
                }
                let name = names.name_of(w, "a master weight's parameter")?;
                let key = format::master_key(&name);
                let t =
                    saved_masters.get(name.as_str()).ok_or_else(|| CheckpointError::Missing { tensor: key.clone() })?;
                check_like(&key, t, m.shape(), m.dtype())?;
                writes.push((m.clone(), (*t).clone()));
                used_masters += 1;
            }
        }
        if used_masters != self.masters.len() {
            let expected: Vec<String> = match optimizer.master_params() {
                Some(masters) => optimizer
                    .state_params()
                    .iter()
                    .zip(masters)
                    .filter(|(w, m)| !same_param(w, m))
                    .filter_map(|(w, _)| names.name_of(w, "").ok())
                    .collect(),
                None => Vec::new(),
            };
            if let Some((name, _)) = self.masters.iter().find(|(n, _)| !expected.contains(n)) {
                return Err(CheckpointError::Unexpected { tensor: format::master_key(name) });
            }
        }
        // Optimizer.
        let snap = self.optimizer.as_ref().ok_or_else(|| CheckpointError::Optimizer {
            expected: optimizer.export_state().kind().to_string(),
            found: "none".to_string(),
        })?;
        let live_names = optimizer
            .state_params()
            .iter()
            .map(|p| names.name_of(p, "an optimizer parameter"))
            .collect::<Result<Vec<_>, _>>()?;
        let numels: Vec<usize> = optimizer.state_params().iter().map(|p| p.numel()).collect();
        let state = snap.reordered(&live_names, &numels)?;
        let kind = optimizer.export_state().kind();
        if state.kind() != kind {
            return Err(CheckpointError::Optimizer { expected: kind.to_string(), found: state.kind().to_string() });
        }
        // Scaler: validated on a copy first.
        let mut new_scaler = scaler.clone();
        if let Some(s) = self.scaler {
            new_scaler.load_state(s).map_err(|e| CheckpointError::Invalid {
                what: "the loss-scaler state".into(),
                reason: e.to_string(),
            })?;
        }
        // Everything validated: write.
        for (var, t) in writes {
            let p = var.param().ok_or_else(|| CheckpointError::Invalid {
                what: "a restore target".into(),
                reason: "a value that is not a parameter".into(),
            })?;
            p.set_value(t)
                .map_err(|e| CheckpointError::Invalid { what: "a parameter".into(), reason: e.to_string() })?;
        }
        optimizer.import_state(state)?;
        *scaler = new_scaler;
        Ok(())
    }

    /// The saved state of generator `name` (`rng/<name>`).
    pub fn rng(&self, name: &str) -> Result<GeneratorState, CheckpointError> {
        self.rngs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| CheckpointError::Missing { tensor: format::rng_key(name) })
    }

    /// The buffer `name` (`buffer/<name>`), checked to have `shape` and `dtype`.
    pub fn buffer(&self, name: &str, shape: &[usize], dtype: DType) -> Result<&Tensor, CheckpointError> {
        let key = format::buffer_key(name);
        let t = self
            .buffers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| CheckpointError::Missing { tensor: key.clone() })?;
        check_like(&key, t, shape, dtype)?;
        Ok(t)
    }

    /// What differs between two checkpoints, bit for bit: the tensors by
    /// file name (`model/fc1.weight`, `optim/exp_avg/fc1.weight`, …) and
    /// the other fields by name (`step`, `scaler`, …). Empty when equal.
    pub fn differences(&self, other: &Checkpoint) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, same: bool| {
            if !same {
                out.push(name.to_string());
            }
        };
        field("model", self.model == other.model);
        field("precision", self.precision == other.precision);
        field("step", self.step == other.step);
        field("scaler", self.scaler == other.scaler);
        field("rngs", self.rngs == other.rngs);
        field("extra", self.extra == other.extra);
        let (a, b) = (format::tensor_table(self), format::tensor_table(other));
        for (name, t) in &a {
            if b.get(name) != Some(t) {
                out.push(name.clone());
            }
        }
        out.extend(b.keys().filter(|n| !a.contains_key(*n)).cloned());
        let hyper =
            |c: &Checkpoint| c.optimizer.as_ref().map(|o| (o.params.clone(), format::hyper_parameters(&o.state)));
        if hyper(self) != hyper(other) {
            out.push("optimizer".into());
        }
        out
    }

    /// The safetensors encoding. The tensors and their digests are
    /// deterministic; the order of the metadata entries in the header is
    /// not (the safetensors crate keeps them in a hash map).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        format::encode(self)
    }

    /// Parses and validates a checkpoint from its bytes: the safetensors
    /// structure, the format and its version, every digest, every tensor's
    /// dtype and shape against the metadata and the parameters. Any input
    /// gives `Ok` or a typed error (never a panic); memory use is bounded by
    /// a small multiple of `bytes.len()`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        format::decode(bytes)
    }

    /// Writes the checkpoint to `path` atomically (see [`write_atomic`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Reads and validates the checkpoint at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| CheckpointError::io("read", path, e))?;
        Checkpoint::from_bytes(&bytes)
    }

    /// Creates `dir` if needed and saves into `dir/checkpoint.safetensors`.
    pub fn save_in(&self, dir: impl AsRef<Path>) -> Result<PathBuf, CheckpointError> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|e| CheckpointError::io("create directory", dir, e))?;
        let path = dir.join(FILE_NAME);
        self.save(&path)?;
        Ok(path)
    }

    /// Loads `dir/checkpoint.safetensors`.
    pub fn load_from(dir: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::load(dir.as_ref().join(FILE_NAME))
    }
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the
/// previous file or the complete new one: the bytes go to a temporary file
/// in the same directory (`.<name>.tmp-<pid>`), which is fsynced, renamed
/// over `path` (atomic within a file system), and the directory is fsynced
/// so the rename itself is durable. Temporary files left by writers that
/// died are removed (on Linux, where a dead process id can be told).
/// One writer per path at a time.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| CheckpointError::io("write", path, std::io::Error::other("the path names no file")))?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{file_name}.tmp-");
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| CheckpointError::io("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| CheckpointError::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| CheckpointError::io("fsync", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| CheckpointError::io("rename", path, e))?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    remove_stale_temporaries(&dir, &prefix);
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    let d = fs::File::open(dir).map_err(|e| CheckpointError::io("open directory", dir, e))?;
    d.sync_all().map_err(|e| CheckpointError::io("fsync directory", dir, e))
}

/// Windows cannot open a directory as a file; its rename is durable once
/// the file's data is.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), CheckpointError> {
    Ok(())
}

/// Removes `<prefix><pid>` files of processes that no longer exist (Linux
/// only: `/proc/<pid>`); best effort, errors ignored.
fn remove_stale_temporaries(dir: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether two handles are the same parameter cell.
fn same_param(a: &Var, b: &Var) -> bool {
    match (a.param(), b.param()) {
        (Some(a), Some(b)) => a.id() == b.id(),
        _ => false,
    }
}

/// Paths of the model's parameters by identity.
struct NameIndex<'a> {
    params: &'a [(String, Var)],
}

impl<'a> NameIndex<'a> {
    fn new(params: &'a [(String, Var)]) -> Self {
        NameIndex { params }
    }

    fn name_of(&self, v: &Var, what: &str) -> Result<String, CheckpointError> {
        self.params.iter().find(|(_, p)| same_param(p, v)).map(|(n, _)| n.clone()).ok_or_else(|| {
            CheckpointError::Invalid {
                what: what.to_string(),
                reason: format!("a parameter of shape {:?} that is not among the model's parameters", v.shape()),
            }
        })
    }
}

/// `t` has `shape` and `dtype`, or a typed error naming `tensor`.
fn check_like(tensor: &str, t: &Tensor, shape: &[usize], dtype: DType) -> Result<(), CheckpointError> {
    if t.dtype() != dtype {
        return Err(CheckpointError::DType {
            tensor: tensor.to_string(),
            expected: dtype.to_string(),
            found: t.dtype().to_string(),
        });
    }
    if t.shape() != shape {
        return Err(CheckpointError::Shape {
            tensor: tensor.to_string(),
            expected: shape.to_vec(),
            found: t.shape().to_vec(),
        });
    }
    Ok(())
}
