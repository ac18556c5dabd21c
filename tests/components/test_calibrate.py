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

    [(args, kwargs)] = recorder.calls
    assert args == (parse_params(make_document()), Path(frames.path), Path(model.path), Path(calibration.path))
    assert kwargs == {"normal": []}  # the hold-out alone
    assert metrics.metadata == calibration.metadata == {"threshold": 0.25, "calibration_frames": 40.0}


def test_calibrate_refuses_an_input_that_is_not_a_model(record_run, frames, artifact, make_document,
                                                        assert_one_line):
    recorder = record_run("vad.stages.calibrate")
    with pytest.raises(DataLayoutError, match=r"input model .* \(no checkpoint.pt\).*train") as error:
        calibrate.python_func(params=make_document(), frames=frames, model=artifact(Artifact, "empty"),
                              calibration=artifact(Artifact, "calibration"), metrics=artifact(Metrics, "m"))
    assert_one_line(error)
    assert recorder.calls == []


def test_calibrate_fetches_the_normal_footage_and_calibrates_on_it_too(monkeypatch, s3_server, s3_bucket, frames,
                                                                      checkpoint, artifact, make_document, tmp_path):
    from vad.stages import StageResult

    footage = tmp_path / "lobby"
    (footage / "day1").mkdir(parents=True)
    (footage / "day1" / "cam.avi").write_bytes(b"video bytes")
    s3_server.upload(s3_bucket, "footage/lobby", footage)
    seen = []

    def run(*args, normal):  # the footage must be there while the stage runs; the component cleans it up after
        seen.append(sorted(p.relative_to(normal[0]).as_posix() for folder in normal for p in folder.rglob("*.avi")))
        return StageResult(metrics={"threshold": 0.5, "calibration_frames": 900.0})

    monkeypatch.setattr("vad.stages.calibrate.run", run)
    calibration = artifact(Artifact, "calibration")
    calibrate.python_func(params=make_document(), frames=frames, model=checkpoint("model"), calibration=calibration,
                          metrics=artifact(Metrics, "m"), normal_footage_uri=f"s3://{s3_bucket}/footage/lobby")

    assert seen == [["day1/cam.avi"]]
    assert calibration.metadata == {"threshold": 0.5, "calibration_frames": 900.0,
                                    "normal_footage_uri": f"s3://{s3_bucket}/footage/lobby"}


def test_calibrate_refuses_missing_normal_footage_before_scoring(record_run, frames, checkpoint, artifact,
                                                                 make_document, assert_one_line, tmp_path):
    recorder = record_run("vad.stages.calibrate")
    with pytest.raises(DataLayoutError, match="does not exist") as error:
        calibrate.python_func(params=make_document(), frames=frames, model=checkpoint("model"),
                              calibration=artifact(Artifact, "calibration"), metrics=artifact(Metrics, "m"),
                              normal_footage_uri=str(tmp_path / "no-such-footage"))
    message = assert_one_line(error)
    assert message.startswith("normal_footage_uri: ") and str(tmp_path / "no-such-footage") in message
    assert recorder.calls == []
