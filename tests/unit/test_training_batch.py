"""A batch larger than the data is clamped to the data, and the user is told."""

from __future__ import annotations

import logging

import torch

from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.training import fit


def test_a_batch_larger_than_the_epoch_is_one_batch_of_every_clip_with_a_warning(frame_store, tmp_path, caplog):
    clips = ClipSource.from_split(FrameStore.open(frame_store), "train", 5)
    sizes = []

    def step(batch: torch.Tensor, loss_scale: float) -> dict[str, torch.Tensor]:
        sizes.append(len(batch))
        return {"loss": batch.mean()}

    with caplog.at_level(logging.WARNING, logger="vad.training"):
        fit(torch.nn.Linear(1, 1), clips, step, epochs=2, batch_size=len(clips) + 5, seed=0,
            checkpoint_path=tmp_path / "ckpt.pt", key="k", optimizers={}, name="pretrain")
    assert sizes == [len(clips), len(clips)]
    message = f"pretrain.batch_size {len(clips) + 5} is larger than the {len(clips)} clips of an epoch"
    assert [r.getMessage() for r in caplog.records if message in r.getMessage()], caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vad.training"):
        fit(torch.nn.Linear(1, 1), clips, step, epochs=1, batch_size=len(clips), seed=0,
            checkpoint_path=tmp_path / "other.pt", key="k", optimizers={}, name="pretrain")
    assert "batch_size" not in caplog.text
