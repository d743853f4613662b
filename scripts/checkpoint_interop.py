#!/usr/bin/env python3
"""mixprec checkpoints from Python (numpy + safetensors; ml_dtypes for bf16).

    checkpoint_interop.py check PATH   verify a checkpoint mixprec wrote
                                       (`cargo run --release --example checkpoint_interop -- write PATH`):
                                       format, version, every digest, every value of the fixture
    checkpoint_interop.py write PATH   write the same fixture for mixprec to check
                                       (`... --example checkpoint_interop -- check PATH`)

The fixture is defined identically in examples/checkpoint_interop.rs: values
exact in their dtype (so no rounding is involved), with ±0, ±Inf, NaN,
subnormals and the largest finite value of each dtype. The layout (tensor
names, metadata keys, digests) is specified in docs/reliability.md.
Exits non-zero on any mismatch.
"""

import hashlib
import json
import struct
import sys

import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

BF16 = ml_dtypes.bfloat16
SPECIALS = {
    "f32": [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-149, float(np.finfo(np.float32).max), -(2.0**-126)],
    "f16": [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-24, 65504.0, -(2.0**-14)],
    "bf16": [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-133, float(ml_dtypes.finfo(BF16).max), -(2.0**-126)],
}
NP = {"f32": np.float32, "f16": np.float16, "bf16": BF16}
ST = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def values(dtype, shape, offset):
    """Element j = i + offset: the dtype's special values first, then ((37 j) mod 101 - 50) / 8."""
    n = int(np.prod(shape)) if shape else 1
    out = []
    for i in range(n):
        j = i + offset
        out.append(SPECIALS[dtype][j] if j < len(SPECIALS[dtype]) else ((j * 37) % 101 - 50) / 8)
    return np.array(out, dtype=np.float64).astype(NP[dtype]).reshape(shape)


PARAMS = [("layer.weight", "f16", [4, 8]), ("layer.bias", "f32", [8]), ("norm.weight", "bf16", [9])]


def fixture():
    """(tensors, metadata without digests), as mixprec's fixture."""
    t = {}
    for name, dtype, shape in PARAMS:
        t[f"model/{name}"] = values(dtype, shape, 0)
    t["master/layer.weight"] = values("f32", [4, 8], 100)
    t["optim/momentum/layer.weight"] = values("f32", [4, 8], 200)
    t["optim/momentum/norm.weight"] = values("f32", [9], 300)
    t["buffer/running_mean"] = values("f32", [5], 400)
    rng = b"MPRG" + struct.pack("<IQQ", 1, 7, 3) + (1234567).to_bytes(16, "little")
    t["rng/data"] = np.frombuffer(rng, dtype=np.uint8).copy()
    meta = {
        "format": "mixprec-checkpoint",
        "format_version": "1",
        "model": "interop-fixture",
        "precision": "master-weights",
        "step": "42",
        "params": json.dumps([{"name": n, "dtype": d, "shape": s} for n, d, s in PARAMS]),
        "optimizer": "sgd",
        "optimizer.params": json.dumps([n for n, _, _ in PARAMS]),
        "optimizer.lr": "0.05",
        "optimizer.momentum": "0.9",
        "optimizer.dampening": "0",
        "optimizer.weight_decay": "0.0001",
        "optimizer.nesterov": "true",
        "scaler": "enabled",
        "scaler.scale": "32768",
        "scaler.growth_tracker": "17",
        "scaler.skipped_steps": "3",
        "scaler.init_scale": "65536",
        "scaler.growth_factor": "2",
        "scaler.backoff_factor": "0.5",
        "scaler.growth_interval": "2000",
        "scaler.dynamic": "true",
        "scaler.min_scale": "1",
        "scaler.max_consecutive_skips": "50",
        "scaler.peak": "0.375",
        "scaler.peak_ratio": "2.5",
        "scaler.applied_steps": "39",
        "scaler.consecutive_skips": "1",
        "scaler.statistics": "enabled",
        "scaler.statistics.headroom": "1.5",
        "scaler.statistics.peak_decay": "0.98",
        "scaler.statistics.overflow_backoff": "0.00390625",
        "user.note": "interop ünïcode ✓",
    }
    return t, meta


def st_dtype(a):
    if a.dtype == BF16:
        return "BF16"
    return {np.float16: "F16", np.float32: "F32", np.float64: "F64", np.uint8: "U8", np.uint64: "U64"}[a.dtype.type]


def header_digest(meta, tensors):
    """SHA-256 over the metadata (sorted, without header_digest) and the tensor
    table (sorted: name, dtype, shape), each string prefixed by its UTF-8
    length as a little-endian u64."""
    h = hashlib.sha256()

    def put(s):
        b = s.encode("utf-8")
        h.update(struct.pack("<Q", len(b)))
        h.update(b)

    for k in sorted(k for k in meta if k != "header_digest"):
        put(k)
        put(meta[k])
    for name in sorted(tensors):
        a = tensors[name]
        put(name)
        put(st_dtype(a))
        put(",".join(str(d) for d in a.shape))
    return h.hexdigest()


def with_digests(tensors, meta):
    meta = dict(meta)
    for name, a in tensors.items():
        meta[f"digest.{name}"] = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
    meta["header_digest"] = header_digest(meta, tensors)
    return meta


def same_bits(a, b):
    """Equal dtype, shape and bits (any NaN equals any NaN)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    x, y = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(x) & np.isnan(y)
    same = (x == y) & (np.signbit(x) == np.signbit(y))
    return bool(np.all(both_nan | same))


def check(path):
    with safe_open(path, framework="np") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    want_t, want_meta = fixture()
    errors = []
    for k, v in want_meta.items():
        numeric = k.startswith(("optimizer.", "scaler.")) and k not in (
            "optimizer.params",
            "optimizer.nesterov",
            "scaler.dynamic",
            "scaler.statistics",
        )
        if numeric:
            ok = k in meta and float(meta[k]) == float(v)
        elif k in ("params", "optimizer.params"):
            ok = k in meta and json.loads(meta[k]) == json.loads(v)
        else:
            ok = meta.get(k) == v
        if not ok:
            errors.append(f"metadata {k}: {meta.get(k)!r}, expected {v!r}")
    if set(tensors) != set(want_t):
        errors.append(f"tensors {sorted(tensors)}, expected {sorted(want_t)}")
    for name, want in want_t.items():
        got = tensors.get(name)
        if got is None:
            continue
        if got.dtype == np.uint8:
            if got.tobytes() != want.tobytes():
                errors.append(f"{name}: bytes differ")
        elif not same_bits(got, want):
            errors.append(f"{name}: {got.dtype}{list(got.shape)} {got.ravel()[:10]} != {want.dtype}{list(want.shape)} {want.ravel()[:10]}")
        digest = hashlib.sha256(np.ascontiguousarray(got).tobytes()).hexdigest()
        if meta.get(f"digest.{name}") != digest:
            errors.append(f"{name}: digest differs")
    if meta.get("header_digest") != header_digest(meta, tensors):
        errors.append("header digest differs")
    for e in errors:
        print("MISMATCH", e)
    if errors:
        sys.exit(1)
    print(f"{path}: {len(tensors)} tensors, {len(meta)} metadata entries, digests and values as the fixture")


def write(path):
    tensors, meta = fixture()
    save_file(tensors, path, metadata=with_digests(tensors, meta))
    print(f"{path}: written ({len(tensors)} tensors)")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "write"):
        sys.exit(__doc__)
    {"check": check, "write": write}[sys.argv[1]](sys.argv[2])
