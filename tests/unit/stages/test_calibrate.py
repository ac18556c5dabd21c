"""Stage `calibrate`: it says when its threshold rests on an extrapolated tail rather than on the footage."""

from __future__ import annotations

import json
import logging

from vad.stages import calibrate


def _with_budget(params, per_hour: float):
    return params.model_copy(update={"detect": params.detect.model_copy(update={"false_alarms_per_hour": per_hour})})


def test_an_extrapolated_threshold_is_announced_and_an_empirical_one_is_not(trained, params, tmp_path, caplog,
                                                                             monkeypatch):
    with caplog.at_level(logging.WARNING, logger="vad.stages.calibrate"):
        calibrate.run(_with_budget(params, 1.0), trained["frames"], trained["train"], tmp_path / "strict.json")
    strict = json.loads((tmp_path / "strict.json").read_text())
    assert strict["method"] == "log-normal tail"
    assert [r.getMessage() for r in caplog.records if "cannot show 1 false alarms per hour" in r.getMessage()]

    caplog.clear()
    # the fixture holds out 6 frames: at a share of one frame in two, and with 1 exceeding frame enough to stand on,
    # the threshold is their empirical quantile
    monkeypatch.setattr("vad.calibration.MIN_TAIL_FRAMES", 1)
    with caplog.at_level(logging.WARNING, logger="vad.stages.calibrate"):
        calibrate.run(_with_budget(params, 3600.0 * params.detect.fps / 2), trained["frames"], trained["train"],
                      tmp_path / "loose.json")
    assert json.loads((tmp_path / "loose.json").read_text())["method"] == "empirical"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_normal_footage_is_calibrated_on_with_the_hold_out(trained, params, raw_dataset, tmp_path):
    import cv2
    import pytest

    from vad.calibration import Calibration
    from vad.errors import DataError

    held_out = calibrate.run(params, trained["frames"], trained["train"], tmp_path / "held.json")
    videos = sorted((raw_dataset / "train").glob("*.avi"))
    lengths = [int(cv2.VideoCapture(str(v)).get(cv2.CAP_PROP_FRAME_COUNT)) for v in videos]
    both = calibrate.run(params, trained["frames"], trained["train"], tmp_path / "both.json",
                         normal=[raw_dataset / "train"])
    clips = sum(n - params.data.clip_len + 1 for n in lengths)  # every clip of every video, frames resized
    assert both.metrics["calibration_frames"] == held_out.metrics["calibration_frames"] + clips
    assert Calibration.load(tmp_path / "both.json").frames == held_out.metrics["calibration_frames"] + clips

    with pytest.raises(DataError, match="not found") as error:
        calibrate.run(params, trained["frames"], trained["train"], tmp_path / "none.json",
                      normal=[tmp_path / "missing.mp4"])
    assert "\n" not in str(error.value) and not (tmp_path / "none.json").exists()
