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


def test_train_rejects_invalid_params_with_the_key_named(record_run, frames, checkpoint, artifact, make_document,
                                                         assert_one_line):
    from vad.errors import ConfigError

    recorder = record_run("vad.stages.train")
    with pytest.raises(ConfigError, match="train.epochs") as error:
        train.python_func(params=make_document(train={"epochs": 0}), frames=frames, init=checkpoint("init"),
                          model=artifact(Model, "model"), metrics=artifact(Metrics, "metrics"))
    assert_one_line(error)
    assert recorder.calls == []
