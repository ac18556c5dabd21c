from __future__ import annotations

from pathlib import Path

import pytest
from components.calibrate.component import calibrate
from kfp.dsl import Artifact, Metrics

from vad.config import parse_params
from vad.errors import DataLayoutError


def test_calibrate_writes_the_calibration_at_the_output_artifact_path(record_run, frames, checkpoint, artifact,
                                                                      as_struct, make_document):
    recorder = record_run("vad.stages.calibrate", metrics={"threshold": 0.25, "calibration_frames": 40.0})
    model, calibration, metrics = checkpoint("model"), artifact(Artifact, "calibration"), artifact(Metrics, "m")

    calibrate.python_func(params=as_struct(make_document()), frames=frames, model=model, calibration=calibration,
                          metrics=metrics)

    [(args, _)] = recorder.calls
    assert args == (parse_params(make_document()), Path(frames.path), Path(model.path), Path(calibration.path))
    assert metrics.metadata == calibration.metadata == {"threshold": 0.25, "calibration_frames": 40.0}


def test_calibrate_refuses_an_input_that_is_not_a_model(record_run, frames, artifact, make_document,
                                                        assert_one_line):
    recorder = record_run("vad.stages.calibrate")
    with pytest.raises(DataLayoutError, match=r"input model .* \(no checkpoint.pt\).*train") as error:
        calibrate.python_func(params=make_document(), frames=frames, model=artifact(Artifact, "empty"),
                              calibration=artifact(Artifact, "calibration"), metrics=artifact(Metrics, "m"))
    assert_one_line(error)
    assert recorder.calls == []
