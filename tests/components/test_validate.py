from __future__ import annotations

from pathlib import Path

import pytest
from components.validate.component import validate
from kfp.dsl import Artifact

from vad.config import parse_params
from vad.errors import DataLayoutError


def test_validate_passes_the_data_params_and_the_report_path(record_run, frames, artifact, as_struct, make_document):
    recorder = record_run("vad.stages.validate", metrics={"expectations": 16, "failed": 0})
    report = artifact(Artifact, "report")

    validate.python_func(params=as_struct(make_document()), frames=frames, report=report)

    [(args, _)] = recorder.calls
    assert args == (parse_params(make_document()).data, Path(frames.path), Path(report.path))
    assert report.metadata == {"expectations": 16, "failed": 0}


def test_validate_refuses_a_model_where_the_frame_store_belongs(record_run, checkpoint, artifact, make_document,
                                                                assert_one_line):
    recorder = record_run("vad.stages.validate")
    with pytest.raises(DataLayoutError, match="not a frame store") as error:
        validate.python_func(params=make_document(), frames=checkpoint("model"), report=artifact(Artifact, "report"))
    assert_one_line(error)
    assert recorder.calls == []
