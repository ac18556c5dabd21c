"""`kill -9` of `vad extract` takes its decoding workers with it, and the next run removes their leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_killed_extract_leaves_no_worker_and_the_rerun_no_temporary(tmp_path):
    import cv2

    source = tmp_path / "videos"
    (source / "train").mkdir(parents=True)
    writer = cv2.VideoWriter(str(source / "train" / "a.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(3000):  # long enough that two workers are still decoding when the parent is killed
        writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    for name in "bcd":
        os.link(source / "train" / "a.avi", source / "train" / f"{name}.avi")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"dataset": "kill", "image_size": [64, 64], "channels": 1}}))
    command = [sys.executable, "-m", "vad", "extract", "--params", str(params), "--source", str(source),
               "--out", str(tmp_path / "frames"), "--workers", "2"]
    parent = subprocess.Popen(command, stderr=subprocess.PIPE)
    workers: set[int] = set()
    try:
        assert _wait(lambda: len(_children(parent.pid)) >= 2 and list(tmp_path.glob(".frames.*.tmp/frames/*.npy")),
                     120), "the workers never started decoding"
        workers = _children(parent.pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait(lambda: not any(_alive(pid) for pid in workers), 30), "workers outlived their parent"
    finally:
        for pid in {parent.pid} | workers:  # a failed run must not leave them behind either
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        parent.wait()
    assert list(tmp_path.glob(".frames.*.tmp"))  # what the killed run left
    subprocess.run(command, check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "params.yaml", "videos"]
