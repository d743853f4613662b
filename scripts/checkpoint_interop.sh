#!/usr/bin/env bash
# Checkpoint interop with Python, both ways: installs pinned numpy, safetensors
# and ml_dtypes into a venv (MIXPREC_INTEROP_VENV, default target/interop-venv),
# then Python checks a checkpoint mixprec wrote and mixprec checks one Python
# wrote (scripts/checkpoint_interop.py). Fails, never skips, if any step cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${MIXPREC_INTEROP_VENV:-target/interop-venv}
python=${PYTHON:-python3}
[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet numpy==2.4.6 safetensors==0.8.0 ml_dtypes==0.6.0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo build --release --quiet --example checkpoint_interop
bin=target/release/examples/checkpoint_interop
"$bin" write "$tmp/mixprec.safetensors"
"$venv/bin/python" scripts/checkpoint_interop.py check "$tmp/mixprec.safetensors"
"$venv/bin/python" scripts/checkpoint_interop.py write "$tmp/python.safetensors"
"$bin" check "$tmp/python.safetensors"
echo "checkpoint interop: both directions equal the fixture"
