from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from components.register.component import register
from kfp.dsl import Artifact, Dataset, Metrics, Model

from vad.config import parse_params
from vad.errors import DataLayoutError, TrackingError

SUMMARY = {"run_id": "abc123", "model_name": "vad-tiny", "version": "2", "promoted": True,
           "reason": "vad-tiny v2 is now @champion (beats the champion)", "auc_micro": 0.9,
           "data_fingerprint": "f" * 64, "tracking_uri": "http://mlflow"}


@pytest.fixture
def inputs(frames, checkpoint, artifact):
    metrics, plots = artifact(Metrics, "metrics.json"), artifact(Artifact, "plots", "roc.csv")
    Path(metrics.path).write_text(json.dumps({"auc_micro": 0.9}))
    return {"frames": frames, "pretrained": checkpoint("pretrained"), "model": checkpoint("model"), "metrics": metrics,
            "plots": plots}


def test_register_passes_every_artifact_and_tags_the_version_with_its_lineage(record_run, inputs, artifact, as_struct,
                                                                              make_document, monkeypatch, fake_run):
    recorder = record_run("vad.stages.register", write=lambda args: args[-1].write_text(json.dumps(SUMMARY)))
    tags = []
    monkeypatch.setattr("vad.tracking.MlflowTracker", lambda uri=None: SimpleNamespace(
        client=SimpleNamespace(set_model_version_tag=lambda *tag: tags.append(tag))))
    registration = artifact(Artifact, "registration")
    inputs["model"].metadata["mlflow_run_id"] = "run-1"  # the pipeline's run, opened by pretrain

    register.python_func(params=as_struct(make_document()), **inputs, tracking_uri="http://mlflow",
                         pipeline_run_id="run-42", registration=registration)

    [(args, kwargs)] = recorder.calls
    assert args == (parse_params(make_document()), *(Path(inputs[k].path) for k in
                    ("frames", "pretrained", "model", "metrics", "plots")), Path(registration.path))
    assert kwargs == {"tracking": fake_run, "calibration_path": None}
    [opened] = fake_run.opened
    assert opened["previous"] == "run-1" and opened["tracking_uri"] == "http://mlflow"
    assert tags == [("vad-tiny", "2", "dataset_uri", "s3://bucket/ped2"), ("vad-tiny", "2", "kfp_run_id", "run-42")]
    assert registration.metadata == SUMMARY | {"dataset_uri": "s3://bucket/ped2", "kfp_run_id": "run-42"}


def test_register_refuses_a_frame_store_where_the_model_belongs(record_run, inputs, artifact, make_document,
                                                                assert_one_line):
    recorder = record_run("vad.stages.register")
    inputs["model"] = artifact(Dataset, "frames-again", "manifest.json")
    with pytest.raises(DataLayoutError, match=r"input model .* not a model \(no checkpoint.pt\)") as error:
        register.python_func(params=make_document(), **inputs, tracking_uri="http://mlflow", pipeline_run_id="r",
                             registration=artifact(Artifact, "registration"))
    assert_one_line(error)
    assert recorder.calls == []


def test_register_with_mlflow_unreachable_fails_in_one_line_and_keeps_the_model(frame_store, tmp_path, make_document,
                                                                                 assert_one_line):
    import torch

    models = {}
    for name in ("pretrained", "model"):
        (tmp_path / name).mkdir()
        torch.save({"history": [], "device": "cpu"}, tmp_path / name / "checkpoint.pt")
        models[name] = Model(uri=str(tmp_path / name))
    metrics, plots = Metrics(uri=str(tmp_path / "eval.json")), Artifact(uri=str(tmp_path / "plots"))
    Path(metrics.path).write_text(json.dumps({"auc_micro": 0.9}))
    Path(plots.path).mkdir()
    before = (tmp_path / "model" / "checkpoint.pt").read_bytes()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    registration = Artifact(uri=str(tmp_path / "registration"))

    with pytest.raises(TrackingError, match=f"MLflow server {uri} is unreachable") as error:
        register.python_func(params=make_document(), frames=Dataset(uri=str(frame_store)), **models, metrics=metrics,
                             plots=plots, tracking_uri=uri, pipeline_run_id="r", registration=registration)
    assert "kept" in assert_one_line(error)
    assert (tmp_path / "model" / "checkpoint.pt").read_bytes() == before
    assert not Path(registration.path).exists()
