"""Clips of T consecutive frames (stride 1), built on the fly from the frame store."""

from __future__ import annotations

import logging

import numpy as np
import torch

from vad.data.base import Split
from vad.data.store import FrameStore, VideoEntry

__all__ = ["ClipSource", "to_model_input", "fits_on_device"]

log = logging.getLogger(__name__)

# Frames stay on the GPU when they take at most this fraction of its free memory; the rest is left to the
# network's activations (and cudnn.benchmark's workspaces).
DEVICE_FRACTION = 0.5


def to_model_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, C) -> float (B, T, C, H, W) in [0, 1]."""
    return frames.permute(0, 1, 4, 2, 3).float().div_(255.0)


def fits_on_device(nbytes: int, free_bytes: int, fraction: float = DEVICE_FRACTION) -> bool:
    """Whether `nbytes` of frames may live on a device with `free_bytes` free."""
    return nbytes <= fraction * free_bytes


class ClipSource:
    """Every clip of the given videos; frames are held once, as uint8; batches come out on `device`.

    The clip ending at frame t of a video covers frames t-T+1..t, so a video of n frames gives n-T+1 clips.

    On a CUDA device the frames stay in GPU memory when they fit (`fits_on_device` with the free memory);
    otherwise they stay in host memory and each batch is gathered there into pinned memory and copied
    asynchronously (non_blocking) to the GPU. Only the batch is pinned, not the whole store, which may be
    tens of GB held once per training process. `resident` forces either choice.
    """

    def __init__(self, store: FrameStore, videos: list[VideoEntry], clip_len: int,
                 device: torch.device | str = "cpu", *, resident: bool | None = None) -> None:
        arrays = [np.asarray(store.frames(video)) for video in videos]
        self.device = torch.device(device)
        frames = torch.from_numpy(np.concatenate(arrays))
        if resident is None:
            resident = self.device.type != "cuda" or fits_on_device(
                frames.numel(), torch.cuda.mem_get_info(self.device)[0])
            if not resident:
                log.info("frames (%.1f GB) exceed %.0f%% of the free memory of %s: kept in host memory, "
                         "batches copied asynchronously", frames.numel() / 1e9, 100 * DEVICE_FRACTION,
                         self.device)
        home = self.device if resident else torch.device("cpu")
        self.frames = frames.to(home)
        self.clip_len = clip_len
        starts, offset = [], 0
        for array in arrays:
            starts.append(torch.arange(offset, offset + len(array) - clip_len + 1))
            offset += len(array)
        self.starts = torch.cat(starts).to(home)
        self._steps = torch.arange(clip_len, device=home)
        self._staged = not resident
        self._pin = self._staged and self.device.type == "cuda"

    @classmethod
    def from_split(cls, store: FrameStore, split: Split | str, clip_len: int,
                   device: torch.device | str = "cpu", *, resident: bool | None = None) -> ClipSource:
        """All clips of one split of the store."""
        return cls(store, store.split(split), clip_len, device, resident=resident)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def index_device(self) -> torch.device:
        """Where clip indices are best kept: with the frames."""
        return self.starts.device

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """Clips number `indices` as model input on `device`, float (B, T, C, H, W)."""
        frame_index = self.starts[indices.to(self.starts.device)][:, None] + self._steps
        if not self._staged:
            return to_model_input(self.frames[frame_index])
        # Host-held frames: gather into (pinned) host memory, then one copy of uint8 (4x less than floats).
        # The caching host allocator keeps a pinned block until its asynchronous copy has completed.
        staged = torch.empty((frame_index.numel(), *self.frames.shape[1:]), dtype=self.frames.dtype,
                             pin_memory=self._pin)
        torch.index_select(self.frames, 0, frame_index.reshape(-1), out=staged)
        frames = staged.view(*frame_index.shape, *self.frames.shape[1:]).to(self.device, non_blocking=self._pin)
        return to_model_input(frames)
