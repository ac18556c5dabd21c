"""The registered champion behind a real `mlflow models serve` on 127.0.0.1: clips and frames in, scores and
alarms out, as the README documents the request."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import free_port, start_server, stop_server

from vad.calibration import Calibration
from vad.data.store import FrameStore
from vad.stages import calibrate, register


@pytest.fixture(scope="module")
def served(trained, params, make_params, mlflow_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    calibration = root / "calibration.json"
    calibrate.run(params, trained["frames"], trained["train"], calibration)
    named = make_params(register={"model_name": "vad-serve-test"})
    register.run(named, trained["frames"], trained["pretrain"], trained["train"], trained["metrics"],
                 trained["plots"], root / "register.json", tracking_uri=mlflow_server, calibration_path=calibration)
    port = free_port()
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    url = f"http://127.0.0.1:{port}"
    # `mlflow models serve` starts uvicorn from PATH: the venv's own
    process = start_server([mlflow, "models", "serve", "-m", "models:/vad-serve-test@champion", "--env-manager",
                            "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                           f"{url}/ping", root / "serve.log",
                           {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server,
                            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    yield url, Calibration.load(calibration)
    stop_server(process)


def _invoke(url, body):
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["predictions"]


def _frames(trained):
    store = FrameStore.open(trained["frames"])
    return np.asarray(store.frames(store.split("test")[0]))


def test_served_clips_and_frames_get_scores_and_alarms_at_the_calibrated_threshold(served, trained):
    url, calibration = served
    frames = _frames(trained)
    clips = np.stack([frames[i : i + 5] for i in range(6)])
    rows = _invoke(url, {"inputs": clips.tolist()})
    assert [(r["sequence"], r["frame"]) for r in rows] == [(i, 4) for i in range(6)]
    for row in rows:
        assert row["anomaly_score"] == pytest.approx(1 / row["fused"], rel=1e-9)
        assert row["is_anomaly"] == (row["anomaly_score"] > calibration.threshold)
    # one sequence of frames: the model windows it; the same clips give the same scores
    windowed = _invoke(url, {"inputs": frames[None, :10].tolist()})
    assert [r["frame"] for r in windowed] == list(range(4, 10))
    np.testing.assert_allclose([r["fused"] for r in windowed], [r["fused"] for r in rows], rtol=1e-5)


def test_a_request_may_choose_another_budget_and_other_footage_is_conformed(served, trained):
    url, calibration = served
    frames = _frames(trained)
    # everything above the lowest score: a budget so loose that the threshold is a low quantile
    loose = _invoke(url, {"inputs": frames[None, :12].tolist(), "params": {"false_alarms_per_hour": 3.6e6,
                                                                           "fps": 1000.0}})
    threshold = calibration.threshold_for(3.6e6, 1000.0)
    assert [r["is_anomaly"] for r in loose] == [r["anomaly_score"] > threshold for r in loose]
    # RGB frames twice the size: resized and converted to the model's 32x32 grayscale
    big = np.repeat(np.repeat(np.repeat(frames[:6], 2, axis=1), 2, axis=2), 3, axis=3)
    rows = _invoke(url, {"inputs": big[None].tolist()})
    assert len(rows) == 2 and all(np.isfinite(r["fused"]) for r in rows)


def test_a_request_with_too_few_frames_is_a_clear_client_error(served, trained):
    url, _ = served
    with pytest.raises(urllib.error.HTTPError) as error:
        _invoke(url, {"inputs": _frames(trained)[None, :3].tolist()})
    assert error.value.code == 400 and "L >= 5 frames per sequence" in error.value.read().decode()
