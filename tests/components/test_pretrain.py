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
    assert args == (parse_params(make_document()), Path(frames.path), Path(model.path)) and kwargs == {}
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
