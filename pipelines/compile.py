"""Compile the pipeline into pipelines/vad_pipeline.yaml (run from the repository root).

    python -m pipelines.compile            # or: vad pipeline compile
    VAD_IMAGE=registry.example.com/ml/vad:1.2.0-cuda vad pipeline compile    # another image (see _image.py)

The committed YAML is compiled with the pinned default image; tests/pipelines/test_compile.py fails when it is
stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["PACKAGE", "compile_pipeline"]

PACKAGE = Path(__file__).resolve().with_name("vad_pipeline.yaml")


def compile_pipeline(package_path: str | Path = PACKAGE) -> Path:
    """Compile `vad_pipeline` to `package_path` (IR YAML); returns the path."""
    from kfp import compiler

    from pipelines.vad_pipeline import vad_pipeline

    compiler.Compiler().compile(vad_pipeline, str(package_path))
    return Path(package_path)


if __name__ == "__main__":
    print(compile_pipeline(*sys.argv[1:2]))
