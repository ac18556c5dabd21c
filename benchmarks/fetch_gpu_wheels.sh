#!/usr/bin/env bash
# Download the Python 3.12 wheels gpu_check.sh needs on a GPU machine without network (into an ignored folder).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(grep -i '^pydantic==' constraints.txt | cut -d= -f3)
python3 -m pip download --quiet --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
  --implementation cp --dest benchmarks/wheels "pydantic==$version"
ls benchmarks/wheels
