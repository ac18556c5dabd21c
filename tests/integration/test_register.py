"""Registration and promotion against a real MLflow server on 127.0.0.1."""

import json
import shutil
import socket

import mlflow
import numpy as np
import pytest

from vad.data.store import FrameStore, fingerprint
from vad.errors import TrackingError
from vad.stages import register
from vad.tracking import MlflowTracker


@pytest.fixture
def workspace(trained, tmp_path):
    """A private copy of the evaluation outputs, so a test can edit eval.json."""
    metrics = tmp_path / "eval.json"
    shutil.copy(trained["metrics"], metrics)
    return {**trained, "metrics": metrics, "out": tmp_path / "register.json"}


def _register(params, ws, uri, auc=None):
    if auc is not None:
        doc = json.loads(ws["metrics"].read_text())
        ws["metrics"].write_text(json.dumps({**doc, "auc_micro": auc}))
    register.run(params, ws["frames"], ws["pretrain"], ws["train"], ws["metrics"], ws["plots"], ws["out"],
                 tracking_uri=uri)
    return json.loads(ws["out"].read_text())


def test_register_logs_one_complete_run_and_promotes_only_improvements(mlflow_server, make_params, workspace):
    params = make_params(register={"model_name": "vad-promotion-test"})
    client = mlflow.MlflowClient(mlflow_server)
    first = _register(params, workspace, mlflow_server, auc=0.80)
    assert first["promoted"] and first["version"] == "1"

    run = client.get_run(first["run_id"])
    assert run.data.params["model.width"] == "4" and run.data.params["train.lr_milestones"] == "[1]"
    assert run.data.metrics["auc_micro"] == 0.80
    assert run.data.tags["data_fingerprint"] == fingerprint(workspace["frames"])
    assert run.data.tags["device"] == "cpu" and run.data.tags["git_commit"]
    history = client.get_metric_history(first["run_id"], "pretrain_loss")
    assert [m.step for m in history] == [1]
    artifacts = {a.path for a in client.list_artifacts(first["run_id"], "plots")}
    assert "plots/roc.csv" in artifacts and "plots/scores" in artifacts

    worse = _register(params, workspace, mlflow_server, auc=0.70)
    assert not worse["promoted"] and "does not beat" in worse["reason"]
    assert client.get_model_version_by_alias("vad-promotion-test", "champion").version == "1"

    better = _register(params, workspace, mlflow_server, auc=0.90)
    assert better["promoted"] and better["version"] == "3"
    assert client.get_model_version_by_alias("vad-promotion-test", "champion").version == "3"

    decision = MlflowTracker(mlflow_server).promote("vad-promotion-test", "2")
    assert not decision.promoted
    forced = MlflowTracker(mlflow_server).promote("vad-promotion-test", "2", force=True)
    assert forced.promoted and client.get_model_version_by_alias("vad-promotion-test", "champion").version == "2"


def test_champion_on_other_data_is_not_replaced(mlflow_server, make_params, workspace):
    params = make_params(register={"model_name": "vad-fingerprint-test"})
    client = mlflow.MlflowClient(mlflow_server)
    _register(params, workspace, mlflow_server, auc=0.5)
    client.set_model_version_tag("vad-fingerprint-test", "1", "data_fingerprint", "f" * 64)
    second = _register(params, workspace, mlflow_server, auc=0.99)
    assert not second["promoted"] and "other data" in second["reason"]


def test_champion_model_scores_clips(mlflow_server, make_params, workspace):
    params = make_params(register={"model_name": "vad-load-test"})
    _register(params, workspace, mlflow_server, auc=0.75)
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pyfunc.load_model("models:/vad-load-test@champion")
    store = FrameStore.open(workspace["frames"])
    frames = np.asarray(store.frames(store.split("test")[0]))
    clips = np.stack([frames[i : i + 5] for i in range(6)])
    scores = model.predict(clips)
    assert list(scores.columns) == ["sequence", "frame", "fused", "prediction_error", "cluster_distance",
                                    "fused_window", "prediction_window", "anomaly_score"] and len(scores) == 6
    # registered without a calibration: no is_anomaly, and the alarm score is the paper's a = 1 / fused
    assert list(scores["sequence"]) == list(range(6)) and set(scores["frame"]) == {4}
    assert np.isfinite(scores.to_numpy(dtype=float)).all() and (scores["fused"] > 0).all()
    np.testing.assert_allclose(scores["anomaly_score"], 1 / scores["fused"])
    # the frames themselves: the model windows them, one row per clip, the same scores
    windowed = model.predict(frames[None, :10])
    assert list(windowed["frame"]) == list(range(4, 10))
    np.testing.assert_allclose(windowed["fused"], scores["fused"], rtol=1e-5)  # batch rounding only
    inputs = model.metadata.get_input_schema().inputs[0]
    assert inputs.type == np.dtype("uint8") and tuple(inputs.shape) == (-1, -1, -1, -1, -1)
    with pytest.raises(Exception, match="L >= 5 frames per sequence"):
        model.predict(clips[:, :4])


def test_unreachable_server_fails_fast_and_keeps_the_model(make_params, workspace):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(TrackingError, match="unreachable") as info:
        _register(make_params(), workspace, uri)
    assert "\n" not in str(info.value)
    assert (workspace["train"] / "checkpoint.pt").is_file() and not workspace["out"].exists()
