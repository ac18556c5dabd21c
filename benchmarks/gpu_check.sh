#!/usr/bin/env bash
# Reproduce UCSD Ped2 with the paper's schedule on one GPU within a time budget, and print the figures.
#
#   benchmarks/gpu_check.sh [BUDGET_SECONDS=480] [PED2_DIR=data/ped2] [--size N --channels C --width W]
#
# The paper's 256x256 RGB network needs a GPU; on a CPU pass e.g. `--size 64 --channels 1 --width 8`.
#
# Needs a Python with (CUDA) torch, numpy, OpenCV, scikit-learn and PyYAML (the GPU machines have them).
# Installs nothing from the network: pydantic, the one other import of the train/score path, and pytest, for
# the CUDA tests run first (tests/gpu), come from benchmarks/wheels/ when missing (fill it beforehand with
# benchmarks/fetch_gpu_wheels.sh).
# Tracking (MLflow), DVC, kfp and great-expectations are not used. On a CPU it runs too, scaled down.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-480}
DEADLINE=$(( $(date +%s) + BUDGET ))  # the whole check ends by then: installs and CUDA tests included
PED2=${2:-data/ped2}
shift $(( $# < 2 ? $# : 2 ))
PY=${PYTHON:-python3}
if ! "$PY" -c "import pydantic" 2>/dev/null; then
  "$PY" -m pip install --quiet --no-index --find-links benchmarks/wheels pydantic
fi
if ! "$PY" -c "import pytest" 2>/dev/null; then  # optional: without it the CUDA tests are left out
  "$PY" -m pip install --quiet --no-index --find-links benchmarks/wheels pytest 2>/dev/null || true
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# First the CUDA paths' tests (they skip without a GPU; GPU_TESTS=0 leaves them out), then the timed check
# with what is left of the budget. A test failure is reported but does not stop the check.
if [ "${GPU_TESTS:-1}" = 1 ] && "$PY" -c "import pytest" 2>/dev/null; then
  "$PY" -m pytest -m gpu tests/gpu -q -p no:cacheprovider || echo "gpu_check: CUDA tests FAILED (see above)"
fi
exec "$PY" benchmarks/gpu_check.py --budget "$BUDGET" --deadline "$DEADLINE" --source "$PED2" "$@"
