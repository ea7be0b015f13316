#!/usr/bin/env bash
# The GPU check: one short run (at most GPU_CHECK_BUDGET_SECONDS, default 570 s: under 10 minutes) on a machine
# with a GPU, everything written under one folder:
#
#   bash benchmarks/gpu_check.sh [OUT]          # OUT: $1, else $OUT, else runs/gpu_check
#
# 1. the machine: nvidia-smi -L and --query-gpu, TensorFlow's version and devices, the commit (settings.json,
#    nvidia-smi.txt, tf_env.json);
# 2. synthetic records for the training part (tfrecords_tools/make_synthetic.py: GPU_CHECK_NUM_TRAIN 2000 train,
#    GPU_CHECK_NUM_VAL 200 val, GPU_CHECK_WORKERS processes, default all cores) in OUT/data;
# 3. the peak GPU memory of full-size Vol. SHN training at batch 6 (benchmarks/gpu_memory.py; goal <= 11 GiB,
#    the paper's GTX 1080 Ti) -> gpu_memory.json;
# 4. full-size Table 5 rows (benchmarks/timing.py --json): float32, mixed_float16 (--mixed_precision), and XLA
#    (--xla, training steps only: the float32 run already times XLA's test forms) -> timing_{float32,mixed,xla}.json;
# 5. full-size SHN training on those records (python -m smplr_tf.train --flagfile=flags/table1/shn.cfg) for
#    min(GPU_CHECK_TRAIN_SECONDS (480), what is left of the budget after the parts above minus
#    GPU_CHECK_TRAIN_RESERVE_SECONDS (90: start-up, the last validation and the final report)) seconds of fit,
#    ended cleanly by --max_train_seconds -> shn_train/ (log.csv, run.json, TensorBoard). Parts 3-4 run first so
#    that training takes whatever time they leave; how the time splits on a real GPU has not been measured yet;
# 6. benchmarks/gpu_check_report.py: summary.json, summary.md, loss_curve.png, and the summary printed.
#
# Logs of every part: OUT/logs/<part>.log; parts.tsv: part, exit status (or "skipped"), seconds, note.
# Parts 1, 2 and 6 are required: their failure stops the check (exit 1). Parts 3-5 are optional: a failure or
# a timeout is recorded in parts.tsv and the summary, the check goes on, and it exits 1 at the end.
#
# Every size is an environment variable (the defaults are the GPU check's; tests/test_gpu_check.py runs it tiny
# on a CPU): GPU_CHECK_BUDGET_SECONDS, GPU_CHECK_TRAIN_SECONDS, GPU_CHECK_TRAIN_RESERVE_SECONDS,
# GPU_CHECK_MIN_TRAIN_SECONDS (below it training is skipped, 30), GPU_CHECK_NUM_TRAIN, GPU_CHECK_NUM_VAL,
# GPU_CHECK_WORKERS, GPU_CHECK_SYNTH_FLAGS (extra make_synthetic flags), GPU_CHECK_FLAGFILE, GPU_CHECK_STEPS_PER_EPOCH
# (100: one loss-curve point and one validation per 100 steps), GPU_CHECK_VALIDATION_STEPS (16),
# GPU_CHECK_TRAIN_FLAGS (extra training flags; default --nodeterministic: TF op determinism costs GPU speed),
# GPU_CHECK_MEMORY_FLAGS, GPU_CHECK_MEMORY_TIMEOUT (120), GPU_CHECK_TIMING_FLAGS (default --no_bf16
# --repeats=10 --budget_s=5), GPU_CHECK_TIMING_TIMEOUT (150 per variant), GPU_CHECK_COMMIT (the commit recorded,
# for a copy of the tree without .git; default: git rev-parse HEAD, marked when the tree has uncommitted
# changes), PYTHON (python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-${OUT:-}}"
if [[ -z "$OUT" ]]; then
  OUT=runs/gpu_check  # below the repository root, where the commands run
elif [[ "$OUT" != /* ]]; then
  OUT="$PWD/$OUT"  # a folder given is taken from where the script was started
fi
if [[ "$OUT" == / ]]; then
  echo "gpu_check: refusing to write into /" >&2
  exit 2
fi
cd "$ROOT"
PY="${PYTHON:-python}"
BUDGET="${GPU_CHECK_BUDGET_SECONDS:-570}"
TRAIN_SECONDS="${GPU_CHECK_TRAIN_SECONDS:-480}"
TRAIN_RESERVE="${GPU_CHECK_TRAIN_RESERVE_SECONDS:-90}"
MIN_TRAIN="${GPU_CHECK_MIN_TRAIN_SECONDS:-30}"
NUM_TRAIN="${GPU_CHECK_NUM_TRAIN:-2000}"
NUM_VAL="${GPU_CHECK_NUM_VAL:-200}"
WORKERS="${GPU_CHECK_WORKERS:-$(nproc)}"
SYNTH_FLAGS="${GPU_CHECK_SYNTH_FLAGS:-}"
FLAGFILE="${GPU_CHECK_FLAGFILE:-flags/table1/shn.cfg}"
STEPS_PER_EPOCH="${GPU_CHECK_STEPS_PER_EPOCH:-100}"
VAL_STEPS="${GPU_CHECK_VALIDATION_STEPS:-16}"
TRAIN_FLAGS="${GPU_CHECK_TRAIN_FLAGS---nodeterministic}"
MEMORY_FLAGS="${GPU_CHECK_MEMORY_FLAGS:-}"
MEMORY_TIMEOUT="${GPU_CHECK_MEMORY_TIMEOUT:-120}"
TIMING_FLAGS="${GPU_CHECK_TIMING_FLAGS---no_bf16 --repeats=10 --budget_s=5}"
TIMING_TIMEOUT="${GPU_CHECK_TIMING_TIMEOUT:-150}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

START=$(date +%s)
LOGS="$OUT/logs"
mkdir -p "$OUT"
# Only what this script writes is removed: OUT may be a folder that holds other things.
rm -rf "$OUT/data" "$OUT/shn_train" "$LOGS"
rm -f "$OUT"/{settings.json,parts.tsv,nvidia-smi.txt,tf_env.json,gpu_memory.json,summary.json,summary.md,loss_curve.png}
rm -f "$OUT"/timing_{float32,mixed,xla}.json
mkdir -p "$LOGS"

elapsed() { echo $(( $(date +%s) - START )); }
say() { echo "[gpu_check $(elapsed) s] $*" >&2; }

# part NAME LIMIT_S STDOUT_FILE CMD...: run CMD under a time limit, its stdout to STDOUT_FILE (empty: the log), its
# stderr to logs/NAME.log; append "NAME<TAB>exit status<TAB>seconds<TAB>" to parts.tsv; return the exit status.
part() {
  local name=$1 limit=$2 out=$3 rc=0 t0
  shift 3
  t0=$(date +%s)
  say "$name (limit ${limit} s): $*"
  if [[ -n "$out" ]]; then
    timeout --kill-after=15 "$limit" "$@" >"$out" 2>"$LOGS/$name.log" || rc=$?
  else
    timeout --kill-after=15 "$limit" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
  fi
  printf '%s\t%s\t%s\t\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >>"$OUT/parts.tsv"
  if [[ $rc -ne 0 ]]; then
    say "$name FAILED (exit $rc); the last lines of $LOGS/$name.log:"
    tail -n 15 "$LOGS/$name.log" >&2 || true
  fi
  return "$rc"
}

report() {
  local wall
  wall=$(elapsed)
  "$PY" - "$OUT/settings.json" "$wall" <<'EOF'
import json, sys
path, wall = sys.argv[1], float(sys.argv[2])
with open(path) as f:
    s = json.load(f)
s["wall_s"] = wall
with open(path, "w") as f:
    json.dump(s, f, indent=1)
EOF
  "$PY" benchmarks/gpu_check_report.py --check_dir="$OUT"
}

required() {  # required NAME LIMIT OUT CMD...: a part whose failure ends the check (after a summary of the rest)
  if ! part "$@"; then
    say "required part $1 failed: stopping"
    report || true
    exit 1
  fi
}

# ----------------------------------------------------------------------------------------------- 1. machine
COMMIT="${GPU_CHECK_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
if [[ -z "${GPU_CHECK_COMMIT:-}" && "$COMMIT" != unknown && -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  COMMIT="$COMMIT+uncommitted changes"
fi
COMMIT="$COMMIT" DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" CORES="$(nproc)" OUT_DIR="$OUT" BUDGET="$BUDGET" \
  TRAIN_SECONDS="$TRAIN_SECONDS" TRAIN_RESERVE="$TRAIN_RESERVE" NUM_TRAIN="$NUM_TRAIN" NUM_VAL="$NUM_VAL" \
  FLAGFILE="$FLAGFILE" STEPS_PER_EPOCH="$STEPS_PER_EPOCH" VAL_STEPS="$VAL_STEPS" TRAIN_FLAGS="$TRAIN_FLAGS" \
  MEMORY_FLAGS="$MEMORY_FLAGS" TIMING_FLAGS="$TIMING_FLAGS" "$PY" - "$OUT/settings.json" <<'EOF'
import json, os, sys
e = os.environ
json.dump({"commit": e["COMMIT"], "date": e["DATE"], "host_cores": int(e["CORES"]), "out": e["OUT_DIR"],
           "budget_s": float(e["BUDGET"]), "train_seconds": float(e["TRAIN_SECONDS"]),
           "train_reserve_s": float(e["TRAIN_RESERVE"]), "num_train": int(e["NUM_TRAIN"]),
           "num_val": int(e["NUM_VAL"]), "flagfile": e["FLAGFILE"], "steps_per_epoch": int(e["STEPS_PER_EPOCH"]),
           "validation_steps": int(e["VAL_STEPS"]), "train_flags": e["TRAIN_FLAGS"],
           "memory_flags": e["MEMORY_FLAGS"], "timing_flags": e["TIMING_FLAGS"]}, open(sys.argv[1], "w"), indent=1)
EOF
if command -v nvidia-smi >/dev/null 2>&1; then
  { nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } \
    >"$OUT/nvidia-smi.txt" 2>&1 || true
fi
# shellcheck disable=SC2016
required machine 120 "$OUT/tf_env.json" "$PY" -c '
import json, platform, tensorflow as tf
devs = tf.config.list_physical_devices()
print(devs, file=__import__("sys").stderr)
info = tf.sysconfig.get_build_info()
print(json.dumps({"tf_version": tf.__version__, "python": platform.python_version(),
                  "physical_devices": [f"{d.device_type}:{d.name}" for d in devs],
                  "cuda_version": info.get("cuda_version"), "cudnn_version": info.get("cudnn_version")}))'

# ----------------------------------------------------------------------------------------------- 2. data
# shellcheck disable=SC2086
required data_train 300 "" "$PY" tfrecords_tools/make_synthetic.py --out_dir="$OUT/data" --split=train \
  --num_examples="$NUM_TRAIN" --num_workers="$WORKERS" --seed=0 $SYNTH_FLAGS
# shellcheck disable=SC2086
required data_val 120 "" "$PY" tfrecords_tools/make_synthetic.py --out_dir="$OUT/data" --split=val \
  --num_examples="$NUM_VAL" --num_workers="$WORKERS" --seed=1 $SYNTH_FLAGS

# ----------------------------------------------------------------------------------------------- 3. memory
# shellcheck disable=SC2086
part memory "$MEMORY_TIMEOUT" "$OUT/gpu_memory.json" "$PY" benchmarks/gpu_memory.py --json $MEMORY_FLAGS || true

# ----------------------------------------------------------------------------------------------- 4. Table 5
for variant in float32 mixed xla; do
  case $variant in
    float32) extra=() ;;
    mixed) extra=(--mixed_precision) ;;
    xla) extra=(--xla --phases=train) ;;
  esac
  # shellcheck disable=SC2086
  part "timing_$variant" "$TIMING_TIMEOUT" "$OUT/timing_$variant.json" \
    "$PY" benchmarks/timing.py --json $TIMING_FLAGS "${extra[@]}" || true
done

# ----------------------------------------------------------------------------------------------- 5. training
left=$(( BUDGET - $(elapsed) - TRAIN_RESERVE ))
secs=$(( TRAIN_SECONDS < left ? TRAIN_SECONDS : left ))
if (( secs < MIN_TRAIN )); then
  say "training skipped: ${left} s left of the ${BUDGET} s budget after the reserve (minimum ${MIN_TRAIN} s)"
  printf 'train\tskipped\t0\t%s s left of the budget\n' "$left" >>"$OUT/parts.tsv"
else
  # shellcheck disable=SC2086
  part train $(( secs + TRAIN_RESERVE + 120 )) "" "$PY" -m smplr_tf.train --flagfile="$FLAGFILE" \
    --data_dir="$OUT/data" --run_dir="$OUT/shn_train" --overwrite --max_train_seconds="$secs" \
    --steps_per_epoch="$STEPS_PER_EPOCH" --validation_steps="$VAL_STEPS" --verbose=2 $TRAIN_FLAGS || true
fi

# ----------------------------------------------------------------------------------------------- 6. summary
report
if awk -F'\t' '$2 != "0" { bad = 1 } END { exit !bad }' "$OUT/parts.tsv"; then
  say "some parts failed or were skipped: see $OUT/summary.md and $LOGS/"
  exit 1
fi
say "done in $(elapsed) s: $OUT"
