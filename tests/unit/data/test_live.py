"""Live sources: what counts as one, names without credentials, and the reconnect schedule."""

from __future__ import annotations

import numpy as np
import pytest

from vad.data import live
from vad.data.live import GAP, Retry, SourceLost, is_live, live_frames, live_name, redact


@pytest.mark.parametrize(("source", "expected"), [
    ("0", True), ("12", True), ("rtsp://cam.local/stream", True), ("http://127.0.0.1:8080/x.mjpg", True),
    ("video.mp4", False), ("data/raw/test", False), ("C:/videos/a.avi", False),
])
def test_cameras_and_urls_are_live_files_and_folders_are_not(source, expected):
    assert is_live(source) is expected


def test_names_and_logs_never_carry_credentials():
    url = "rtsp://admin:s3cret@10.0.0.5:554/Streaming/Channels/101"
    assert redact(url) == "rtsp://10.0.0.5:554/Streaming/Channels/101"
    assert live_name(url) == "10.0.0.5_554_Streaming_Channels_101"
    assert live_name("0") == "camera0"


def test_backoff_doubles_from_half_a_second_up_to_its_cap():
    assert [Retry(max_delay_s=3.0).delay(k) for k in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


class _Capture:
    """A source that opens (or not) and gives `frames` frames, then fails to read."""

    def __init__(self, frames: int | None) -> None:
        self.left = frames

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.left is not None

    def read(self):
        if not self.left:
            return False, None
        self.left -= 1
        return True, np.full((8, 8, 3), self.left, np.uint8)

    def release(self) -> None:
        pass


def _run(monkeypatch, opens, attempts):
    captures = iter(_Capture(n) for n in opens)
    monkeypatch.setattr(live, "_open", lambda source, timeout: next(captures))
    waits, got = [], []
    with pytest.raises(SourceLost) as lost:
        for frame in live_frames("rtsp://u:p@cam/x", (8, 8), 1, retry=Retry(attempts=attempts), sleep=waits.append):
            got.append("gap" if frame is GAP else frame.shape)
    return got, waits, str(lost.value)


def test_a_source_that_drops_is_reopened_with_a_gap_and_given_up_after_its_attempts(monkeypatch):
    # opens with 2 frames, drops; fails to open; opens with 1 frame; then never again
    got, waits, message = _run(monkeypatch, [2, None, 1, None, None, None], attempts=2)
    assert got == [(8, 8, 1), (8, 8, 1), "gap", (8, 8, 1)]
    # attempts in a row: a frame received resets the count (0.5 s, 1 s, then 0.5 s again after the frame)
    assert waits == [0.5, 1.0, 0.5, 1.0]
    assert "cam/x dropped after 3 frame(s); gave up after 2 reconnect attempt(s)" in message
    assert "p@" not in message


def test_a_source_that_never_opens_is_one_error_after_its_attempts(monkeypatch):
    got, waits, message = _run(monkeypatch, [None] * 4, attempts=3)
    assert got == [] and waits == [0.5, 1.0, 2.0]
    assert message.startswith("cannot open rtsp://cam/x; gave up after 3 reconnect attempt(s)")


def test_a_stop_request_ends_the_frames_without_reconnecting(monkeypatch):
    monkeypatch.setattr(live, "_open", lambda source, timeout: _Capture(100))
    frames = []
    for frame in live_frames("0", (8, 8), 3, stop=lambda: len(frames) >= 5, sleep=pytest.fail):
        frames.append(frame)
    assert len(frames) == 5 and frames[0].shape == (8, 8, 3)


def test_a_camera_that_does_not_open_is_named_as_a_camera(monkeypatch):
    monkeypatch.setattr(live, "_open", lambda source, timeout: _Capture(None))
    with pytest.raises(SourceLost, match=r"^cannot open camera 3; gave up after 0 reconnect attempt\(s\)"):
        list(live_frames("3", (8, 8), 1, retry=Retry(attempts=0)))
