"""pipeline_arguments: the client-side check of the pipeline parameters (before anything is uploaded or run)."""

from __future__ import annotations

import json

import pytest
from pipelines.vad_pipeline import PRESETS, pipeline_arguments

from vad.config import parse_params
from vad.errors import ConfigError, DataError


def test_presets_are_the_paper_configs_and_validate():
    assert set(PRESETS) == {"ped2", "avenue", "shanghaitech"}
    for name, document in PRESETS.items():
        assert parse_params(document).data.dataset == name


def test_arguments_turn_a_params_dict_into_json(make_document):
    arguments = pipeline_arguments("s3://datasets/tiny", "http://mlflow:5000", preset=make_document(),
                                   dataset_format="videos", model_name="vad-x", train_gpus=4)
    assert json.loads(arguments["preset"]) == make_document()
    assert arguments | {"preset": "..."} == {"dataset_uri": "s3://datasets/tiny", "mlflow_tracking_uri":
                                             "http://mlflow:5000", "dataset_format": "videos", "preset": "...",
                                             "model_name": "vad-x", "train_gpus": 4, "normal_footage_uri": ""}


def test_arguments_pass_the_normal_footage_on():
    arguments = pipeline_arguments("s3://datasets/ped2", "http://mlflow", normal_footage_uri="s3://footage/lobby")
    assert arguments["normal_footage_uri"] == "s3://footage/lobby"


def test_arguments_default_to_one_train_gpu():
    assert pipeline_arguments("s3://datasets/ped2", "http://mlflow")["train_gpus"] == 1


@pytest.mark.parametrize("uri", ["s3://b/p", "https://example.com/ped2.tar.gz", "dvc://https://github.com/o/r#d@v1",
                                 "/data/ped2"])
def test_arguments_accept_every_supported_dataset_uri(uri):
    assert pipeline_arguments(uri, "http://mlflow")["dataset_uri"] == uri


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"preset": "ped3"}, ConfigError, "unknown preset 'ped3'"),
    ({"preset": "{oops"}, ConfigError, "not valid JSON"),
    ({"dataset_format": "mp4"}, ConfigError, "data.format"),
    ({"dataset_uri": "ftp://example.com/ped2"}, DataError, "unsupported dataset_uri ftp://example.com/ped2"),
    ({"normal_footage_uri": "ftp://example.com/lobby"}, DataError,
     "unsupported normal_footage_uri ftp://example.com/lobby"),
    ({"train_gpus": 0}, ConfigError, "train_gpus must be an integer of at least 1, got 0"),
    ({"train_gpus": "2"}, ConfigError, "train_gpus must be an integer of at least 1, got '2'"),
])
def test_arguments_fail_fast_with_one_line(kwargs, error, words):
    arguments = {"dataset_uri": "s3://datasets/ped2", "mlflow_tracking_uri": "http://mlflow"} | kwargs
    with pytest.raises(error) as raised:
        pipeline_arguments(**arguments)
    assert words in str(raised.value) and "\n" not in str(raised.value)
