#!/usr/bin/env bash
# Table 2 of the paper on Ped2: a base config and each ablation switch, run one after another by
# benchmarks/ped2_cpu.sh. By default the base is configs/ped2-cpu-64.yaml at a sixth of its epochs (4 pretraining
# + 8 alternating, SCHEDULE); the default CPU setting's rows, at its own schedule:
#   BASE=configs/ped2-cpu.yaml SCHEDULE= benchmarks/ped2_table2.sh ../shared/data/ped2 runs/ped2-table2-tiles
#
#   benchmarks/ped2_table2.sh [PED2_DIR=../shared/data/ped2] [OUT=runs/ped2-table2] [VARIANT...]
#
# VARIANT is one of full, appearance_only, motion_only, no_attention, no_kmeans (default: all five). Each
# run's metrics land in OUT/<variant>/eval.json; the last lines printed are one row per variant.
set -euo pipefail -f  # -f: no globbing of the [8] in SCHEDULE
cd "$(dirname "$0")/.."
PED2=${1:-../shared/data/ped2}
OUT=${2:-runs/ped2-table2}
shift $(( $# < 2 ? $# : 2 ))
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(full appearance_only motion_only no_attention no_kmeans)
declare -A SWITCH=([full]="" [appearance_only]="model.motion=false" [motion_only]="model.appearance=false"
                   [no_attention]="model.attention=false" [no_kmeans]="model.kmeans=false")
PY=${PYTHON:-.venv/bin/python}
BASE=${BASE:-configs/ped2-cpu-64.yaml}
SCHEDULE=${SCHEDULE-pretrain.epochs=4 train.epochs=8 train.lr_milestones=[8]}
for variant in "${VARIANTS[@]}"; do
  mkdir -p "$OUT/$variant"
  # shellcheck disable=SC2086  # SCHEDULE and SWITCH values are key=value words
  "$PY" - "$BASE" "$OUT/$variant/params.yaml" $SCHEDULE ${SWITCH[$variant]} <<'PY'
import sys, yaml
document = yaml.safe_load(open(sys.argv[1]))
for item in sys.argv[3:]:
    key, value = item.split("=", 1)
    *parents, leaf = key.split(".")
    section = document
    for name in parents:
        section = section[name]
    section[leaf] = yaml.safe_load(value)
yaml.safe_dump(document, open(sys.argv[2], "w"), sort_keys=False)
PY
  benchmarks/ped2_cpu.sh "$PED2" "$OUT/$variant" "$OUT/$variant/params.yaml" 2>&1 | tee "$OUT/$variant/log.txt" \
    | grep -E "^ped2_cpu|AUC|epoch [0-9]+/[0-9]+ " || true
done
for variant in "${VARIANTS[@]}"; do
  echo "$variant: $(grep '^ped2_cpu: micro' "$OUT/$variant/log.txt" || echo 'no result')"
done
