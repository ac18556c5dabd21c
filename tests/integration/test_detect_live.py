"""`vad detect` on a live source: an HTTP MJPEG stream served on 127.0.0.1, with a drop, a reconnect, a
source that is lost for good, and a SIGTERM while frames arrive."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest
import yaml
from tests.conftest import tiny_document

from vad.data.mjpeg import MjpegServer

CLIP_LEN = tiny_document()["data"]["clip_len"]


def _video_frames(raw_dataset):
    capture = cv2.VideoCapture(str(sorted((raw_dataset / "test").iterdir())[0]))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def _params(tmp_path, **detect):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_document(detect={"reconnect_max_delay_s": 0.2, "stream_timeout_s": 5.0,
                                                         **detect})))
    return str(path)


def _vad(*args, tmp_path, **popen):
    return subprocess.Popen([sys.executable, "-m", "vad", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, **popen)


def test_a_stream_that_drops_is_reopened_and_one_that_is_gone_ends_with_complete_outputs(trained, raw_dataset,
                                                                                       tmp_path):
    server = MjpegServer(_video_frames(raw_dataset), per_connection=12, connections=2, credentials="user:secret")
    try:
        process = _vad("detect", server.url, "--model", str(trained["train"]), "--threshold", "0", "--out", "out",
                       "--params", _params(tmp_path, reconnect_attempts=1, merge_gap_frames=CLIP_LEN - 2),
                       tmp_path=tmp_path)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        server.close()
    # lost for good after its one reconnect attempt: one error line, exit 2, what it gave is kept
    assert process.returncode == 2, stderr
    error = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "dropped after 24 frame(s); gave up after 1 reconnect attempt(s)" in error[0]
    assert "secret" not in stderr + stdout
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open()))
    assert [int(r["frame"]) for r in rows] == list(range(24))
    assert {r["video"] for r in rows} == {f"127.0.0.1_{server.port}_stream.mjpg"}
    # frames 0..T-2 of each connection end no clip: a clip never spans the reconnect
    unscored = [int(r["frame"]) for r in rows if r["scored"] == "0"]
    assert unscored == [*range(CLIP_LEN - 1), *range(12, 12 + CLIP_LEN - 1)]
    assert all(r["is_anomaly"] == "1" and float(r["anomaly_score"]) > 0 for r in rows if r["scored"] == "1")
    # threshold 0: every scored frame is abnormal; the T-1 unscored frames after the drop, more than the
    # merge gap, split two events
    events = [json.loads(line) for line in stdout.splitlines()]
    assert [(e["start_frame"], e["end_frame"]) for e in events] == [(CLIP_LEN - 1, 11), (12 + CLIP_LEN - 1, 23)]
    written = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    assert written == events
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["events.jsonl", "scores.csv"]


def test_sigterm_stops_a_live_detection_with_every_output_complete(trained, raw_dataset, tmp_path):
    server = MjpegServer(_video_frames(raw_dataset), connections=1, fps=25)
    try:
        process = _vad("detect", server.url, "--model", str(trained["train"]), "--threshold", "0", "--out", "out",
                       "--params", _params(tmp_path), tmp_path=tmp_path)
        partial = tmp_path / "out" / "scores.csv.partial"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (partial.is_file() and len(partial.read_text().splitlines()) > 20):
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        server.close()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    text = (tmp_path / "out" / "scores.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert text.endswith("\n") and len(rows) > 20
    assert [int(r["frame"]) for r in rows] == list(range(len(rows)))  # every frame up to the stop, whole rows
    # the event open when the signal came is closed at the last frame and printed
    [event] = [json.loads(line) for line in stdout.splitlines()]
    assert (event["start_frame"], event["end_frame"]) == (CLIP_LEN - 1, len(rows) - 1)
    assert (tmp_path / "out" / "events.jsonl").read_text() == json.dumps(event) + "\n"
    assert not list((tmp_path / "out").glob("*.partial"))


@pytest.mark.parametrize("attempts", [0, 2])
def test_an_unreachable_stream_is_one_error_line_and_writes_nothing(trained, tmp_path, attempts):
    process = _vad("detect", "http://127.0.0.1:9/none.mjpg", "--model", str(trained["train"]), "--threshold", "0",
                   "--out", "out", "--params", _params(tmp_path, reconnect_attempts=attempts), tmp_path=tmp_path)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and stdout == ""
    # each reconnect attempt is logged, then the one error
    assert stderr.strip().splitlines() == [
        *(f"cannot open http://127.0.0.1:9/none.mjpg; reopening in {delay} s (attempt {k} of {attempts})"
          for k, delay in zip(range(1, attempts + 1), ("0.2", "0.2"), strict=False)),
        f"error: cannot open http://127.0.0.1:9/none.mjpg; gave up after {attempts} reconnect attempt(s); check "
        "that the camera or stream is reachable (detect.reconnect_attempts sets the attempts)"]
    assert not (tmp_path / "out").exists()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # FFmpeg honours http_proxy: a stream on 127.0.0.1 must be reached directly
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
