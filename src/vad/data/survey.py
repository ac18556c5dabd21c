"""What `vad fit` needs to know of footage before extracting it: native size, colour, frame rate."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vad.config import Layout
from vad.data import index_dataset
from vad.data.base import Split, VideoRecord
from vad.errors import CorruptMediaError, DataError

__all__ = ["Survey", "survey"]

_SAMPLED_VIDEOS = 4  # training videos looked at: the first ones, a fixed camera's look alike
_SAMPLED_FRAMES = 3
_GRAY_LEVELS = 4.0  # mean difference between channels, of 255, below which a frame is gray


@dataclass(frozen=True)
class Survey:
    """The footage as `vad fit` sees it before extraction."""

    layout: Layout
    height: int
    width: int
    gray: bool  # every sampled frame has three equal channels (or one)
    fps: float | None  # median of the sampled videos' own rates; None when they carry none (frame folders)
    train_videos: int
    test_videos: int
    labelled: bool  # every test video carries labels


def _frames_and_fps(record: VideoRecord) -> tuple[list[np.ndarray], float | None]:
    import cv2

    if record.frame_paths:
        paths = record.frame_paths[:: max(1, len(record.frame_paths) // _SAMPLED_FRAMES)][:_SAMPLED_FRAMES]
        frames = [cv2.imread(str(path), cv2.IMREAD_UNCHANGED) for path in paths]
        return [frame for frame in frames if frame is not None], None
    capture = cv2.VideoCapture(str(record.source))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = []
        while len(frames) < _SAMPLED_FRAMES:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    return frames, fps if 1.0 <= fps <= 240.0 else None  # 0, or a container's 1000 "frames/s": not a rate


def _is_gray(frame: np.ndarray) -> bool:
    if frame.ndim == 2 or frame.shape[2] == 1:
        return True
    channels = frame[:, :, :3].astype(np.int16)
    # Gray content through a lossy codec's chroma (yuv420, MJPG) comes back with channels a few levels apart;
    # colour footage differs by tens.
    return max(float(np.abs(channels[:, :, 0] - channels[:, :, 1]).mean()),
               float(np.abs(channels[:, :, 1] - channels[:, :, 2]).mean())) < _GRAY_LEVELS


def survey(source: Path, layout: Layout | str = Layout.AUTO) -> Survey:
    """Index `source` and decode a few frames of its first training videos.

    Raises:
        DataError: no training video, or none of the sampled ones decodes.
    """
    used, records = index_dataset(Path(source), Layout(layout))
    train = [r for r in records if r.split is Split.TRAIN]
    tests = [r for r in records if r.split is Split.TEST]
    if not train:
        raise DataError(f"{source}: no training video found; the method needs normal videos to train on")
    frames: list[np.ndarray] = []
    rates: list[float] = []
    for record in train[:_SAMPLED_VIDEOS]:
        try:
            found, fps = _frames_and_fps(record)
        except CorruptMediaError:
            continue
        frames += found
        if fps is not None:
            rates.append(fps)
    if not frames:
        raise DataError(f"{source}: none of the first {min(len(train), _SAMPLED_VIDEOS)} training videos decodes; "
                        "check the files (e.g. play one) or re-encode them as H.264 mp4")
    height, width = frames[0].shape[:2]
    labelled = bool(tests) and all(r.intervals is not None or r.frame_labels is not None for r in tests)
    return Survey(layout=used, height=int(height), width=int(width), gray=all(_is_gray(f) for f in frames),
                  fps=statistics.median(rates) if rates else None, train_videos=len(train), test_videos=len(tests),
                  labelled=labelled)
