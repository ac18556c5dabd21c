"""Decode a video file or an image sequence into resized uint8 frames, one frame at a time."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from vad.errors import CorruptMediaError

__all__ = ["iter_frames", "prepare_frame", "prefetch"]

T = TypeVar("T")

# FFmpeg writes its own lines to stderr ("moov atom not found", "Connection refused") before OpenCV returns:
# every failure they describe reaches the user as one line of ours instead. OPENCV_FFMPEG_LOGLEVEL set in
# the environment (e.g. 24, warnings) brings them back.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def prepare_frame(image: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """Resize a decoded BGR or grayscale image to `size` (H, W) with area interpolation.

    Returns:
        uint8 (H, W, channels); three channels are RGB.
    """
    import cv2

    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype != np.uint8:  # 16-bit TIFFs and the like
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    height, width = size
    # Grayscale first: resizing one channel is cheaper than three.
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        return image[:, :, None]
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def iter_frames(source: Path, size: tuple[int, int], channels: int,
                frame_paths: tuple[Path, ...] = (), decode_threads: int = 0) -> Iterator[np.ndarray]:
    """Yield the frames of a video file (or of `frame_paths`, in order), resized, one at a time.

    `decode_threads` caps FFmpeg's decoding threads (0: its default, one per core). Parallel extraction
    passes cores // workers so that N decoders do not each start a thread per core.

    Raises:
        CorruptMediaError: a file cannot be opened or decoded, or a video stops before its last frame.
    """
    import cv2

    if frame_paths:
        for index, path in enumerate(frame_paths):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise CorruptMediaError(f"cannot decode frame {index} of {source}: {path} is corrupt or not an "
                                        f"image; replace it, or pass --skip-corrupt to skip the video")
            yield prepare_frame(image, size, channels)
        return
    if not source.is_file() or source.stat().st_size == 0:
        raise CorruptMediaError(f"video {source} is missing or empty; replace it or remove it from the dataset")
    options = [cv2.CAP_PROP_N_THREADS, decode_threads] if decode_threads > 0 else []
    capture = cv2.VideoCapture(str(source), cv2.CAP_ANY, options)
    try:
        if not capture.isOpened():
            raise CorruptMediaError(f"cannot open video {source}: corrupt or unsupported codec; re-encode it "
                                    f"(e.g. H.264 mp4) or pass --skip-corrupt")
        expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            yield prepare_frame(image, size, channels)
            index += 1
        if index == 0:
            raise CorruptMediaError(f"video {source} has no decodable frame; it is corrupt or empty, replace it")
        if expected > 0 and index < expected:
            raise CorruptMediaError(f"video {source}: decoding stopped at frame {index} of {expected}; the file is "
                                    f"truncated or corrupt, replace it or pass --skip-corrupt")
    finally:
        capture.release()


def frame_count_hint(source: Path, frame_paths: tuple[Path, ...] = ()) -> int:
    """Frames a video holds by its container's count (0 if unknown or unreadable); nothing is decoded."""
    if frame_paths:
        return len(frame_paths)
    import cv2

    capture = cv2.VideoCapture(str(source))
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))) if capture.isOpened() else 0
    finally:
        capture.release()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterator[T], depth: int) -> Iterator[T]:
    """Yield `items`, produced in a background thread up to `depth` ahead.

    OpenCV and torch release the GIL, so decoding the next frames overlaps with the consumer's compute. An
    exception in the producer is raised in the consumer; a consumer that stops early stops the producer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as error:  # handed to the consumer
            put(_Raised(error))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
