"""Live footage: a camera index or a stream URL, read frame by frame and reopened when it drops.

    for frame in live_frames("rtsp://cam/stream", (256, 256), 1, retry=Retry(attempts=5)):
        if frame is GAP: ...   # the source dropped and was reopened: frames before and after are not consecutive

OpenCV opens the source (its FFmpeg backend for URLs: RTSP, HTTP MJPEG, HLS, ...; the default backend for
camera indices). A source that cannot be opened, or stops delivering frames, is reopened after 0.5 s, 1 s,
2 s, ... (capped at `Retry.max_delay_s`), `Retry.attempts` times in a row; each success resets the count.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vad.data.decode import prepare_frame
from vad.errors import DataError

__all__ = ["GAP", "Retry", "SourceLost", "is_live", "live_name", "live_frames", "redact"]

log = logging.getLogger(__name__)

# Yielded between the frames before and after a reconnect.
GAP: Any = None

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class SourceLost(DataError):
    """A live source could not be (re)opened within its reconnect attempts."""


@dataclass(frozen=True)
class Retry:
    """How a live source is reopened: attempts in a row, the longest wait, and the open/read timeout."""

    attempts: int = 5
    max_delay_s: float = 8.0
    timeout_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (1-based): 0.5, 1, 2, ... at most `max_delay_s`."""
        return min(self.max_delay_s, 0.5 * 2 ** (attempt - 1))


def is_live(source: str) -> bool:
    """A camera index ("0") or a URL ("rtsp://...", "http://..."), as opposed to a file or a folder."""
    return source.isdigit() or bool(_URL.match(source))


def redact(source: str) -> str:
    """The source with any user:password@ removed, for logs and outputs."""
    return re.sub(r"(://)[^/@]*@", r"\1", source)


def live_name(source: str) -> str:
    """A name for the source in scores.csv and events: camera0, or the URL (no credentials) made file-safe."""
    if source.isdigit():
        return f"camera{int(source)}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", redact(source).split("://", 1)[1]).strip("_") or "stream"


def _open(source: str, timeout_s: float) -> Any:
    import cv2

    if source.isdigit():
        return cv2.VideoCapture(int(source))
    # OpenCV's own stderr lines ("can't be used to capture by name"; FFmpeg's: vad.data.decode): the log says
    # what failed
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    milliseconds = int(timeout_s * 1000)
    return cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds,
                                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds])


def source_fps(capture: Any, default: float) -> float:
    """The frame rate the source reports, or `default` where it reports none (or nonsense)."""
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else default


def live_frames(source: str, size: tuple[int, int], channels: int, *, retry: Retry = Retry(),
                stop: Callable[[], bool] = lambda: False, on_open: Callable[[Any], None] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[np.ndarray | None]:
    """Frames of a live source, resized like `iter_frames`, until `stop()` is true; `GAP` after a reconnect.

    `on_open(capture)` is called each time the source opens (e.g. to read its frame rate).

    Raises:
        SourceLost: the source could not be opened, or reopened after a drop, in `retry.attempts` tries.
    """
    shown, received, failures = f"camera {source}" if source.isdigit() else redact(source), 0, 0
    while not stop():
        capture = _open(source, retry.timeout_s)
        frames_now = 0
        try:
            if capture.isOpened():
                if on_open is not None:
                    on_open(capture)
                while not stop():
                    ok, image = capture.read()
                    if not ok or image is None:
                        break
                    if frames_now == 0 and received:
                        yield GAP
                    frames_now += 1
                    received += 1
                    failures = 0
                    yield prepare_frame(image, size, channels)
        finally:
            capture.release()
        if stop():
            return
        failures += 1
        what = f"{shown} dropped after {received} frame(s)" if received else f"cannot open {shown}"
        if failures > retry.attempts:
            raise SourceLost(f"{what}; gave up after {retry.attempts} reconnect attempt(s); check that the camera "
                             "or stream is reachable (detect.reconnect_attempts sets the attempts)")
        delay = retry.delay(failures)
        log.warning("%s; reopening in %.1f s (attempt %d of %d)", what, delay, failures, retry.attempts)
        sleep(delay)
