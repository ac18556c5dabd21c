"""Pipeline stages: each module's `run(params, inputs..., out_dir, *, ...)` is one stage.

The CLI, dvc.yaml and the Kubeflow components only wire paths into these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["StageResult"]


@dataclass(frozen=True)
class StageResult:
    """What a stage produced: named output paths and scalar metrics (logged by the caller)."""

    outputs: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch, timings included (training stages)
