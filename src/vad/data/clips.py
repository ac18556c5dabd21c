"""Clips of T consecutive frames (stride 1), built on the fly from the frame store."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from vad.data.base import Split
from vad.data.store import FrameStore, VideoEntry

__all__ = ["ClipSource", "to_model_input", "fits_on_device", "holdout_frames"]

log = logging.getLogger(__name__)

# Frames stay on the GPU when they take at most this fraction of its free memory; the rest is left to the
# network's activations (and cudnn.benchmark's workspaces).
DEVICE_FRACTION = 0.5
# DataLoader processes gathering host-held batches, and batches each keeps ready.
LOADER_WORKERS = 4
PREFETCH_BATCHES = 4


def to_model_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, C) -> float (B, T, C, H, W) in [0, 1]: x / 255 correctly rounded, on every device."""
    # CUDA divides by a Python number as x * (1 / 255), one bit off x / 255 for 126 of the 256 values (the
    # CPU divides); a divisor held on the device takes CUDA's true division, so every device feeds the
    # network the same numbers.
    return frames.permute(0, 1, 4, 2, 3).float().div_(torch.full((), 255.0, device=frames.device))


def fits_on_device(nbytes: int, free_bytes: int, fraction: float = DEVICE_FRACTION) -> bool:
    """Whether `nbytes` of frames may live on a device with `free_bytes` free."""
    return nbytes <= fraction * free_bytes


class _ClipGather(torch.utils.data.Dataset):
    """Batches of uint8 clips read from the memory-mapped .npy files; indexed by a tensor of clip numbers.

    Only paths and small index arrays are pickled to DataLoader workers; each opens the memory maps itself.
    """

    def __init__(self, paths: list[Path], clip_video: np.ndarray, clip_start: np.ndarray, clip_len: int) -> None:
        self.paths, self.clip_video, self.clip_start, self.clip_len = paths, clip_video, clip_start, clip_len
        self._arrays: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.clip_video)

    def __getitem__(self, indices: torch.Tensor) -> torch.Tensor:
        if self._arrays is None:
            self._arrays = [np.load(path, mmap_mode="r") for path in self.paths]
        picked = np.asarray(indices, dtype=np.int64).reshape(-1)
        T = self.clip_len
        return torch.from_numpy(np.stack([self._arrays[v][s : s + T] for v, s in
                                          zip(self.clip_video[picked], self.clip_start[picked], strict=True)]))


def holdout_frames(frames: int, share: float) -> int:
    """Frames at the end of a video of `frames` frames held out from training: `share` of them, rounded."""
    return int(round(frames * share))


class ClipSource:
    """Every clip of the given videos; frames are held as uint8; batches come out on `device`.

    The clip ending at frame t of a video covers frames t-T+1..t, so a video of n frames gives n-T+1 clips.

    On the CPU, and on a CUDA device when the frames fit (`fits_on_device` with its free memory), the
    frames are loaded once into one tensor on the device and clips are gathered there. Otherwise they stay
    in the memory-mapped .npy files: `iter_batches` reads batches in DataLoader worker processes into
    pinned memory and copies them asynchronously (non_blocking) as uint8 (4x less than floats), ahead of
    the step that needs them; `batch` does the same in this process. `resident` forces either choice.
    """

    def __init__(self, store: FrameStore, videos: list[VideoEntry], clip_len: int,
                 device: torch.device | str = "cpu", *, resident: bool | None = None,
                 spans: list[tuple[int, int]] | None = None) -> None:
        self.device = torch.device(device)
        self.clip_len = clip_len
        height, width = store.image_size
        self.frame_size = (height, width)
        # frames [first, end) of each video; a clip is taken only if all its frames lie in its video's span
        spans = spans if spans is not None else [(0, video.frames) for video in videos]
        lengths = [end - first for first, end in spans]
        nbytes = sum(lengths) * height * width * store.channels
        if resident is None:
            resident = self.device.type != "cuda" or fits_on_device(nbytes, torch.cuda.mem_get_info(self.device)[0])
            if not resident:
                log.info("frames (%.1f GB) exceed %.0f%% of the free memory of %s: read from the memory-mapped "
                         "store by %d loader processes, batches copied asynchronously", nbytes / 1e9,
                         100 * DEVICE_FRACTION, self.device, LOADER_WORKERS)
        self.resident = resident
        counts = [max(0, length - clip_len + 1) for length in lengths]
        clip_video = np.repeat(np.arange(len(videos)), counts)
        clip_start = np.concatenate([np.arange(count) for count in counts]) if counts else np.empty(0, np.int64)
        self._steps = torch.arange(clip_len, device=self.device if resident else "cpu")
        if resident:
            frames = torch.from_numpy(np.concatenate([np.asarray(store.frames(video)[first:end])
                                                      for video, (first, end) in zip(videos, spans, strict=True)]))
            self.frames = frames.to(self.device)
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            self.starts = torch.from_numpy(offsets[clip_video] + clip_start).to(self.device)
        else:
            self.frames = None
            self.starts = torch.from_numpy(clip_start)  # only its length and device are used
            firsts = np.array([first for first, _ in spans], dtype=np.int64)
            self._gather = _ClipGather([store.root / video.path for video in videos], clip_video,
                                       clip_start + (firsts[clip_video] if len(clip_video) else 0), clip_len)
        self._pin = not resident and self.device.type == "cuda"

    @classmethod
    def from_split(cls, store: FrameStore, split: Split | str, clip_len: int,
                   device: torch.device | str = "cpu", *, resident: bool | None = None, holdout_share: float = 0.0,
                   part: str = "fit") -> ClipSource:
        """The clips of one split of the store; with `holdout_share`, only those of one part of each video.

        The last `holdout_share` of each video's frames (`holdout_frames`) is held out: `part="fit"` gives
        the clips wholly before it (what training sees), `part="holdout"` the clips that end inside it
        (never a training clip, nor a training target).
        """
        videos = store.split(split)
        spans = []
        for video in videos:
            cut = video.frames - holdout_frames(video.frames, holdout_share)
            spans.append((0, cut) if part == "fit" else (max(0, cut - clip_len + 1), video.frames))
        if part not in ("fit", "holdout"):
            raise ValueError(f"part must be 'fit' or 'holdout', got {part!r}")
        return cls(store, videos, clip_len, device, resident=resident, spans=spans)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def index_device(self) -> torch.device:
        """Where clip indices are best kept: with the frames."""
        return self.starts.device

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """Clips number `indices` as model input on `device`, float (B, T, C, H, W)."""
        if self.resident:
            frame_index = self.starts[indices.to(self.starts.device)][:, None] + self._steps
            return to_model_input(self.frames[frame_index])
        return self._to_device(self._gather[indices.cpu()])

    def iter_batches(self, index_batches: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
        """`batch(i)` for each of `index_batches`, in order.

        Host-held frames are read ahead by loader processes while the caller works on the current batch.
        """
        if self.resident or not index_batches:
            yield from (self.batch(indices) for indices in index_batches)
            return
        workers = min(LOADER_WORKERS, os.cpu_count() or 1, len(index_batches))
        loader = torch.utils.data.DataLoader(
            self._gather, sampler=[indices.cpu() for indices in index_batches], batch_size=None,
            num_workers=workers, pin_memory=self._pin, prefetch_factor=PREFETCH_BATCHES)
        yield from (self._to_device(frames) for frames in loader)

    def _to_device(self, frames: torch.Tensor) -> torch.Tensor:
        # The caching host allocator keeps a pinned block until its asynchronous copy has completed.
        if self._pin and not frames.is_pinned():
            frames = frames.pin_memory()
        return to_model_input(frames.to(self.device, non_blocking=self._pin))
