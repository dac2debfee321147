#!/usr/bin/env bash
# The serving bench part alone on a GPU machine, set up as .ci/gpu-check sets one up (its own python3
# with torch; the platform's other dependencies from .gpu-wheels, made by `make gpu-wheels`). The
# report and the log go to $OUT (or ./gpu-check-out). BENCH_SERVING_QUICK=1 passes through.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if [ -d .gpu-wheels ]; then
    "$PY" -m pip install --quiet --no-index --find-links .gpu-wheels --disable-pip-version-check \
        -r .gpu-wheels/requirements.txt 2>&1 | tail -3
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "${GPU_BENCH_TIMEOUT_S:-540}" "$PY" -m bench serving 2>&1 | tee "$OUT/serving.log"
status=${PIPESTATUS[0]}
cp bench/results/report-partial.* "$OUT/" 2>/dev/null
exit "$status"
