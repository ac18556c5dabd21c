#!/usr/bin/env bash
# UCSD Ped2 at the CPU setting (configs/ped2-cpu.yaml), extract to evaluate, with each stage timed.
#
#   benchmarks/ped2_cpu.sh [PED2_DIR=../shared/data/ped2] [OUT=runs/ped2-cpu] [PARAMS=configs/ped2-cpu.yaml]
#
# (`make ped2-cpu` installs first, then runs this.) The model evaluated is the last checkpoint of `train`;
# no test label is used before `evaluate`. Prints the micro and macro AUC and the wall time; the stream fits
# against trivial predictors come from `python benchmarks/ped2_fit.py --frames OUT/frames --model OUT/train`.
set -euo pipefail
cd "$(dirname "$0")/.."
PED2=${1:-../shared/data/ped2}
OUT=${2:-runs/ped2-cpu}
P=${3:-configs/ped2-cpu.yaml}
VAD=${VAD:-.venv/bin/vad}
begin=$(date +%s)
stage() {
  local t
  t=$(date +%s)
  "$VAD" "$@"
  echo "ped2_cpu: $1 $(( $(date +%s) - t )) s" >&2
}
stage extract --params "$P" --source "$PED2" --format videos --out "$OUT/frames"
stage pretrain --params "$P" --frames "$OUT/frames" --out "$OUT/pretrain"
stage init-clusters --params "$P" --frames "$OUT/frames" --pretrained "$OUT/pretrain" --out "$OUT/init"
stage train --params "$P" --frames "$OUT/frames" --init "$OUT/init" --out "$OUT/train"
stage score --params "$P" --frames "$OUT/frames" --model "$OUT/train" --out "$OUT/scores.csv"
stage evaluate --params "$P" --frames "$OUT/frames" --scores "$OUT/scores.csv" --metrics "$OUT/eval.json" \
  --plots "$OUT/plots"
"${PYTHON:-.venv/bin/python}" - "$OUT/eval.json" "$(( $(date +%s) - begin ))" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"ped2_cpu: micro AUC {m['auc_micro']:.4f}  macro {m['auc_macro']:.4f}  prediction only "
      f"{m['auc_prediction']:.4f}  cluster only {m.get('auc_cluster', float('nan')):.4f}  in {sys.argv[2]} s")
PY
