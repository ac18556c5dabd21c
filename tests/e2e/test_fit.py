"""`vad fit` on a folder of unlabelled camera videos: killed, resumed, registered without labels, then
`vad detect` and a real `mlflow models serve` on the champion, with no other command in between."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import free_port, start_server, stop_server, tiny_document

from vad.config import load_params, parse_params
from vad.stages import synth

VAD = [sys.executable, "-m", "vad"]


@pytest.fixture(scope="module")
def camera(tmp_path_factory) -> Path:
    """Four normal videos, 64x48 pixels, side by side in one folder: a camera's recordings, no labels."""
    root = tmp_path_factory.mktemp("camera")
    params = parse_params(tiny_document(synth={"seed": 3, "train_videos": 4, "test_videos": 1, "frames": 60,
                                               "height": 48, "width": 64}))
    synth.run(params.synth, root / "raw")
    folder = root / "lobby"
    folder.mkdir()
    for video in sorted((root / "raw" / "train").iterdir()):
        shutil.move(str(video), folder / video.name)
    return folder


def _fit(camera: Path, out: Path, tracking: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    return subprocess.Popen([*VAD, "fit", str(camera), "--budget", "100s", "--out", str(out), *extra],
                            cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _done(out: Path) -> dict:
    try:
        return json.loads((out / "fit-state.json").read_text())["done"]
    except (OSError, ValueError, KeyError):
        return {}


def test_plan_only_writes_a_params_file_that_validates(camera, tmp_path):
    out = tmp_path / "plan"
    result = subprocess.run([*VAD, "fit", str(camera), "--budget", "10m", "--out", str(out), "--plan-only"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plan for a budget of 10 min" in result.stdout
    params = load_params(out / "params.yaml")  # a params file as any other
    assert params.model_name == "vad-lobby"
    assert params.data.channels == 1 and params.data.image_size == (64, 64)
    assert params.detect.fps == 10.0  # the videos' own rate, not the 25 frames/s default
    assert not (out / "pretrain").exists()


def test_unlabelled_footage_goes_from_fit_to_detect_and_serve(camera, tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "fit"
    out.mkdir()
    first = _fit(camera, out, tracking)
    deadline = time.monotonic() + 300
    while "pretrain" not in _done(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first.poll() is None, first.communicate()[0][-3000:]
    first.send_signal(signal.SIGKILL)  # a kill: no clean-up of any kind
    first.wait()
    assert "register" not in _done(out)
    pretrained = (out / "pretrain" / "checkpoint.pt").stat().st_mtime_ns

    second = _fit(camera, out, tracking)
    log, _ = second.communicate(timeout=600)
    assert second.returncode == 0, log[-3000:]
    assert "resuming the fit" in log
    assert (out / "pretrain" / "checkpoint.pt").stat().st_mtime_ns == pretrained  # not trained again
    registration = json.loads((out / "register.json").read_text())
    assert registration["model_name"] == "vad-lobby" and registration["auc_micro"] is None
    assert registration["promoted"]  # no champion yet: the first unlabelled model becomes it
    state = json.loads((out / "fit-state.json").read_text())
    assert state["spent_s"] < 100 * 1.5  # both attempts together (a loose bound: the suite shares the cores)
    assert "vad detect VIDEO_OR_CAMERA --model models:/vad-lobby@champion" in log

    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    video = sorted(camera.iterdir())[0]
    detected = subprocess.run([*VAD, "detect", str(video), "--model", "models:/vad-lobby@champion", "--out",
                               str(tmp_path / "detections")], capture_output=True, text=True, env=env, timeout=600)
    assert detected.returncode == 0, detected.stderr[-3000:]
    rows = (tmp_path / "detections" / "scores.csv").read_text().splitlines()
    assert len(rows) == 1 + 60  # a header and one row per frame

    # A second fit of the same footage is not promoted over the champion without labels to compare.
    again = subprocess.run([*VAD, "fit", str(camera), "--budget", "100s", "--out", str(tmp_path / "again"),
                            "--seed", "1"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not json.loads((tmp_path / "again" / "register.json").read_text())["promoted"]

    port = free_port()
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    url = f"http://127.0.0.1:{port}"
    server = start_server([mlflow, "models", "serve", "-m", "models:/vad-lobby@champion", "--env-manager", "local",
                           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], f"{url}/ping",
                          tmp_path / "serve.log",
                          {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    try:
        import cv2

        capture = cv2.VideoCapture(str(video))
        frames = [capture.read()[1][:, :, ::-1] for _ in range(8)]
        body = json.dumps({"inputs": np.stack(frames)[None].tolist()}).encode()
        request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        stop_server(server)
    assert [row["frame"] for row in predictions] == [4, 5, 6, 7]
    assert all(isinstance(row["is_anomaly"], bool) for row in predictions)
