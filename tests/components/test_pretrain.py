from __future__ import annotations

from pathlib import Path

import pytest
from components.pretrain.component import pretrain
from kfp.dsl import Metrics, Model

from vad.config import parse_params
from vad.errors import DataLayoutError


def test_pretrain_validates_struct_params_and_passes_the_artifact_paths(record_run, frames, artifact, as_struct,
                                                                       make_document):
    recorder = record_run("vad.stages.pretrain", metrics={"pretrain_loss": 0.25})
    model, metrics = artifact(Model, "model"), artifact(Metrics, "metrics")

    pretrain.python_func(params=as_struct(make_document()), frames=frames, model=model, metrics=metrics)

    [(args, kwargs)] = recorder.calls
    assert args == (parse_params(make_document()), Path(frames.path), Path(model.path))
    assert kwargs == {"tracking": None} and "mlflow_run_id" not in model.metadata  # no MLflow: untracked
    assert metrics.metadata == {"pretrain_loss": 0.25}
    assert model.metadata["data_fingerprint"] == frames.metadata["data_fingerprint"]
    assert model.metadata["dataset_uri"] == "s3://bucket/ped2"


def test_pretrain_refuses_a_model_where_the_frame_store_belongs(record_run, checkpoint, artifact, make_document,
                                                               assert_one_line):
    recorder = record_run("vad.stages.pretrain")
    with pytest.raises(DataLayoutError, match="not a frame store .*extract") as error:
        pretrain.python_func(params=make_document(), frames=checkpoint("train-model"),
                             model=artifact(Model, "model"), metrics=artifact(Metrics, "metrics"))
    assert_one_line(error)
    assert recorder.calls == []


def test_pretrain_on_two_gpus_launches_the_stage_and_logs_its_metrics(record_run, frames, artifact, as_struct,
                                                                      make_document, monkeypatch):
    import vad.launch

    recorder = record_run("vad.stages.pretrain")
    launches = []
    monkeypatch.setattr(vad.launch, "run_stage",
                        lambda *args: launches.append(args) or {"pretrain_loss": 0.25})
    model, metrics = artifact(Model, "model"), artifact(Metrics, "metrics")

    pretrain.python_func(params=as_struct(make_document()), frames=frames, model=model, metrics=metrics, gpus=2)

    assert launches == [("pretrain", parse_params(make_document()), {"frames": frames.path, "out": model.path}, 2)]
    assert recorder.calls == []
    assert metrics.metadata == {"pretrain_loss": 0.25}
    assert model.metadata["data_fingerprint"] == frames.metadata["data_fingerprint"]


def test_pretrain_refuses_zero_gpus(record_run, frames, artifact, make_document, assert_one_line):
    from vad.errors import ConfigError

    recorder = record_run("vad.stages.pretrain")
    with pytest.raises(ConfigError, match="gpus must be at least 1, got 0") as error:
        pretrain.python_func(params=make_document(), frames=frames, model=artifact(Model, "model"),
                             metrics=artifact(Metrics, "metrics"), gpus=0)
    assert_one_line(error)
    assert recorder.calls == []


def test_pretrain_opens_the_pipelines_mlflow_run_and_passes_its_id_downstream(record_run, frames, artifact,
                                                                              as_struct, make_document, fake_run):
    recorder = record_run("vad.stages.pretrain")
    model, metrics = artifact(Model, "model"), artifact(Metrics, "metrics")

    pretrain.python_func(params=as_struct(make_document()), frames=frames, model=model, metrics=metrics,
                         tracking_uri="http://mlflow:5000")

    [(_, kwargs)] = recorder.calls
    assert kwargs == {"tracking": fake_run}
    [opened] = fake_run.opened
    assert opened["stage"] == "pretrain" and opened["previous"] is None
    assert opened["source_uri"] == "s3://bucket/ped2"  # the dataset as MLflow records it: where it came from
    assert model.metadata["mlflow_run_id"] == "run-1"


def test_a_failing_pretrain_marks_the_run(record_run, frames, artifact, as_struct, make_document, fake_run):
    def fail(args):
        raise MemoryError("CUDA out of memory")

    record_run("vad.stages.pretrain", write=fail)
    with pytest.raises(MemoryError):
        pretrain.python_func(params=as_struct(make_document()), frames=frames, model=artifact(Model, "model"),
                             metrics=artifact(Metrics, "metrics"), tracking_uri="http://mlflow:5000")
    [(stage, error)] = fake_run.failed
    assert stage == "pretrain" and isinstance(error, MemoryError)
