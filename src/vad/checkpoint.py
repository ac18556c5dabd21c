"""Atomic checkpoints that can be resumed: model, optimizers, schedulers, epoch and history in one file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from vad.errors import DataLayoutError

__all__ = ["save_checkpoint", "load_checkpoint", "run_key"]

CHECKPOINT = "checkpoint.pt"


def run_key(*parts: Any) -> str:
    """A short hash of JSON-able inputs: a checkpoint is only resumed by a run with the same key."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save through a temporary file and a rename, so a kill never leaves a truncated checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (tensors and plain containers only)."""
    if not path.is_file():
        raise DataLayoutError(f"checkpoint {path} not found; run the stage that writes it first")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise DataLayoutError(f"checkpoint {path} is unreadable ({error.__class__.__name__}); "
                              f"delete it and re-run the stage that writes it") from None
