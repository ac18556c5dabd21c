"""`fit` reports the share of step time spent waiting for data (`data_wait_share`) for every epoch.

The time is a fake clock that only the batches and steps move, so the share is exact whatever the machine's
load (on the CPU `fit` reads `time.perf_counter`).
"""

from __future__ import annotations

import pytest
import torch

from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.training import fit


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class _Slow(ClipSource):
    """Clips whose batches take `delay` seconds of `clock` to arrive, as from a slow disk."""

    delay = 0.0
    clock: _Clock

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        self.clock.now += self.delay
        return super().batch(indices)


@pytest.mark.parametrize(("data_delay", "step_delay", "share"),
                         [(0.02, 0.0, 1.0),     # waits for every batch: all the time is data
                          (0.0, 0.02, 0.0),     # data is ready at once: all the time is the step
                          (0.01, 0.03, 0.25)])
def test_data_wait_share_tells_slow_data_from_slow_steps(frame_store, tmp_path, monkeypatch, data_delay,
                                                         step_delay, share):
    clock = _Clock()
    monkeypatch.setattr("vad.training.time.perf_counter", clock.perf_counter)
    clips = _Slow.from_split(FrameStore.open(frame_store), "train", 5)
    clips.delay, clips.clock = data_delay, clock

    def step(batch: torch.Tensor, loss_scale: float) -> dict[str, torch.Tensor]:
        clock.now += step_delay
        return {"loss": batch.mean()}

    history = fit(torch.nn.Linear(1, 1), clips, step, epochs=2, batch_size=16, seed=0,
                  checkpoint_path=tmp_path / "ckpt.pt", key="k", optimizers={})
    assert len(history) == 2
    for record in history:
        assert record["data_wait_share"] == pytest.approx(share, abs=1e-9), record
