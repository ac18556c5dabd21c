"""`fit` reports the share of step time spent waiting for data (`data_wait_share`) for every epoch."""

from __future__ import annotations

import time

import pytest
import torch

from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.training import fit


class _Slow(ClipSource):
    """Clips whose batches take `delay` seconds to arrive, as from a slow disk."""

    delay = 0.0

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return super().batch(indices)


def _history(frame_store, tmp_path, data_delay: float, step_delay: float) -> list[dict]:
    clips = _Slow.from_split(FrameStore.open(frame_store), "train", 5)
    clips.delay = data_delay
    model = torch.nn.Linear(1, 1)

    def step(batch: torch.Tensor, loss_scale: float) -> dict[str, torch.Tensor]:
        time.sleep(step_delay)
        return {"loss": batch.mean()}

    return fit(model, clips, step, epochs=2, batch_size=16, seed=0, checkpoint_path=tmp_path / "ckpt.pt",
               key="k", optimizers={})


@pytest.mark.parametrize(("data_delay", "step_delay", "low", "high"),
                         [(0.02, 0.0, 0.8, 1.0),  # waits for every batch: nearly all the time is data
                          (0.0, 0.02, 0.0, 0.2)])  # data is ready at once: nearly all the time is the step
def test_data_wait_share_tells_slow_data_from_slow_steps(frame_store, tmp_path, data_delay, step_delay, low, high):
    history = _history(frame_store, tmp_path, data_delay, step_delay)
    assert len(history) == 2
    for record in history:
        assert low <= record["data_wait_share"] <= high, record
