#!/usr/bin/env bash
# Download the Python 3.12 wheels gpu_check.sh needs on a GPU machine without network (into an ignored folder):
# pydantic for the train/score path, pytest for the CUDA tests (tests/gpu), at the versions of constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
pins=()
for name in pydantic pytest pluggy iniconfig packaging; do
  pins+=("$(grep -i "^$name==" constraints.txt)")
done
python3 -m pip download --quiet --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
  --implementation cp --dest benchmarks/wheels "${pins[@]}"
ls benchmarks/wheels
