//! The checkpoint loader (`Checkpoint::from_bytes`) on arbitrary bytes and
//! on real checkpoints with a mutated header: only `Ok` or a typed
//! `CheckpointError`, never a panic, an abort or an allocation beyond a
//! small multiple of the input.
//!
//! The first byte picks the half. Raw: the rest is the file. Structured: one
//! of four checkpoints the library wrote (f32/SGD, master weights/AdamW,
//! master weights/Adam with loss-scale statistics, autocast before any
//! step) has
//! its metadata, tensor dtypes, shapes, offsets, names and data mutated by
//! the rest of the input, and its digests recomputed (unless the first byte
//! says not to), so the mutations reach the parsing behind the SHA-256
//! checks. Whatever loads is written again and must read back the same; a
//! structured checkpoint that loads is restored into a fresh run of its
//! kind, which then trains two steps and draws from the restored generators.
//!
//! `CHECKPOINT_SEED_DIR=dir` writes every structured file there as a raw
//! input (`seed-raw-*`).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mixprec_amp::checkpoint::CheckpointOptimizer;
use mixprec_amp::scaler::{ScalerConfig, StatsConfig};
use mixprec_amp::{AmpOptimizer, Checkpoint, GradScaler, MasterWeights, Precision, autocast};
use mixprec_autograd::nn::{Linear, Module};
use mixprec_autograd::optim::{Adam, AdamConfig, AdamW, Sgd, SgdConfig};
use mixprec_autograd::tensor::random::Generator;
use mixprec_autograd::tensor::{DType, Tensor};
use mixprec_autograd::{CrossEntropy, Var};
use mixprec_fuzz::Bytes;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const MODEL: &str = "fuzz-mlp-4-3-2";

trait Opt: AmpOptimizer + CheckpointOptimizer {}
impl<T: AmpOptimizer + CheckpointOptimizer> Opt for T {}

/// A two-layer MLP with its optimizer and scaler, in one of four set-ups.
struct Run {
    fc1: Linear,
    fc2: Linear,
    params: Vec<(String, Var)>,
    opt: Box<dyn Opt>,
    scaler: GradScaler,
    precision: Precision,
}

impl Run {
    fn new(kind: usize) -> Run {
        let mut rng = Generator::new(3);
        let fc1 = Linear::new(4, 3, &mut rng).expect("layer");
        let fc2 = Linear::new(3, 2, &mut rng).expect("layer");
        let mut params = Vec::new();
        for (prefix, m) in [("fc1", &fc1), ("fc2", &fc2)] {
            params.extend(m.named_parameters().into_iter().map(|(n, v)| (format!("{prefix}.{n}"), v)));
        }
        let plain: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
        let sgd = SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 1e-3, ..SgdConfig::default() };
        let dynamic = ScalerConfig { init_scale: 1024.0, growth_interval: 2, ..ScalerConfig::default() };
        let (precision, opt, scaler): (Precision, Box<dyn Opt>, GradScaler) = match kind {
            0 => (Precision::F32, Box::new(Sgd::new(plain, sgd).expect("sgd")), GradScaler::disabled()),
            1 => (
                Precision::MasterWeights,
                Box::new(
                    MasterWeights::new(params.clone(), DType::F16, |p| Ok(AdamW::new(p, AdamConfig::adamw())?))
                        .expect("masters"),
                ),
                GradScaler::new(dynamic).expect("scaler"),
            ),
            2 => {
                let stats = ScalerConfig { statistics: Some(StatsConfig::default()), ..dynamic };
                (
                    Precision::MasterWeights,
                    Box::new(
                        MasterWeights::new(params.clone(), DType::F16, |p| Ok(Adam::new(p, AdamConfig::adam())?))
                            .expect("masters"),
                    ),
                    GradScaler::new(stats).expect("scaler"),
                )
            }
            _ => (
                Precision::Autocast,
                Box::new(Adam::new(plain, AdamConfig::adam()).expect("adam")),
                GradScaler::new(dynamic).expect("scaler"),
            ),
        };
        Run { fc1, fc2, params, opt, scaler, precision }
    }

    /// One training step; any error is a valid outcome (a restored state may
    /// hold any value a file can), a panic is not.
    fn step(&mut self) {
        let x = Var::new(Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.25, 1.5, 0.0, -0.5, 3.0], &[2, 4]).expect("x"));
        for (_, p) in &self.params {
            p.zero_grad();
        }
        let loss = autocast(self.precision, || {
            let h = self.fc1.forward(&x)?.relu()?;
            self.fc2.forward(&h)?.cross_entropy(&[0, 1], CrossEntropy::default())
        });
        let Ok(loss) = loss else { return };
        let Ok(scaled) = self.scaler.scale(&loss) else { return };
        if scaled.backward().is_err() {
            return;
        }
        if self.scaler.step(&mut *self.opt).is_ok() {
            let _ = self.scaler.update();
        }
    }

    fn capture(&self, steps: u64) -> Checkpoint {
        let mut c =
            Checkpoint::capture(MODEL, self.precision, steps, &self.params, &*self.opt, &self.scaler).expect("capture");
        c.rngs.push(("data".into(), Generator::with_stream(7, 1).state()));
        c.buffers.push(("norm.running_mean".into(), Tensor::from_vec(vec![0.5f32, -0.25, 1.0], &[3]).expect("buf")));
        c.buffers.push(("norm.count".into(), Tensor::from_vec(vec![3.0f64], &[]).expect("buf")));
        c.extra.insert("epoch".into(), "1".into());
        c
    }
}

/// The four base checkpoints, as the library writes them.
fn bases() -> &'static [Vec<u8>; 4] {
    static BASES: OnceLock<[Vec<u8>; 4]> = OnceLock::new();
    BASES.get_or_init(|| {
        std::array::from_fn(|kind| {
            let mut run = Run::new(kind);
            let steps = if kind == 3 { 0 } else { 2 };
            for _ in 0..steps {
                run.step();
            }
            run.capture(steps).to_bytes().expect("a captured checkpoint encodes")
        })
    })
}

/// A safetensors file split into its header (JSON) and data section.
struct File {
    header: Map<String, Value>,
    data: Vec<u8>,
}

impl File {
    fn parse(bytes: &[u8]) -> File {
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let header = serde_json::from_slice(&bytes[8..8 + n]).expect("the library writes JSON");
        File { header, data: bytes[8 + n..].to_vec() }
    }

    fn tensor_names(&self) -> Vec<String> {
        self.header.keys().filter(|k| *k != "__metadata__").cloned().collect()
    }

    fn meta(&mut self) -> &mut Map<String, Value> {
        let entry = self.header.entry("__metadata__").or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        entry.as_object_mut().expect("made an object above")
    }

    /// The data bytes a tensor's offsets name, if they are in range.
    fn tensor_data(&self, name: &str) -> Option<&[u8]> {
        let offs = self.header.get(name)?.get("data_offsets")?.as_array()?;
        let (b, e) = (offs.first()?.as_u64()? as usize, offs.get(1)?.as_u64()? as usize);
        self.data.get(b..e)
    }

    /// Recomputes every `digest.<tensor>` and `header_digest` as the
    /// library does (docs/reliability.md, "File layout").
    fn sign(&mut self) {
        for name in self.tensor_names() {
            if let Some(d) = self.tensor_data(&name).map(|d| hex(&Sha256::digest(d))) {
                self.meta().insert(format!("digest.{name}"), Value::String(d));
            }
        }
        let mut h = Sha256::new();
        let mut put = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        let meta: BTreeMap<String, String> = self
            .meta()
            .iter()
            .filter(|(k, _)| *k != "header_digest")
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect();
        for (k, v) in &meta {
            put(k);
            put(v);
        }
        for name in self.tensor_names() {
            let info = &self.header[&name];
            put(&name);
            put(info.get("dtype").and_then(Value::as_str).unwrap_or(""));
            let shape = info.get("shape").and_then(Value::as_array).cloned().unwrap_or_default();
            put(&shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","));
        }
        let digest = hex(&h.finalize());
        self.meta().insert("header_digest".into(), Value::String(digest));
    }

    fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("JSON");
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.data);
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Values a metadata entry is set to: numbers at and past every type's
/// range, non-finite floats, the other enumerations' tokens, JSON lists.
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2",
    "0.5",
    "1e-45",
    "-0",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "true",
    "false",
    "none",
    "enabled",
    "disabled",
    "sgd",
    "adam",
    "adamw",
    "f32",
    "f16",
    "bf16",
    "master-weights",
    "pure-f16",
    "mixprec-checkpoint",
    "[]",
    "[\"fc1.weight\"]",
    "[\"fc1.weight\",\"fc1.weight\",\"fc1.bias\",\"fc2.weight\",\"fc2.bias\"]",
    "[\"fc2.bias\",\"fc2.weight\",\"fc1.bias\",\"fc1.weight\"]",
    "[\"fc1.weight\",\"fc1.bias\",\"fc2.weight\",\"fc2.bias\",\"ghost\"]",
    "[{\"name\":\"fc1.weight\",\"dtype\":\"f32\",\"shape\":[3,4]}]",
    "[{\"name\":\"fc1.weight\",\"dtype\":\"f32\",\"shape\":[18446744073709551615,4]}]",
    "[{\"name\":\"fc1.weight\",\"dtype\":\"f32\"}]",
    "{}",
    "[1,2",
];

const DTYPES: &[&str] = &[
    "F64", "F32", "F16", "BF16", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "BOOL", "F8_E4M3", "F8_E5M2",
    "F4", "C64", "X",
];

const DIMS: &[u64] =
    &[0, 1, 2, 3, 4, 5, 8, 12, 40, 1 << 20, 1 << 31, 1 << 32, 1 << 40, 1 << 62, (1 << 63) + 1, u64::MAX - 1, u64::MAX];

const NAMES: &[&str] = &[
    "model/fc1.weight",
    "model/ghost",
    "master/fc1.weight",
    "master/fc2.bias",
    "optim/step/fc1.weight",
    "optim/exp_avg/fc2.weight",
    "optim/momentum/fc1.bias",
    "rng/data",
    "rng/x",
    "buffer/x",
    "buffer/norm.count",
    "stray",
];

/// A short string from the input (length byte, then up to 24 bytes).
fn text(b: &mut Bytes) -> String {
    let n = (b.u8() % 25) as usize;
    let bytes: Vec<u8> = (0..n).map(|_| b.u8()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn pick<'a, T>(b: &mut Bytes, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() { None } else { items.get(b.u8() as usize % items.len()) }
}

fn dim(b: &mut Bytes) -> u64 {
    let raw = b.u8();
    if raw & 0x80 != 0 { u64::from(raw & 0x7f) } else { DIMS[raw as usize % DIMS.len()] }
}

/// Applies one mutation drawn from `b`.
fn mutate(f: &mut File, b: &mut Bytes) {
    let names = f.tensor_names();
    match b.u8() % 14 {
        0 => {
            let keys: Vec<String> = f.meta().keys().cloned().collect();
            if let Some(k) = pick(b, &keys).cloned() {
                let v =
                    if b.u8() & 1 == 0 { pick(b, VALUES).map(|s| s.to_string()).unwrap_or_default() } else { text(b) };
                f.meta().insert(k, Value::String(v));
            }
        }
        1 => {
            let keys: Vec<String> = f.meta().keys().cloned().collect();
            if let Some(k) = pick(b, &keys).cloned() {
                f.meta().remove(&k);
            }
        }
        2 => {
            let k = match b.u8() % 3 {
                0 => format!("digest.{}", pick(b, NAMES).copied().unwrap_or_default()),
                1 => format!("user.{}", text(b)),
                _ => text(b),
            };
            let v = pick(b, VALUES).map(|s| s.to_string()).unwrap_or_default();
            f.meta().insert(k, Value::String(v));
        }
        3 => {
            // A metadata value that is not a string.
            let keys: Vec<String> = f.meta().keys().cloned().collect();
            if let Some(k) = pick(b, &keys).cloned() {
                f.meta().insert(k, Value::from(b.u32()));
            }
        }
        4 => {
            if let (Some(n), Some(d)) = (pick(b, &names).cloned(), pick(b, DTYPES)) {
                f.header[&n]["dtype"] = Value::String(d.to_string());
            }
        }
        5 => {
            if let Some(n) = pick(b, &names).cloned() {
                let mut shape = f.header[&n]["shape"].as_array().cloned().unwrap_or_default();
                match b.u8() % 4 {
                    0 => shape.clear(),
                    1 => shape.push(Value::from(dim(b))),
                    2 => {
                        shape.pop();
                    }
                    _ => {
                        let i = b.u8() as usize;
                        let d = dim(b);
                        let len = shape.len();
                        if len > 0 {
                            shape[i % len] = Value::from(d);
                        }
                    }
                }
                f.header[&n]["shape"] = Value::Array(shape);
            }
        }
        6 => {
            if let Some(n) = pick(b, &names).cloned() {
                let which = (b.u8() & 1) as usize;
                let old = f.header[&n]["data_offsets"][which].as_u64().unwrap_or(0);
                let v = match b.u8() % 3 {
                    0 => old.wrapping_add(u64::from(b.u8() % 9)).wrapping_sub(4),
                    1 => dim(b),
                    _ => u64::from(b.u16()),
                };
                f.header[&n]["data_offsets"][which] = Value::from(v);
            }
        }
        7 => {
            if let Some(n) = pick(b, &names).cloned() {
                let to = if b.u8() & 1 == 0 { pick(b, NAMES).copied().unwrap_or("x").to_string() } else { text(b) };
                if let Some(v) = f.header.remove(&n) {
                    f.header.insert(to, v);
                }
            }
        }
        8 => {
            if let Some(n) = pick(b, &names).cloned() {
                f.header.remove(&n);
            }
        }
        9 => {
            if !f.data.is_empty() {
                let i = b.u16() as usize % f.data.len();
                f.data[i] ^= b.u8() | 1;
            }
        }
        10 => {
            let n = b.u8() as usize;
            if b.u8() & 1 == 0 {
                let keep = f.data.len().saturating_sub(n % 17);
                f.data.truncate(keep);
            } else {
                f.data.extend(std::iter::repeat_n(0xa5, n % 17));
            }
        }
        11 => {
            // The same bytes under a second name.
            if let (Some(n), Some(to)) = (pick(b, &names).cloned(), pick(b, NAMES)) {
                let v = f.header[&n].clone();
                f.header.insert(to.to_string(), v);
            }
        }
        12 => {
            // One entry of the `params` list.
            let Some(Value::String(s)) = f.meta().get("params").cloned() else { return };
            let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(&s) else { return };
            if items.is_empty() {
                return;
            }
            let i = b.u8() as usize % items.len();
            // A list of names (an earlier mutation) has no fields to set.
            if !items[i].is_object() {
                return;
            }
            match b.u8() % 5 {
                0 => items[i]["shape"] = Value::Array(vec![Value::from(dim(b)), Value::from(dim(b))]),
                1 => {
                    items[i]["dtype"] =
                        Value::String(["f32", "f16", "bf16", "f64", "u8", "x"][b.u8() as usize % 6].into())
                }
                2 => items[i]["name"] = Value::String(text(b)),
                3 => {
                    let dup = items[i].clone();
                    items.push(dup);
                }
                _ => {
                    items.remove(i);
                }
            }
            f.meta().insert("params".into(), Value::String(Value::Array(items).to_string()));
        }
        _ => {
            // Tensor data replaced by bytes of the input (generator states, step counts).
            if let Some(n) = pick(b, &names).cloned()
                && let Some(offs) = f.header[&n]["data_offsets"].as_array()
                && let (Some(s), Some(e)) = (offs[0].as_u64(), offs.get(1).and_then(Value::as_u64))
            {
                let (s, e) = (s as usize, e as usize);
                if s <= e && e <= f.data.len() {
                    for byte in &mut f.data[s..e] {
                        if b.is_empty() {
                            break;
                        }
                        *byte = b.u8();
                    }
                }
            }
        }
    }
}

/// A checkpoint that loaded is written again and reads back the same.
fn round_trip(c: &Checkpoint) {
    let Ok(bytes) = c.to_bytes() else { return };
    let back = Checkpoint::from_bytes(&bytes).expect("a checkpoint the library wrote loads");
    let d = back.differences(c);
    // NaN in the scaler's fields compares unequal to itself.
    let nan_only = d == ["scaler"] && format!("{:?}", back.scaler) == format!("{:?}", c.scaler);
    assert!(d.is_empty() || nan_only, "differences after a round trip: {d:?}");
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    if mode & 1 == 0 {
        if let Ok(c) = Checkpoint::from_bytes(b.rest()) {
            round_trip(&c);
        }
        return;
    }
    let kind = (mode >> 1) as usize % 4;
    let mut file = File::parse(&bases()[kind]);
    for _ in 0..16 {
        if b.is_empty() {
            break;
        }
        mutate(&mut file, &mut b);
    }
    if mode & 0x10 == 0 {
        file.sign();
    }
    let bytes = file.to_bytes();
    if let Some(dir) = std::env::var_os("CHECKPOINT_SEED_DIR") {
        // Writes the file as a raw-half input (how the committed raw seeds were made).
        let name = format!("seed-raw-{}", &hex(&Sha256::digest(&bytes))[..12]);
        std::fs::write(std::path::Path::new(&dir).join(name), [&[0u8][..], &bytes].concat()).expect("seed dir");
    }
    let Ok(c) = Checkpoint::from_bytes(&bytes) else { return };
    round_trip(&c);
    let mut run = Run::new(kind);
    if c.restore(MODEL, run.precision, &run.params, &mut *run.opt, &mut run.scaler).is_ok() {
        for (_, state) in &c.rngs {
            let mut g = Generator::from_state(state);
            let n = 1 + u64::from(g.next_u32());
            let _ = (g.next_u64(), g.below(n), g.uniform_f32());
        }
        run.step();
        run.step();
    }
});
