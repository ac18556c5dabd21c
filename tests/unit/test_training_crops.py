"""`fit(crop=...)`: each clip of an epoch cut to a random window, the same resumed or not."""

from __future__ import annotations

import torch

from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.training import _epoch_corners, crop_clips, fit


def _record(clips, tmp_path, epochs, name="ckpt.pt", crop=(16, 16)):
    seen = []

    def step(batch: torch.Tensor, loss_scale: float) -> dict[str, torch.Tensor]:
        seen.append(batch.clone())
        return {"loss": batch.mean()}

    fit(torch.nn.Linear(1, 1), clips, step, epochs=epochs, batch_size=4, seed=3, checkpoint_path=tmp_path / name,
        key="k", optimizers={}, crop=crop)
    return seen


def test_training_batches_are_windows_of_their_clips_at_corners_drawn_per_epoch(frame_store, tmp_path):
    clips = ClipSource.from_split(FrameStore.open(frame_store), "train", 5)
    height, width = clips.frame_size
    seen = _record(clips, tmp_path, epochs=2)
    per_epoch = -(-len(clips) // 4)
    assert len(seen) == 2 * per_epoch and all(b.shape[-2:] == (16, 16) for b in seen)
    for epoch in range(2):
        order = torch.randperm(len(clips), generator=torch.Generator().manual_seed(3 * 1_000_003 + epoch))
        corners = _epoch_corners(len(clips), (height, width), (16, 16), 3, epoch)
        assert corners.min() >= 0 and (corners[:, 0] <= height - 16).all() and (corners[:, 1] <= width - 16).all()
        first = order[:4]
        expected = crop_clips(clips.batch(first), corners[first], (16, 16))
        assert torch.equal(seen[epoch * per_epoch], expected)
    # a new window each epoch (32x32 frames: 17 x 17 corners, so equal draws for every clip cannot happen)
    assert not torch.equal(_epoch_corners(len(clips), (height, width), (16, 16), 3, 0),
                           _epoch_corners(len(clips), (height, width), (16, 16), 3, 1))


def test_a_resumed_run_sees_the_windows_of_an_uninterrupted_one(frame_store, tmp_path):
    clips = ClipSource.from_split(FrameStore.open(frame_store), "train", 5)
    straight = _record(clips, tmp_path, epochs=2, name="straight.pt")
    first = _record(clips, tmp_path, epochs=1, name="resumed.pt")
    # the checkpoint of epoch 1 is unfinished for a 2-epoch run: fit resumes at epoch 2
    state = torch.load(tmp_path / "resumed.pt", weights_only=False)
    assert state["epoch"] == 1
    second = _record(clips, tmp_path, epochs=2, name="resumed.pt")
    assert len(first) + len(second) == len(straight)
    assert all(torch.equal(a, b) for a, b in zip(first + second, straight, strict=True))


def test_a_crop_of_the_whole_frame_leaves_the_clips_whole(frame_store, tmp_path):
    clips = ClipSource.from_split(FrameStore.open(frame_store), "train", 5)
    seen = _record(clips, tmp_path, epochs=1, crop=clips.frame_size)
    assert seen[0].shape[-2:] == clips.frame_size
