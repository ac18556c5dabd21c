"""Atomic checkpoints that can be resumed: model, optimizers, schedulers, epoch and history in one file.

Each checkpoint carries a SHA-256 of its content (every tensor's bytes, dtype and shape, every other
value's repr, by key path), verified on load: a flipped byte inside a tensor, which `torch.load` would
read without complaint, is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import torch

from vad.atomic import atomic_file
from vad.errors import DataLayoutError

__all__ = ["save_checkpoint", "load_checkpoint", "run_key", "content_digest"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
_DIGEST = "sha256"


def run_key(*parts: Any) -> str:
    """A short hash of JSON-able inputs: a checkpoint is only resumed by a run with the same key."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def content_digest(state: Any) -> str:
    """SHA-256 of a nest of dicts, lists and tensors, independent of the device the tensors are on."""
    digest = hashlib.sha256()

    def walk(path: str, value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                walk(f"{path}/{key}", value[key])
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(f"{path}/{i}", item)
        elif isinstance(value, torch.Tensor):
            tensor = value.detach().to("cpu").contiguous()
            digest.update(f"{path}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        else:
            digest.update(f"{path}={value!r}".encode())

    walk("", state)
    return digest.hexdigest()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save through a temporary file and a rename, so a kill never leaves a truncated checkpoint."""
    buffer = io.BytesIO()  # torch's zip writer turns a full disk into an opaque RuntimeError: write bytes instead
    torch.save({**state, _DIGEST: content_digest(state)}, buffer)
    with atomic_file(path) as handle:
        handle.write(buffer.getbuffer())


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (tensors and plain containers only) and verify it."""
    if not path.is_file():
        raise DataLayoutError(f"checkpoint {path} not found; run the stage that writes it first")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise DataLayoutError(f"checkpoint {path} is unreadable ({error.__class__.__name__}); "
                              f"delete it and re-run the stage that writes it") from None
    expected = state.pop(_DIGEST, None) if isinstance(state, dict) else None
    if expected is None:  # written before checkpoints carried a digest (2026-12-02)
        log.warning("checkpoint %s has no digest: its content cannot be verified", path)
    elif content_digest(state) != expected:
        raise DataLayoutError(f"checkpoint {path} is corrupt (its content does not match the digest it was saved "
                              f"with); delete it and re-run the stage that writes it")
    return state
