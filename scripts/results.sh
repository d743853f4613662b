#!/usr/bin/env bash
# Regenerates the "Examples" section of docs/results.md (between its
# BEGIN/END markers; the rest of the file is left as it is):
#   - accuracy / validation loss per example and precision, mean over seeds,
#     from the --json records of whole default runs (docs/records/*.jsonl,
#     each file's '#' lines say where and from which commit; examples without
#     records are run here);
#   - time per step, 1 thread and all threads: benches/precision_step.rs
#     (criterion medians; one fixed batch, SGD lr 0.01 momentum 0.9, data
#     loading and evaluation not timed, warm-up excluded);
#   - peak tensor bytes by dtype and peak activation bytes: short runs of the
#     examples built from this checkout (`--steps 10 --threads 1`);
#   - the CNN's activation-memory ratio master-weights / FP32 at batch 128;
#   - PyTorch's step for the same models, one thread (benches/pytorch/train_step.py),
#     beside ours, and the issue's ratio targets.
#
# Usage: scripts/results.sh [--quick] [PART [MODEL...]]
#   PART: all (default) | build | accuracy | memory | timing | report
#   MODEL (timing only): mlp cnn char_lm (default: all three), so the timing
#         can be split into short holds of the benchmark lock:
#     mp-build scripts/results.sh build
#     scripts/results.sh accuracy; scripts/results.sh memory
#     for m in mlp cnn char_lm; do mp-bench scripts/results.sh timing $m; done
#     scripts/results.sh report
# Environment:
#   RESULTS_DIR        where the parts leave their records (default target/results)
#   ACCURACY_RECORDS   JSONL files of --json records of accuracy runs made apart
#                      (default docs/records/*.jsonl; "none": run every example here)
#   SEEDS, PRECISIONS  of the accuracy runs made here (default "1 2 3", the five modes)
#   BUDGET_<EXAMPLE>   extra flags of that example's accuracy runs (e.g. BUDGET_MNIST_CNN="--epochs 1")
#   PYTHON             the interpreter with torch (default /work/venv/bin/python)
# --quick: one seed, 20-step accuracy runs, 0.1 s criterion samples, 2-step PyTorch timing;
#          checks the pipeline end to end and writes $RESULTS_DIR/quick/section.md, not docs/results.md
#          (the numbers mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [[ ${1:-} == --quick ]]; then quick=1; shift; fi
part=${1:-all}
(( $# )) && shift
models=${*:-"mlp cnn char_lm"}
RESULTS_DIR=${RESULTS_DIR:-target/results}
(( quick )) && RESULTS_DIR=$RESULTS_DIR/quick
SEEDS=${SEEDS:-"1 2 3"}
PRECISIONS=${PRECISIONS:-"f32 autocast master-weights autocast-bf16 master-weights-bf16"}
PYTHON=${PYTHON:-/work/venv/bin/python}
ACCURACY_RECORDS=${ACCURACY_RECORDS:-$(ls docs/records/*.jsonl 2>/dev/null | tr '\n' ' ')}
[[ $ACCURACY_RECORDS == none ]] && ACCURACY_RECORDS=""
(( quick )) && ACCURACY_RECORDS="" SEEDS=1
EXAMPLES="mnist_mlp mnist_cnn char_lm"
bin=target/release/examples
mkdir -p "$RESULTS_DIR"

example_of() { case $1 in mlp) echo mnist_mlp ;; cnn) echo mnist_cnn ;; *) echo "$1" ;; esac; }
# What this checkout is, for the records of the parts run here.
stamp() {
  local dirty=""
  [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && dirty="+changes"
  printf '{"part":"%s","commit":"%s%s","utc":"%s","cpu":"%s","nproc":%s,"load":%s}\n' "$1" \
    "$(git rev-parse --short HEAD)" "$dirty" "$(date -u +%Y-%m-%dT%H:%MZ)" \
    "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)"
}

build() {
  cargo build --release $(for e in $EXAMPLES; do printf -- '--example %s ' "$e"; done) >&2
  cargo bench --no-run --bench precision_step >&2
}

accuracy() {
  : > "$RESULTS_DIR/accuracy.jsonl"
  for ex in $EXAMPLES; do
    if [[ -n $ACCURACY_RECORDS ]] && grep -qh "\"example\":\"$ex\"" $ACCURACY_RECORDS; then continue; fi
    var=BUDGET_${ex^^}
    budget=${!var:-}
    (( quick )) && budget="--steps 20"
    (( quick )) && [[ $ex == char_lm ]] && budget="$budget --valid-chars 4096"
    stamp accuracy >> "$RESULTS_DIR/accuracy.jsonl"
    for p in $PRECISIONS; do
      for s in $SEEDS; do
        echo "accuracy: $ex $p seed $s $budget" >&2
        "$bin/$ex" --precision "$p" --seed "$s" $budget --json | tail -n 1 >> "$RESULTS_DIR/accuracy.jsonl"
      done
    done
  done
}

# Peak memory does not depend on the number of steps past the first few.
memory() {
  stamp memory > "$RESULTS_DIR/memory.jsonl"
  for ex in $EXAMPLES; do
    short_eval=""
    [[ $ex == char_lm ]] && short_eval="--valid-chars 4096"
    for p in $PRECISIONS; do
      echo "memory: $ex $p" >&2
      "$bin/$ex" --precision "$p" --steps 10 --threads 1 $short_eval --json | tail -n 1 >> "$RESULTS_DIR/memory.jsonl"
    done
  done
}

# Ours (criterion medians of benches/precision_step.rs) then PyTorch's, one model per call.
timing() {
  local m=$1 crit=(--warm-up-time 1 --measurement-time 3) steps=20 repeats=7 f16_steps=8 f16_repeats=3
  (( quick )) && crit=(--warm-up-time 0.1 --measurement-time 0.1) steps=2 repeats=2 f16_steps=1 f16_repeats=1
  echo "timing: $m (ours)" >&2
  cargo bench --bench precision_step -- "step_$m/" --noplot "${crit[@]}" >&2
  { stamp timing
    for f in target/criterion/step_"$m"/*/threads=*/new/estimates.json; do
      p=${f#target/criterion/step_$m/}; p=${p%%/*}
      t=${f%/new/estimates.json}; t=${t##*threads=}
      python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(json.dumps({"model": sys.argv[2],
        "precision": sys.argv[3], "threads": sys.argv[4], "median_ms": e["median"]["point_estimate"] / 1e6}))' \
        "$f" "$m" "$p" "$t"
    done; } > "$RESULTS_DIR/ours-$m.jsonl"
  echo "timing: $m (PyTorch)" >&2
  { stamp timing
    if "$PYTHON" -c 'import torch' 2>/dev/null; then
      "$PYTHON" benches/pytorch/train_step.py --threads 1 --models "$m" --precisions f32,autocast-bf16 \
        --steps "$steps" --repeats "$repeats"
      # PyTorch's f16 step on the CPU is slow: fewer steps.
      "$PYTHON" benches/pytorch/train_step.py --threads 1 --models "$m" --precisions autocast-f16 \
        --steps "$f16_steps" --repeats "$f16_repeats" --warmup 2
    else
      echo '{"error": "torch is not installed for '"$PYTHON"'"}'
    fi; } > "$RESULTS_DIR/torch-$m.jsonl"
}

report() {
  python3 scripts/results_report.py "$RESULTS_DIR" "$quick" $ACCURACY_RECORDS
}

case $part in
  build) build ;;
  accuracy) accuracy ;;
  memory) memory ;;
  timing) for m in $models; do timing "$m"; done ;;
  report) report ;;
  all) build; accuracy; memory; for m in $models; do timing "$m"; done; report ;;
  *) echo "unknown part '$part' (all, build, accuracy, memory, timing, report)" >&2; exit 2 ;;
esac
