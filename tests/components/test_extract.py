from __future__ import annotations

import json
from pathlib import Path

import pytest
from components.extract.component import extract
from kfp.dsl import Dataset, Metrics
from pipelines.vad_pipeline import PRESETS

from vad.config import parse_params
from vad.errors import ConfigError, DataError


@pytest.fixture
def call(record_run, artifact, tmp_path, monkeypatch, as_struct):
    """call(**overrides) runs extract on a local dataset folder with the presets as the pipeline embeds them."""
    monkeypatch.setattr("vad.data.store.fingerprint", lambda path: "d" * 64)
    recorder = record_run("vad.stages.extract", metrics={"videos": 5, "frames": 150})
    (tmp_path / "raw").mkdir()
    frames, metrics = artifact(Dataset, "frames"), artifact(Metrics, "metrics")

    def run(**overrides):
        arguments = {"dataset_uri": str(tmp_path / "raw"), "dataset_format": "auto", "preset": "ped2",
                     "model_name": "", "presets": as_struct(PRESETS), "workers": 3, "skip_corrupt": False,
                     "frames": frames, "metrics": metrics} | overrides
        return extract.python_func(**arguments)

    run.recorder, run.frames, run.metrics, run.source = recorder, frames, metrics, tmp_path / "raw"
    return run


def test_extract_resolves_a_preset_name_and_returns_the_validated_document(call):
    (document,) = call(preset="ped2", dataset_format="ucsd", model_name="vad-ped2-nightly", skip_corrupt=True)

    expected = parse_params({**PRESETS["ped2"], "data": {**PRESETS["ped2"]["data"], "format": "ucsd"},
                             "register": {**PRESETS["ped2"]["register"], "model_name": "vad-ped2-nightly"}})
    assert parse_params(document) == expected
    assert document == expected.model_dump(mode="json", by_alias=True, exclude_none=True)  # Structs carry no None
    assert None not in [v for section in document.values() if isinstance(section, dict) for v in section.values()]
    [(args, kwargs)] = call.recorder.calls
    assert args == (expected.data, call.source, Path(call.frames.path))
    assert kwargs == {"workers": 3, "skip_corrupt": True}
    assert call.frames.metadata == {"dataset_uri": str(call.source), "dataset": "ped2", "data_fingerprint": "d" * 64}
    assert call.metrics.metadata == {"videos": 5, "frames": 150}


def test_extract_takes_a_params_document_as_json(call, make_document):
    (document,) = call(preset=json.dumps(make_document()), dataset_format="videos")

    params = parse_params(document)
    assert params.data.dataset == "tiny" and params.data.format.value == "videos" and params.model.width == 4
    assert params.model_name == "vad-tiny"  # empty model_name: the document's, else vad-<dataset>


@pytest.mark.parametrize(("overrides", "words"), [
    ({"preset": "ped3"}, "unknown preset 'ped3'; expected avenue, ped2, shanghaitech or a params document"),
    ({"preset": "{not json"}, "preset is not valid JSON"),
    ({"dataset_format": "mp4"}, "data.format"),
    ({"preset": json.dumps({"train": {"epochs": -1}})}, "train.epochs"),
])
def test_extract_fails_fast_on_a_bad_preset_or_format(call, assert_one_line, overrides, words):
    with pytest.raises(ConfigError) as error:
        call(**overrides)
    assert words in assert_one_line(error)
    assert call.recorder.calls == []


def test_extract_fails_fast_on_an_unsupported_dataset_uri_scheme(call, assert_one_line):
    with pytest.raises(DataError) as error:
        call(dataset_uri="ftp://example.com/ped2")
    message = assert_one_line(error)
    assert "unsupported dataset source ftp://example.com/ped2" in message and "dvc://" in message
    assert call.recorder.calls == []
