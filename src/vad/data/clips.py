"""Clips of T consecutive frames (stride 1), built on the fly from the frame store."""

from __future__ import annotations

import numpy as np
import torch

from vad.data.base import Split
from vad.data.store import FrameStore, VideoEntry

__all__ = ["ClipSource", "to_model_input"]


def to_model_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, C) -> float (B, T, C, H, W) in [0, 1]."""
    return frames.permute(0, 1, 4, 2, 3).float().div_(255.0)


class ClipSource:
    """Every clip of the given videos; frames are held once, as uint8, on `device`.

    The clip ending at frame t of a video covers frames t-T+1..t, so a video of n frames gives n-T+1 clips.
    """

    def __init__(self, store: FrameStore, videos: list[VideoEntry], clip_len: int,
                 device: torch.device | str = "cpu") -> None:
        arrays = [np.asarray(store.frames(video)) for video in videos]
        self.frames = torch.from_numpy(np.concatenate(arrays)).to(device)
        self.clip_len = clip_len
        starts, offset = [], 0
        for array in arrays:
            starts.append(torch.arange(offset, offset + len(array) - clip_len + 1))
            offset += len(array)
        self.starts = torch.cat(starts).to(device)
        self._steps = torch.arange(clip_len, device=device)

    @classmethod
    def from_split(cls, store: FrameStore, split: Split | str, clip_len: int,
                   device: torch.device | str = "cpu") -> ClipSource:
        """All clips of one split of the store."""
        return cls(store, store.split(split), clip_len, device)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """Clips number `indices` as model input, float (B, T, C, H, W)."""
        frame_index = self.starts[indices.to(self.starts.device)][:, None] + self._steps
        return to_model_input(self.frames[frame_index])
