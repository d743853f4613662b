//! The checkpoint layout, version 1 (specified in `docs/reliability.md`):
//! safetensors tensors `model/<path>`, `master/<path>`,
//! `optim/{momentum,exp_avg,exp_avg_sq,step}/<path>`, `rng/<name>`,
//! `buffer/<name>`; string metadata for everything else; a SHA-256 digest
//! per tensor (`digest.<tensor>`) and one over the header
//! (`header_digest`).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use half::{bf16, f16};
use mixprec_autograd::optim::{AdamConfig, AdamState, SgdConfig, SgdState};
use mixprec_autograd::tensor::random::GeneratorState;
use mixprec_autograd::tensor::{DType, Tensor};
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use sha2::{Digest, Sha256};

use super::error::CheckpointError;
use super::optimizer::{OptimizerSnapshot, OptimizerState};
use super::{Checkpoint, FORMAT, FORMAT_VERSION};
use crate::grad_scaler::ScalerSnapshot;
use crate::precision::Precision;
use crate::scaler::{ScaleState, ScalerConfig, StatsConfig};

/// safetensors' own limit on the header length.
const MAX_HEADER: u64 = 100_000_000;

pub(crate) fn param_key(name: &str) -> String {
    format!("model/{name}")
}

pub(crate) fn master_key(name: &str) -> String {
    format!("master/{name}")
}

pub(crate) fn optim_key(slot: &str, name: &str) -> String {
    format!("optim/{slot}/{name}")
}

pub(crate) fn rng_key(name: &str) -> String {
    format!("rng/{name}")
}

pub(crate) fn buffer_key(name: &str) -> String {
    format!("buffer/{name}")
}

/// A tensor ready to serialize.
struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Owned {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn st_dtype(d: DType) -> Dtype {
    match d {
        DType::F64 => Dtype::F64,
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
    }
}

fn float_dtype(d: Dtype) -> Option<DType> {
    match d {
        Dtype::F64 => Some(DType::F64),
        Dtype::F32 => Some(DType::F32),
        Dtype::F16 => Some(DType::F16),
        Dtype::BF16 => Some(DType::BF16),
        _ => None,
    }
}

/// The dtype's name as the `params` metadata and the errors write it.
fn dtype_name(d: Dtype) -> String {
    match float_dtype(d) {
        Some(f) => f.to_string(),
        None => format!("{d:?}").to_ascii_lowercase(),
    }
}

/// Little-endian bytes of a tensor's elements, in row-major order.
fn tensor_bytes(t: &Tensor) -> Result<Owned, CheckpointError> {
    let t = t.contiguous();
    let bad = || CheckpointError::Invalid { what: "a tensor".into(), reason: "not readable as its dtype".into() };
    let data: Vec<u8> = match t.dtype() {
        DType::F64 => t.as_slice::<f64>().ok_or_else(bad)?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::F32 => t.as_slice::<f32>().ok_or_else(bad)?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::F16 => t.as_slice::<f16>().ok_or_else(bad)?.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        DType::BF16 => t.as_slice::<bf16>().ok_or_else(bad)?.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
    };
    Ok(Owned { dtype: st_dtype(t.dtype()), shape: t.shape().to_vec(), data })
}

fn f32_bytes(v: &[f32], shape: &[usize]) -> Owned {
    Owned { dtype: Dtype::F32, shape: shape.to_vec(), data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The header digest: SHA-256 over the metadata (sorted by key, without
/// `header_digest`) and the tensor table (sorted by name: dtype, shape),
/// every string prefixed by its length as a little-endian u64.
fn header_digest(metadata: &HashMap<String, String>, tensors: &BTreeMap<String, (Dtype, Vec<usize>)>) -> String {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    let sorted: BTreeMap<&String, &String> = metadata.iter().filter(|(k, _)| *k != "header_digest").collect();
    for (k, v) in sorted {
        put(k);
        put(v);
    }
    for (name, (dtype, shape)) in tensors {
        put(name);
        put(&format!("{dtype:?}"));
        put(&shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","));
    }
    hex(&h.finalize())
}

fn json_string_list(items: &[String]) -> String {
    serde_json::Value::Array(items.iter().map(|s| serde_json::Value::String(s.clone())).collect()).to_string()
}

/// The `params` metadata: `[{"name", "dtype", "shape"}]` in model order.
fn params_json(params: &[(String, Tensor)]) -> String {
    let items = params
        .iter()
        .map(|(n, t)| serde_json::json!({"name": n, "dtype": t.dtype().to_string(), "shape": t.shape()}))
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// Every tensor of a checkpoint as it would be written (dtype, shape,
/// little-endian bytes), by file name; tensors that cannot be encoded are
/// left out.
pub(crate) fn tensor_table(c: &Checkpoint) -> BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut put = |name: String, o: Owned| {
        out.insert(name, (o.dtype, o.shape, o.data));
    };
    for (n, t) in &c.params {
        if let Ok(o) = tensor_bytes(t) {
            put(param_key(n), o);
        }
    }
    for (n, t) in &c.masters {
        if let Ok(o) = tensor_bytes(t) {
            put(master_key(n), o);
        }
    }
    for (n, t) in &c.buffers {
        if let Ok(o) = tensor_bytes(t) {
            put(buffer_key(n), o);
        }
    }
    if let Some(snap) = &c.optimizer {
        let mut slot = |slot: &str, bufs: &[Option<Vec<f32>>]| {
            for (name, b) in snap.params.iter().zip(bufs) {
                if let Some(b) = b {
                    put(optim_key(slot, name), f32_bytes(b, &[b.len()]));
                }
            }
        };
        match &snap.state {
            OptimizerState::Sgd { state, .. } => slot("momentum", &state.momentum),
            OptimizerState::Adam { state, .. } | OptimizerState::AdamW { state, .. } => {
                slot("exp_avg", &state.exp_avg);
                slot("exp_avg_sq", &state.exp_avg_sq);
                for (name, s) in snap.params.iter().zip(&state.steps) {
                    put(
                        optim_key("step", name),
                        Owned { dtype: Dtype::U64, shape: vec![], data: s.to_le_bytes().to_vec() },
                    );
                }
            }
        }
    }
    out
}

/// An optimizer's kind and hyper-parameters as the metadata writes them.
pub(crate) fn hyper_parameters(s: &OptimizerState) -> Vec<(&'static str, String)> {
    match s {
        OptimizerState::Sgd { config, .. } => vec![
            ("optimizer", s.kind().into()),
            ("optimizer.lr", config.lr.to_string()),
            ("optimizer.momentum", config.momentum.to_string()),
            ("optimizer.dampening", config.dampening.to_string()),
            ("optimizer.weight_decay", config.weight_decay.to_string()),
            ("optimizer.nesterov", config.nesterov.to_string()),
        ],
        OptimizerState::Adam { config, .. } | OptimizerState::AdamW { config, .. } => vec![
            ("optimizer", s.kind().into()),
            ("optimizer.lr", config.lr.to_string()),
            ("optimizer.beta1", config.betas.0.to_string()),
            ("optimizer.beta2", config.betas.1.to_string()),
            ("optimizer.eps", config.eps.to_string()),
            ("optimizer.weight_decay", config.weight_decay.to_string()),
        ],
    }
}

pub(crate) fn encode(c: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let mut tensors: BTreeMap<String, Owned> = BTreeMap::new();
    let mut put = |name: String, t: Owned| -> Result<(), CheckpointError> {
        if tensors.insert(name.clone(), t).is_some() {
            return Err(CheckpointError::Invalid { what: format!("tensor `{name}`"), reason: "named twice".into() });
        }
        Ok(())
    };
    let shapes: HashMap<&str, &[usize]> = c.params.iter().map(|(n, t)| (n.as_str(), t.shape())).collect();
    for (name, t) in &c.params {
        put(param_key(name), tensor_bytes(t)?)?;
    }
    for (name, t) in &c.masters {
        let key = master_key(name);
        let Some(&shape) = shapes.get(name.as_str()) else {
            return Err(CheckpointError::Missing { tensor: param_key(name) });
        };
        super::check_like(&key, t, shape, DType::F32)?;
        put(key, tensor_bytes(t)?)?;
    }
    let mut meta: HashMap<String, String> = HashMap::new();
    let mut set = |k: &str, v: String| {
        meta.insert(k.to_string(), v);
    };
    set("format", FORMAT.to_string());
    set("format_version", FORMAT_VERSION.to_string());
    set("model", c.model.clone());
    set("precision", c.precision.name().to_string());
    set("step", c.step.to_string());
    set("params", params_json(&c.params));
    match &c.optimizer {
        None => set("optimizer", "none".into()),
        Some(snap) => {
            if snap.state.len() != snap.params.len() {
                return Err(CheckpointError::Invalid {
                    what: "the optimizer state".into(),
                    reason: format!("{} slots for {} parameters", snap.state.len(), snap.params.len()),
                });
            }
            for (k, v) in hyper_parameters(&snap.state) {
                set(k, v);
            }
            set("optimizer.params", json_string_list(&snap.params));
            let mut bufs = |slot: &str, b: &[Option<Vec<f32>>]| -> Result<(), CheckpointError> {
                for (name, buf) in snap.params.iter().zip(b) {
                    let Some(buf) = buf else { continue };
                    let key = optim_key(slot, name);
                    let Some(&shape) = shapes.get(name.as_str()) else {
                        return Err(CheckpointError::Missing { tensor: param_key(name) });
                    };
                    if buf.len() != shape.iter().product::<usize>() {
                        return Err(CheckpointError::Shape {
                            tensor: key,
                            expected: shape.to_vec(),
                            found: vec![buf.len()],
                        });
                    }
                    put(key, f32_bytes(buf, shape))?;
                }
                Ok(())
            };
            match &snap.state {
                OptimizerState::Sgd { state, .. } => bufs("momentum", &state.momentum)?,
                OptimizerState::Adam { state, .. } | OptimizerState::AdamW { state, .. } => {
                    bufs("exp_avg", &state.exp_avg)?;
                    bufs("exp_avg_sq", &state.exp_avg_sq)?;
                    for (name, &s) in snap.params.iter().zip(&state.steps) {
                        put(
                            optim_key("step", name),
                            Owned { dtype: Dtype::U64, shape: vec![], data: s.to_le_bytes().to_vec() },
                        )?;
                    }
                }
            }
        }
    }
    match &c.scaler {
        None => set("scaler", "none".into()),
        Some(s) => {
            set("scaler", if s.enabled { "enabled" } else { "disabled" }.into());
            set("scaler.scale", s.state.scale.to_string());
            set("scaler.growth_tracker", s.state.growth_tracker.to_string());
            set("scaler.skipped_steps", s.skipped_steps.to_string());
            set("scaler.init_scale", s.config.init_scale.to_string());
            set("scaler.growth_factor", s.config.growth_factor.to_string());
            set("scaler.backoff_factor", s.config.backoff_factor.to_string());
            set("scaler.growth_interval", s.config.growth_interval.to_string());
            set("scaler.dynamic", s.config.dynamic.to_string());
            set("scaler.min_scale", s.config.min_scale.to_string());
            set("scaler.max_consecutive_skips", s.config.max_consecutive_skips.to_string());
            set("scaler.peak", s.state.peak.to_string());
            set("scaler.peak_ratio", s.state.peak_ratio.to_string());
            set("scaler.applied_steps", s.applied_steps.to_string());
            set("scaler.consecutive_skips", s.consecutive_skips.to_string());
            match &s.config.statistics {
                None => set("scaler.statistics", "none".into()),
                Some(st) => {
                    set("scaler.statistics", "enabled".into());
                    set("scaler.statistics.headroom", st.headroom.to_string());
                    set("scaler.statistics.peak_decay", st.peak_decay.to_string());
                    set("scaler.statistics.overflow_backoff", st.overflow_backoff.to_string());
                }
            }
        }
    }
    for (name, state) in &c.rngs {
        put(
            rng_key(name),
            Owned { dtype: Dtype::U8, shape: vec![GeneratorState::BYTES], data: state.to_bytes().to_vec() },
        )?;
    }
    for (name, t) in &c.buffers {
        put(buffer_key(name), tensor_bytes(t)?)?;
    }
    for (k, v) in &c.extra {
        set(&format!("user.{k}"), v.clone());
    }
    for (name, t) in &tensors {
        set(&format!("digest.{name}"), sha256_hex(&t.data));
    }
    let table: BTreeMap<String, (Dtype, Vec<usize>)> =
        tensors.iter().map(|(n, t)| (n.clone(), (t.dtype, t.shape.clone()))).collect();
    let hd = header_digest(&meta, &table);
    meta.insert("header_digest".into(), hd);
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.clone(), t)), Some(meta))
        .map_err(|e| CheckpointError::Invalid { what: "the checkpoint".into(), reason: e.to_string() })
}

/// Where the data the header describes ends, read from the raw header (for
/// a truncation report when safetensors refuses the file).
fn described_end(header: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(header).ok()?;
    let mut end = 0u64;
    for (k, info) in v.as_object()? {
        if k == "__metadata__" {
            continue;
        }
        end = end.max(info.get("data_offsets")?.get(1)?.as_u64()?);
    }
    Some(end)
}

/// Reads the metadata map of a safetensors file with typed errors.
struct Meta(HashMap<String, String>);

impl Meta {
    fn get(&self, key: &str) -> Result<&str, CheckpointError> {
        self.0.get(key).map(String::as_str).ok_or_else(|| CheckpointError::metadata(key, "missing"))
    }

    fn parse<T: FromStr>(&self, key: &str) -> Result<T, CheckpointError> {
        let v = self.get(key)?;
        v.parse()
            .map_err(|_| CheckpointError::metadata(key, format!("{v:?} is not a valid {}", std::any::type_name::<T>())))
    }

    fn names(&self, key: &str) -> Result<Vec<String>, CheckpointError> {
        serde_json::from_str(self.get(key)?)
            .map_err(|e| CheckpointError::metadata(key, format!("not a list of names: {e}")))
    }
}

struct ParamEntry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
}

/// The `params` metadata, parsed.
fn param_entries(meta: &Meta) -> Result<Vec<ParamEntry>, CheckpointError> {
    let bad = |why: &str| CheckpointError::metadata("params", format!("not a list of {{name, dtype, shape}}: {why}"));
    let v: serde_json::Value = serde_json::from_str(meta.get("params")?).map_err(|e| bad(&e.to_string()))?;
    let items = v.as_array().ok_or_else(|| bad("not a list"))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let name = item.get("name").and_then(|n| n.as_str()).ok_or_else(|| bad("an entry without a name"))?;
        let dtype = item.get("dtype").and_then(|n| n.as_str()).ok_or_else(|| bad("an entry without a dtype"))?;
        let shape = item
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|s| {
                s.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad("an entry without a shape"))?;
        out.push(ParamEntry { name: name.to_string(), dtype: dtype.to_string(), shape });
    }
    Ok(out)
}

fn elements<const N: usize, T>(data: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect()
}

/// A float tensor from a view, or a typed error naming it.
fn to_tensor(name: &str, dtype: Dtype, shape: &[usize], data: &[u8]) -> Result<Tensor, CheckpointError> {
    let Some(d) = float_dtype(dtype) else {
        return Err(CheckpointError::DType {
            tensor: name.into(),
            expected: "f32, f16, bf16 or f64".into(),
            found: dtype_name(dtype),
        });
    };
    // Strides are products of the dimensions: refuse shapes whose
    // non-zero dimensions overflow even when an empty one makes numel 0.
    if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d.max(1))).is_none() {
        return Err(CheckpointError::Header { reason: format!("tensor `{name}` has an impossible shape {shape:?}") });
    }
    let t = match d {
        DType::F64 => Tensor::from_vec(elements(data, f64::from_le_bytes), shape),
        DType::F32 => Tensor::from_vec(elements(data, f32::from_le_bytes), shape),
        DType::F16 => Tensor::from_vec(elements(data, |b| f16::from_bits(u16::from_le_bytes(b))), shape),
        DType::BF16 => Tensor::from_vec(elements(data, |b| bf16::from_bits(u16::from_le_bytes(b))), shape),
    };
    t.map_err(|e| CheckpointError::Header { reason: format!("tensor `{name}`: {e}") })
}

fn f32_buffer(
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    data: &[u8],
    expected: &[usize],
) -> Result<Vec<f32>, CheckpointError> {
    if dtype != Dtype::F32 {
        return Err(CheckpointError::DType { tensor: name.into(), expected: "f32".into(), found: dtype_name(dtype) });
    }
    if shape != expected {
        return Err(CheckpointError::Shape { tensor: name.into(), expected: expected.to_vec(), found: shape.to_vec() });
    }
    Ok(elements(data, f32::from_le_bytes))
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let len = bytes.len() as u64;
    let Some(n) = bytes.get(..8) else { return Err(CheckpointError::Truncated { expected: 8, found: len }) };
    let n = u64::from_le_bytes(n.try_into().unwrap_or([0; 8]));
    if n > MAX_HEADER {
        return Err(CheckpointError::Header { reason: format!("a header of {n} bytes (the limit is {MAX_HEADER})") });
    }
    if 8 + n > len {
        return Err(CheckpointError::Truncated { expected: 8 + n, found: len });
    }
    let (_, metadata) = match SafeTensors::read_metadata(bytes) {
        Ok(m) => m,
        Err(SafeTensorError::MetadataIncompleteBuffer) => {
            let header = &bytes[8..(8 + n) as usize];
            return Err(match described_end(header) {
                Some(end) if 8 + n + end > len => CheckpointError::Truncated { expected: 8 + n + end, found: len },
                _ => CheckpointError::Header { reason: "the data does not end where the last tensor ends".into() },
            });
        }
        Err(e) => return Err(CheckpointError::Header { reason: e.to_string() }),
    };
    let meta = Meta(metadata.metadata().clone().unwrap_or_default());
    let format = meta.0.get("format");
    if format.map(String::as_str) != Some(FORMAT) {
        return Err(CheckpointError::NotACheckpoint { found: format.cloned() });
    }
    let version = meta.get("format_version")?;
    if version != FORMAT_VERSION.to_string() {
        return Err(CheckpointError::FormatVersion { found: version.to_string(), supported: FORMAT_VERSION });
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Header { reason: e.to_string() })?;
    let views: BTreeMap<String, (Dtype, Vec<usize>, &[u8])> =
        st.tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data()))).collect();
    let table: BTreeMap<String, (Dtype, Vec<usize>)> =
        views.iter().map(|(n, (d, s, _))| (n.clone(), (*d, s.clone()))).collect();
    if meta.get("header_digest")? != header_digest(&meta.0, &table) {
        return Err(CheckpointError::Corrupted { part: "the header".into() });
    }
    for (name, (_, _, data)) in &views {
        if meta.get(&format!("digest.{name}"))? != sha256_hex(data) {
            return Err(CheckpointError::Corrupted { part: format!("tensor `{name}`") });
        }
    }
    if let Some(k) = meta.0.keys().filter_map(|k| k.strip_prefix("digest.")).find(|k| !views.contains_key(*k)) {
        return Err(CheckpointError::Missing { tensor: k.to_string() });
    }

    let precision = Precision::from_str(meta.get("precision")?)
        .map_err(|e| CheckpointError::metadata("precision", e.to_string()))?;
    let entries = param_entries(&meta)?;
    let mut used: BTreeMap<&str, bool> = views.keys().map(|k| (k.as_str(), false)).collect();
    let mut take = |key: &str| -> Option<&(Dtype, Vec<usize>, &[u8])> {
        let v = views.get(key)?;
        used.insert(views.get_key_value(key)?.0.as_str(), true);
        Some(v)
    };

    let mut params = Vec::with_capacity(entries.len());
    let mut shapes: HashMap<String, Vec<usize>> = HashMap::new();
    for e in &entries {
        let key = param_key(&e.name);
        let (dtype, shape, data) = take(&key).ok_or_else(|| CheckpointError::Missing { tensor: key.clone() })?;
        if dtype_name(*dtype) != e.dtype {
            return Err(CheckpointError::DType { tensor: key, expected: e.dtype.clone(), found: dtype_name(*dtype) });
        }
        if *shape != e.shape {
            return Err(CheckpointError::Shape { tensor: key, expected: e.shape.clone(), found: shape.clone() });
        }
        if shapes.insert(e.name.clone(), shape.clone()).is_some() {
            return Err(CheckpointError::metadata("params", format!("`{}` is listed twice", e.name)));
        }
        params.push((e.name.clone(), to_tensor(&key, *dtype, shape, data)?));
    }

    let mut masters = Vec::new();
    for (name, _) in &params {
        let key = master_key(name);
        if let Some((dtype, shape, data)) = take(&key) {
            masters.push((
                name.clone(),
                Tensor::from_vec(f32_buffer(&key, *dtype, shape, data, &shapes[name])?, shape)
                    .map_err(|e| CheckpointError::Header { reason: format!("tensor `{key}`: {e}") })?,
            ));
        }
    }

    let optimizer = match meta.get("optimizer")? {
        "none" => None,
        kind @ ("sgd" | "adam" | "adamw") => {
            let names = meta.names("optimizer.params")?;
            for name in &names {
                if !shapes.contains_key(name) {
                    return Err(CheckpointError::Missing { tensor: param_key(name) });
                }
            }
            let mut slot = |slot: &str| -> Result<Vec<Option<Vec<f32>>>, CheckpointError> {
                names
                    .iter()
                    .map(|name| {
                        let key = optim_key(slot, name);
                        match take(&key) {
                            None => Ok(None),
                            Some((d, s, data)) => f32_buffer(&key, *d, s, data, &shapes[name]).map(Some),
                        }
                    })
                    .collect()
            };
            let state = if kind == "sgd" {
                let config = SgdConfig {
                    lr: meta.parse("optimizer.lr")?,
                    momentum: meta.parse("optimizer.momentum")?,
                    dampening: meta.parse("optimizer.dampening")?,
                    weight_decay: meta.parse("optimizer.weight_decay")?,
                    nesterov: meta.parse("optimizer.nesterov")?,
                };
                OptimizerState::Sgd { config, state: SgdState { momentum: slot("momentum")? } }
            } else {
                let config = AdamConfig {
                    lr: meta.parse("optimizer.lr")?,
                    betas: (meta.parse("optimizer.beta1")?, meta.parse("optimizer.beta2")?),
                    eps: meta.parse("optimizer.eps")?,
                    weight_decay: meta.parse("optimizer.weight_decay")?,
                };
                let exp_avg = slot("exp_avg")?;
                let exp_avg_sq = slot("exp_avg_sq")?;
                let mut steps = Vec::with_capacity(names.len());
                for name in &names {
                    let key = optim_key("step", name);
                    let (d, s, data) = take(&key).ok_or_else(|| CheckpointError::Missing { tensor: key.clone() })?;
                    if *d != Dtype::U64 {
                        return Err(CheckpointError::DType {
                            tensor: key,
                            expected: "u64".into(),
                            found: dtype_name(*d),
                        });
                    }
                    if !s.is_empty() {
                        return Err(CheckpointError::Shape { tensor: key, expected: vec![], found: s.clone() });
                    }
                    steps.push(u64::from_le_bytes((*data).try_into().unwrap_or([0; 8])));
                }
                let state = AdamState { steps, exp_avg, exp_avg_sq };
                if kind == "adam" {
                    OptimizerState::Adam { config, state }
                } else {
                    OptimizerState::AdamW { config, state }
                }
            };
            Some(OptimizerSnapshot { params: names, state })
        }
        other => {
            return Err(CheckpointError::metadata("optimizer", format!("{other:?} is not sgd, adam, adamw or none")));
        }
    };

    let scaler = match meta.get("scaler")? {
        "none" => None,
        mode @ ("enabled" | "disabled") => {
            let statistics = match meta.get("scaler.statistics")? {
                "none" => None,
                "enabled" => Some(StatsConfig {
                    headroom: meta.parse("scaler.statistics.headroom")?,
                    peak_decay: meta.parse("scaler.statistics.peak_decay")?,
                    overflow_backoff: meta.parse("scaler.statistics.overflow_backoff")?,
                }),
                other => {
                    return Err(CheckpointError::metadata(
                        "scaler.statistics",
                        format!("{other:?} is not enabled or none"),
                    ));
                }
            };
            Some(ScalerSnapshot {
                config: ScalerConfig {
                    init_scale: meta.parse("scaler.init_scale")?,
                    growth_factor: meta.parse("scaler.growth_factor")?,
                    backoff_factor: meta.parse("scaler.backoff_factor")?,
                    growth_interval: meta.parse("scaler.growth_interval")?,
                    dynamic: meta.parse("scaler.dynamic")?,
                    min_scale: meta.parse("scaler.min_scale")?,
                    max_consecutive_skips: meta.parse("scaler.max_consecutive_skips")?,
                    statistics,
                },
                state: ScaleState {
                    scale: meta.parse("scaler.scale")?,
                    growth_tracker: meta.parse("scaler.growth_tracker")?,
                    peak: meta.parse("scaler.peak")?,
                    // Files written before the statistics rule learned from
                    // overflows have no ratio: that rule's state is ratio 1.
                    peak_ratio: if meta.0.contains_key("scaler.peak_ratio") {
                        meta.parse("scaler.peak_ratio")?
                    } else {
                        1.0
                    },
                },
                enabled: mode == "enabled",
                skipped_steps: meta.parse("scaler.skipped_steps")?,
                applied_steps: meta.parse("scaler.applied_steps")?,
                consecutive_skips: meta.parse("scaler.consecutive_skips")?,
            })
        }
        other => {
            return Err(CheckpointError::metadata("scaler", format!("{other:?} is not enabled, disabled or none")));
        }
    };

    let mut rngs = Vec::new();
    let mut buffers = Vec::new();
    for (name, (dtype, shape, data)) in &views {
        if let Some(r) = name.strip_prefix("rng/") {
            if *dtype != Dtype::U8 {
                return Err(CheckpointError::DType {
                    tensor: name.clone(),
                    expected: "u8".into(),
                    found: dtype_name(*dtype),
                });
            }
            if *shape != [GeneratorState::BYTES] {
                return Err(CheckpointError::Shape {
                    tensor: name.clone(),
                    expected: vec![GeneratorState::BYTES],
                    found: shape.clone(),
                });
            }
            let state = GeneratorState::from_bytes(data).ok_or_else(|| CheckpointError::Invalid {
                what: format!("tensor `{name}`"),
                reason: "not a generator state of this version (magic MPRG, version 1)".into(),
            })?;
            rngs.push((r.to_string(), state));
            used.insert(name.as_str(), true);
        } else if let Some(b) = name.strip_prefix("buffer/") {
            buffers.push((b.to_string(), to_tensor(name, *dtype, shape, data)?));
            used.insert(name.as_str(), true);
        }
    }
    if let Some((name, _)) = used.iter().find(|(_, u)| !**u) {
        return Err(CheckpointError::Unexpected { tensor: name.to_string() });
    }
    let extra = meta.0.iter().filter_map(|(k, v)| Some((k.strip_prefix("user.")?.to_string(), v.clone()))).collect();
    Ok(Checkpoint {
        model: meta.get("model")?.to_string(),
        precision,
        step: meta.parse("step")?,
        params,
        masters,
        optimizer,
        scaler,
        rngs,
        buffers,
        extra,
    })
}
