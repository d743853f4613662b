#!/usr/bin/env bash
# Builds every cargo-fuzz target with the nightly toolchain (ASan, debug
# assertions) and runs each for FUZZ_SECONDS (default 30) on a scratch copy of
# its committed seed corpus, FUZZ_JOBS targets at a time (default 2). Fails if
# the nightly, cargo-fuzz or a build is missing, or if any target finds a
# crash, a leak or a timeout. Prints executions per target at the end.
#
#   fuzz/run.sh                   # what .ci/run does
#   FUZZ_SECONDS=600 FUZZ_JOBS=6 fuzz/run.sh
#   FUZZ_TARGETS="gemm casts" fuzz/run.sh
#   FUZZ_KEEP=1 fuzz/run.sh       # grow fuzz/corpus/<target>/ (git ignores all but seed-*)
#   FUZZ_BIN_DIR=dir fuzz/run.sh  # run prebuilt binaries (fuzz/package.sh), no toolchain needed
#   FUZZ_LOG_DIR=dir fuzz/run.sh  # keep each target's libFuzzer log and artifacts there
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-2}

bin_dir=${FUZZ_BIN_DIR:-fuzz/target/x86_64-unknown-linux-gnu/release}
start=$(date +%s)
if [[ -n ${FUZZ_BIN_DIR:-} ]]; then
    # Prebuilt binaries (fuzz/package.sh): nothing to build.
    targets=${FUZZ_TARGETS:-$(cd "$bin_dir" && ls)}
else
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)"; exit 1
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        echo "fuzz: installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
    targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
    if [[ -n ${FUZZ_TARGETS:-} ]]; then
        for t in $targets; do cargo +nightly fuzz build --debug-assertions "$t"; done
    else
        cargo +nightly fuzz build --debug-assertions
    fi
fi
[[ -n $targets ]] || { echo "fuzz: no targets"; exit 1; }
for t in $targets; do
    [[ -x $bin_dir/$t ]] || { echo "fuzz: $t did not build"; exit 1; }
done
echo "fuzz: built in $(( $(date +%s) - start )) s; $(nproc) CPUs; targets: $targets"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
run_one() {
    local t=$1 bin=$bin_dir/$1
    local corpus=("$scratch/$t/corpus" "fuzz/corpus/$t")
    [[ -n ${FUZZ_KEEP:-} ]] && corpus=("fuzz/corpus/$t")
    mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts" "fuzz/corpus/$t"
    "$bin" "${corpus[@]}" -max_total_time="$seconds" -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$scratch/$t/artifacts/" >"$scratch/$t/log" 2>&1
}

failed=()
running=()
for t in $targets; do
    run_one "$t" & running+=("$!:$t")
    if (( ${#running[@]} >= jobs )); then
        entry=${running[0]}; running=("${running[@]:1}")
        wait "${entry%%:*}" || failed+=("${entry#*:}")
    fi
done
for entry in "${running[@]}"; do
    wait "${entry%%:*}" || failed+=("${entry#*:}")
done

printf '%-10s %12s %10s %8s %s\n' target executions exec/s corpus result
for t in $targets; do
    log=$scratch/$t/log
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
    result=ok
    if [[ " ${failed[*]} " == *" $t "* ]]; then result=FAILED; fi
    printf '%-10s %12s %10s %8s %s\n' "$t" "$execs" "$rate" "$corpus" "$result"
done
if [[ -n ${FUZZ_LOG_DIR:-} ]]; then
    mkdir -p "$FUZZ_LOG_DIR"
    for t in $targets; do
        cp "$scratch/$t/log" "$FUZZ_LOG_DIR/$t.log"
        cp -r "$scratch/$t/artifacts" "$FUZZ_LOG_DIR/$t-artifacts"
    done
fi
if (( ${#failed[@]} )); then
    for t in "${failed[@]}"; do
        echo; echo "=== $t: last lines of its log"; tail -40 "$scratch/$t/log"
        for a in "$scratch/$t/artifacts"/*; do
            [[ -f $a ]] && { echo "artifact $(basename "$a") (base64):"; base64 -w0 "$a"; echo; }
        done
    done
    exit 1
fi
echo "fuzz: all targets ran ${seconds} s without a finding ($(( $(date +%s) - start )) s in all)"
