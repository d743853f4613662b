#!/usr/bin/env bash
# Builds every fuzz target (ASan, debug assertions) and packs the binaries,
# debug info stripped (symbols kept), into one tar.gz that runs anywhere
# x86-64 with glibc and libstdc++: FUZZ_BIN_DIR=<unpacked dir> fuzz/run.sh.
#
#   fuzz/package.sh .device/fuzz-bin.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: fuzz/package.sh OUT.tar.gz}
cargo +nightly fuzz build --debug-assertions
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/fuzz-bin"
for t in $(cargo +nightly fuzz list); do
    strip --strip-debug -o "$stage/fuzz-bin/$t" "fuzz/target/x86_64-unknown-linux-gnu/release/$t"
done
mkdir -p "$(dirname "$out")"
tar -czf "$out" -C "$stage" fuzz-bin
ls -l "$out"
