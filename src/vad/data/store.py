"""The frame store (output of `vad extract`): manifest.json, frames/<id>.npy, labels/<id>.npy.

See DESIGN.md, "Data formats". Frames are uint8 (frames, H, W, channels), memory-mappable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vad.atomic import atomic_write_text
from vad.data.base import Split
from vad.errors import DataLayoutError

__all__ = ["VideoEntry", "FrameStore", "fingerprint", "MANIFEST"]

MANIFEST = "manifest.json"
VERSION = 1


@dataclass(frozen=True)
class VideoEntry:
    """One video of the frame store, as listed in the manifest."""

    id: str
    split: str
    frames: int
    path: str
    labels: str | None
    source: str


@dataclass(frozen=True)
class FrameStore:
    """A read-only view of a frame store folder."""

    root: Path
    dataset: str
    image_size: tuple[int, int]
    channels: int
    videos: tuple[VideoEntry, ...]

    @classmethod
    def open(cls, root: str | Path) -> FrameStore:
        """Open the frame store at `root`, raising DataLayoutError when it is missing or unreadable."""
        root = Path(root)
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise DataLayoutError(f"no frame store at {root} ({MANIFEST} missing); run `vad extract` first")
        try:
            doc = json.loads(manifest.read_text())
            return cls(
                root=root,
                dataset=doc["dataset"],
                image_size=tuple(doc["image_size"]),
                channels=int(doc["channels"]),
                videos=tuple(VideoEntry(**video) for video in doc["videos"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise DataLayoutError(
                f"{manifest} is not a valid frame store manifest ({error}); re-run `vad extract`") from None

    def split(self, split: Split | str) -> list[VideoEntry]:
        """Videos of one split, in manifest order."""
        name = Split(split).value
        return [video for video in self.videos if video.split == name]

    def frames(self, video: VideoEntry, mmap: bool = True) -> np.ndarray:
        """Frames of `video`: uint8 (frames, H, W, channels)."""
        return np.load(self.root / video.path, mmap_mode="r" if mmap else None)

    def labels(self, video: VideoEntry) -> np.ndarray | None:
        """Per-frame 0/1 labels of `video`, or None when it has none."""
        return None if video.labels is None else np.load(self.root / video.labels)

    @property
    def labelled(self) -> bool:
        """True when every test video carries labels."""
        tests = self.split(Split.TEST)
        return bool(tests) and all(video.labels is not None for video in tests)


def write_manifest(root: Path, dataset: str, image_size: tuple[int, int], channels: int,
                   videos: list[VideoEntry]) -> None:
    """Write manifest.json for a frame store being built in `root`."""
    doc = {"version": VERSION, "dataset": dataset, "image_size": list(image_size), "channels": channels,
           "videos": [asdict(video) for video in videos]}
    atomic_write_text(root / MANIFEST, json.dumps(doc, indent=1) + "\n")


def fingerprint(root: str | Path) -> str:
    """SHA-256 over the manifest and every frame and label array: identifies the data a model saw."""
    store = FrameStore.open(root)
    digest = hashlib.sha256((store.root / MANIFEST).read_bytes())
    for video in store.videos:
        for rel in (video.path, video.labels):
            if rel is None:
                continue
            with open(store.root / rel, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
    return digest.hexdigest()


class NpyAppender:
    """Write a uint8 .npy array frame by frame, without knowing the frame count in advance.

    A fixed-size header is written first and rewritten with the final shape on `close`, so memory stays at
    one frame whatever the video length.
    """

    _HEADER_BYTES = 128  # magic + version + length + dict, padded; multiple of 64 as the format requires

    def __init__(self, path: Path, frame_shape: tuple[int, ...]) -> None:
        self.path, self.frame_shape, self.count = path, tuple(frame_shape), 0
        self._handle = open(path, "wb")
        self._handle.write(self._header())

    def _header(self) -> bytes:
        shape = (self.count, *self.frame_shape)
        text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}"
        body = text.ljust(self._HEADER_BYTES - 10 - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")

    def append(self, frame: np.ndarray) -> None:
        """Append one frame of `frame_shape`, uint8."""
        if frame.shape != self.frame_shape or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} does not match {self.frame_shape} uint8")
        self._handle.write(np.ascontiguousarray(frame).data)  # no copy for contiguous frames
        self.count += 1

    def close(self) -> int:
        """Finalise the header; returns the number of frames written."""
        self._handle.seek(0)
        self._handle.write(self._header())
        self._handle.close()
        return self.count
