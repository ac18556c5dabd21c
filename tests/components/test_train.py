from __future__ import annotations

from pathlib import Path

import pytest
from components.train.component import train
from kfp.dsl import Metrics, Model

from vad.config import parse_params
from vad.errors import DataLayoutError


def test_train_checkpoints_into_its_output_model_path(record_run, frames, checkpoint, artifact, as_struct,
                                                      make_document):
    recorder = record_run("vad.stages.train", metrics={"train_loss": 0.1, "train_cluster_loss": 0.01})
    init, model, metrics = checkpoint("init"), artifact(Model, "model"), artifact(Metrics, "metrics")

    train.python_func(params=as_struct(make_document()), frames=frames, init=init, model=model, metrics=metrics)

    [(args, _)] = recorder.calls
    # the output artifact path is the stage's out_dir, where its per-epoch checkpoint lives: a retry resumes there
    assert args == (parse_params(make_document()), Path(frames.path), Path(init.path), Path(model.path))
    assert metrics.metadata == {"train_loss": 0.1, "train_cluster_loss": 0.01}
    assert model.metadata["data_fingerprint"] == frames.metadata["data_fingerprint"]


def test_train_refuses_an_init_artifact_without_checkpoint(record_run, frames, artifact, make_document,
                                                           assert_one_line):
    recorder = record_run("vad.stages.train")
    with pytest.raises(DataLayoutError, match=r"input init .* \(no checkpoint.pt\).*init_clusters") as error:
        train.python_func(params=make_document(), frames=frames, init=artifact(Model, "empty", "history.json"),
                          model=artifact(Model, "model"), metrics=artifact(Metrics, "metrics"))
    assert_one_line(error)
    assert recorder.calls == []


@pytest.mark.parametrize(("sections", "options", "message"), [
    ({"train": {"epochs": 0}}, {}, "train.epochs"),  # bad params: named, in this process
    ({}, {"gpus": 0}, "gpus must be at least 1, got 0"),
])
def test_train_refuses_bad_inputs_before_running(record_run, frames, checkpoint, artifact, make_document,
                                                 assert_one_line, sections, options, message):
    from vad.errors import ConfigError

    recorder = record_run("vad.stages.train")
    with pytest.raises(ConfigError, match=message) as error:
        train.python_func(params=make_document(**sections), frames=frames, init=checkpoint("init"),
                          model=artifact(Model, "model"), metrics=artifact(Metrics, "metrics"), **options)
    assert_one_line(error)
    assert recorder.calls == []


def test_train_on_two_gpus_rejects_invalid_params_in_process(record_run, frames, checkpoint, artifact,
                                                             make_document, monkeypatch, assert_one_line):
    import vad.launch
    from vad.errors import ConfigError

    launches = []
    monkeypatch.setattr(vad.launch, "run_torchrun", lambda *args: launches.append(args))
    with pytest.raises(ConfigError, match="train.epochs") as error:
        train.python_func(params=make_document(train={"epochs": 0}), frames=frames, init=checkpoint("init"),
                          model=artifact(Model, "model"), metrics=artifact(Metrics, "metrics"), gpus=2)
    assert_one_line(error)
    assert launches == []


def test_train_on_two_gpus_reports_a_failed_launch_in_one_line(frames, checkpoint, artifact, make_document,
                                                               assert_one_line):
    from vad.launch import TorchrunError

    # frames holds only an empty manifest.json and init a checkpoint.pt of "{}": both ranks fail to read them
    with pytest.raises(TorchrunError, match=r"torchrun with 2 processes exited with code [1-9]") as error:
        train.python_func(params=make_document(), frames=frames, init=checkpoint("init"),
                          model=artifact(Model, "model"), metrics=artifact(Metrics, "metrics"), gpus=2)
    assert_one_line(error)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory, params, frame_store) -> Path:
    """A real init_clusters output for the tiny frame store."""
    from vad.stages import init_clusters, pretrain

    root = tmp_path_factory.mktemp("init")
    pretrain.run(params, frame_store, root / "pretrain")
    init_clusters.run(params, frame_store, root / "pretrain", root / "init")
    return root / "init"


def test_train_on_two_gpus_runs_torchrun_with_two_processes(initialised, frame_store, artifact, as_struct,
                                                            make_document, capfd):
    import json

    from kfp.dsl import Dataset

    from vad.checkpoint import load_checkpoint

    frames = Dataset(name="frames", uri=str(frame_store), metadata={"data_fingerprint": "f" * 64})
    init = Model(name="init", uri=str(initialised))
    model, metrics = artifact(Model, "model"), artifact(Metrics, "metrics")

    train.python_func(params=as_struct(make_document()), frames=frames, init=init, model=model, metrics=metrics,
                      gpus=2)

    log = capfd.readouterr().err  # the ranks write to this process's stderr, so the task's log shows them
    assert "2 processes (DDP)" in log
    assert load_checkpoint(Path(model.path) / "checkpoint.pt")["epoch"] == make_document()["train"]["epochs"]
    [last] = json.loads((Path(model.path) / "history.json").read_text())
    assert set(metrics.metadata) == {"train_loss", "train_cluster_loss", "train_clips_per_s"}
    assert metrics.metadata["train_loss"] == pytest.approx(last["loss"], abs=1e-6)
    assert metrics.metadata["train_cluster_loss"] == pytest.approx(last["loss_cluster"], abs=1e-6)
    assert model.metadata["data_fingerprint"] == "f" * 64


def test_train_joins_the_run_named_by_its_init_artifact(record_run, frames, checkpoint, artifact, as_struct,
                                                        make_document, fake_run):
    recorder = record_run("vad.stages.train")
    init, model = checkpoint("init"), artifact(Model, "model")
    init.metadata["mlflow_run_id"] = "run-1"

    train.python_func(params=as_struct(make_document()), frames=frames, init=init, model=model,
                      metrics=artifact(Metrics, "metrics"), tracking_uri="http://mlflow:5000")

    [(_, kwargs)] = recorder.calls
    assert kwargs == {"tracking": fake_run}
    assert fake_run.opened[0]["previous"] == "run-1" and fake_run.opened[0]["stage"] == "train"
    assert model.metadata["mlflow_run_id"] == "run-1"
