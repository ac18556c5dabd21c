"""The container image every component names, defined once.

`VAD_IMAGE` is the CUDA image (`<registry>/vad:<tag>-cuda`, see docker/README.md) that the GPU stages run on;
`VAD_CPU_IMAGE` is its `-cpu` twin (same code, CPU torch) for every other stage. The environment variable
`VAD_IMAGE` overrides the pinned default when the components are imported, i.e. when the pipeline is compiled:

    VAD_IMAGE=registry.example.com/ml/vad:1.2.0-cuda vad pipeline compile

The compiled YAML embeds the references, so a new image means compiling again. Never use `latest`.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_IMAGE", "VAD_IMAGE", "VAD_CPU_IMAGE", "cpu_twin"]

DEFAULT_IMAGE = "ghcr.io/vad-project/vad:0.1.0-cuda"  # bump with each released image pair


def cpu_twin(image: str) -> str:
    """The `-cpu` image built from the same commit as `image` (`...:<tag>-cuda`), else `image` itself."""
    return image.removesuffix("-cuda") + "-cpu" if image.endswith("-cuda") else image


VAD_IMAGE = os.environ.get("VAD_IMAGE") or DEFAULT_IMAGE
VAD_CPU_IMAGE = cpu_twin(VAD_IMAGE)
