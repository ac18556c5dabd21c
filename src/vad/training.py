"""The epoch loop shared by `pretrain` and `train`: shuffling, resumable checkpoints, per-epoch logs."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vad.checkpoint import load_checkpoint, save_checkpoint
from vad.data.clips import ClipSource

__all__ = ["select_device", "seed_everything", "device_name", "fit"]

log = logging.getLogger(__name__)

StepFn = Callable[[torch.Tensor], dict[str, float]]


def select_device(spec: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def device_name(device: torch.device) -> str:
    """'cpu' or the GPU's name, for run metadata."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    # The order depends only on (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def fit(model: torch.nn.Module, clips: ClipSource, step: StepFn, *, epochs: int, batch_size: int, seed: int,
        checkpoint_path: Path, key: str, optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
        name: str = "train", progress: bool = False) -> list[dict[str, float]]:
    """Run `epochs` epochs of `step` over shuffled batches, checkpointing atomically after each epoch.

    An unfinished checkpoint at `checkpoint_path` written with the same `key` is resumed from its last epoch.
    A finished one, or one with another key (other params or inputs), is ignored and overwritten: re-running
    a stage that completed recomputes it, as DVC expects (its code may have changed).

    Returns:
        One dict per epoch: mean of each loss, clips/s, seconds.
    """
    schedulers = schedulers or {}
    history: list[dict[str, float]] = []
    start = 0
    if checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path)
        if state.get("key") == key and int(state["epoch"]) < epochs:
            model.load_state_dict(state["model"])
            for label, optimizer in optimizers.items():
                optimizer.load_state_dict(state["optimizers"][label])
            for label, scheduler in schedulers.items():
                scheduler.load_state_dict(state["schedulers"][label])
            history, start = list(state["history"]), int(state["epoch"])
            log.info("%s: resuming from epoch %d/%d (%s)", name, start, epochs, checkpoint_path)
        else:
            log.info("%s: starting afresh over %s (finished, or written for other params or inputs)", name,
                     checkpoint_path)
    model.train()
    for epoch in range(start, epochs):
        order = _epoch_order(len(clips), seed, epoch)
        sums: dict[str, float] = {}
        began = time.perf_counter()
        batches = range(0, len(order), batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"{name} {epoch + 1}/{epochs}", leave=False, unit="batch")
        for first in batches:
            for label, value in step(clips.batch(order[first : first + batch_size])).items():
                sums[label] = sums.get(label, 0.0) + value
        for scheduler in schedulers.values():
            scheduler.step()
        seconds = time.perf_counter() - began
        batches_run = -(-len(order) // batch_size)
        record = {"epoch": epoch + 1, **{k: v / batches_run for k, v in sums.items()},
                  "clips_per_s": len(order) / seconds, "seconds": seconds}
        history.append(record)
        save_checkpoint(checkpoint_path, {
            "key": key, "epoch": epoch + 1, "model": model.state_dict(), "history": history,
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in schedulers.items()}, **(extra or {}),
        })
        losses = "  ".join(f"{k}={v:.5f}" for k, v in record.items() if k not in {"epoch", "clips_per_s", "seconds"})
        log.info("%s epoch %d/%d  %s  %.1f clips/s", name, epoch + 1, epochs, losses, record["clips_per_s"])
    return history
