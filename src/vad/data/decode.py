"""Decode a video file or an image sequence into resized uint8 frames, one frame at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vad.errors import DataError

__all__ = ["iter_frames", "prepare_frame"]


def prepare_frame(image: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """Resize a decoded BGR or grayscale image to `size` (H, W) with area interpolation.

    Returns:
        uint8 (H, W, channels); three channels are RGB.
    """
    import cv2

    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    height, width = size
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return image[:, :, None]
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def iter_frames(source: Path, size: tuple[int, int], channels: int,
                frame_paths: tuple[Path, ...] = ()) -> Iterator[np.ndarray]:
    """Yield the frames of a video file (or of `frame_paths`, in order), resized.

    Raises:
        DataError: the file cannot be opened or decoded, naming it.
    """
    import cv2

    if frame_paths:
        for index, path in enumerate(frame_paths):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise DataError(f"cannot decode frame {index} of {source}: {path} is corrupt or not an image")
            yield prepare_frame(image, size, channels)
        return
    if not source.is_file() or source.stat().st_size == 0:
        raise DataError(f"video {source} is missing or empty; replace it or remove it from the dataset")
    capture = cv2.VideoCapture(str(source))
    try:
        if not capture.isOpened():
            raise DataError(f"cannot open video {source}: corrupt or unsupported codec; re-encode it (e.g. H.264 mp4)")
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            yield prepare_frame(image, size, channels)
            index += 1
        if index == 0:
            raise DataError(f"video {source} has no decodable frame; it is corrupt or empty, replace it")
    finally:
        capture.release()
