from __future__ import annotations

from pathlib import Path

import pytest
from components.init_clusters.component import init_clusters
from kfp.dsl import Dataset, Metrics, Model

from vad.config import parse_params
from vad.errors import DataLayoutError


def test_init_clusters_passes_the_pretrained_model_and_writes_into_its_output(record_run, frames, checkpoint, artifact,
                                                                             as_struct, make_document):
    recorder = record_run("vad.stages.init_clusters", metrics={"init_inertia": 3.0})
    pretrained, model, metrics = checkpoint("pretrained"), artifact(Model, "model"), artifact(Metrics, "metrics")

    init_clusters.python_func(params=as_struct(make_document()), frames=frames, pretrained=pretrained, model=model,
                              metrics=metrics)

    [(args, _)] = recorder.calls
    assert args == (parse_params(make_document()), Path(frames.path), Path(pretrained.path), Path(model.path))
    assert metrics.metadata == {"init_inertia": 3.0}
    assert model.metadata["data_fingerprint"] == frames.metadata["data_fingerprint"]


def test_init_clusters_refuses_a_frame_store_where_the_pretrained_model_belongs(record_run, frames, artifact,
                                                                               make_document, assert_one_line):
    recorder = record_run("vad.stages.init_clusters")
    not_a_model = artifact(Dataset, "other-frames", "manifest.json")
    with pytest.raises(DataLayoutError, match="input pretrained .* not a model .*checkpoint.pt") as error:
        init_clusters.python_func(params=make_document(), frames=frames, pretrained=not_a_model,
                                  model=artifact(Model, "model"), metrics=artifact(Metrics, "metrics"))
    assert_one_line(error)
    assert recorder.calls == []
