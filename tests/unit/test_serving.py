"""The served model (vad.serving.ClipScorer) as `mlflow models serve` loads it; the HTTP test is
tests/integration/test_serve.py."""

from types import SimpleNamespace

from vad.calibration import Calibration
from vad.checkpoint import CHECKPOINT
from vad.serving import ClipScorer
from vad.stages import calibrate


def _loaded(trained, calibration=None):
    artifacts = {"checkpoint": str(trained["train"] / CHECKPOINT)}
    if calibration is not None:
        artifacts["calibration"] = str(calibration)
    scorer = ClipScorer()
    scorer.load_context(SimpleNamespace(artifacts=artifacts))
    return scorer


def test_the_served_model_scores_with_the_cluster_map_of_its_calibration(trained, params, tmp_path):
    euclidean = params.model_copy(update={"score": params.score.model_copy(update={"cluster_distance": "euclidean"})})
    path = tmp_path / "calibration.json"
    calibrate.run(euclidean, trained["frames"], trained["train"], path)
    assert Calibration.load(path).cluster_distance == "euclidean"
    assert _loaded(trained, path).model.kmeans.distance == "euclidean"
    assert _loaded(trained).model.kmeans.distance == "squared"  # no calibration: the map it was trained with


def test_the_served_model_answers_with_the_alarm_score_of_its_calibration(trained, params, tmp_path):
    import numpy as np

    from vad.data.store import FrameStore

    window = params.model_copy(update={"detect": params.detect.model_copy(update={"map": "prediction",
                                                                                 "pooling": "window"})})
    path = tmp_path / "calibration.json"
    calibrate.run(window, trained["frames"], trained["train"], path)
    store = FrameStore.open(trained["frames"])
    frames = np.asarray(store.frames(store.split("test")[0]))[None, :12]
    calibrated, plain = _loaded(trained, path).predict(None, frames), _loaded(trained).predict(None, frames)
    assert (calibrated["anomaly_score"] == calibrated["prediction_window"]).all()
    assert (calibrated["anomaly_score"] != 1.0 / calibrated["fused"]).any()
    assert (plain["anomaly_score"] == 1.0 / plain["fused"]).all()  # uncalibrated: the paper's a = 1 / s
    assert (calibrated["prediction_window"] >= calibrated["prediction_error"]).all()  # a window's mean >= the frame's


def test_the_served_model_answers_with_the_relative_scores_only_when_it_carries_their_map(trained, params, tmp_path):
    import shutil

    import numpy as np
    import pytest
    import torch

    from vad.data.base import Split
    from vad.data.clips import ClipSource
    from vad.data.store import FrameStore
    from vad.errors import ConfigError
    from vad.models import load_trained
    from vad.stages.train import store_normal_error

    relative = params.model_copy(update={"detect": params.detect.model_copy(update={"map": "relative"})})
    store = FrameStore.open(trained["frames"])
    mapped = {**trained, "train": tmp_path / "train"}
    shutil.copytree(trained["train"], mapped["train"])
    clips = ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, torch.device("cpu"),
                                  holdout_share=params.detect.holdout_share)
    store_normal_error(load_trained(mapped["train"] / CHECKPOINT).model, clips, mapped["train"] / CHECKPOINT, relative)
    path = tmp_path / "calibration.json"
    calibrate.run(relative, trained["frames"], mapped["train"], path)
    frames = np.asarray(store.frames(store.split("test")[0]))[None, :12]
    served, plain = _loaded(mapped, path).predict(None, frames), _loaded(trained).predict(None, frames)
    assert {"relative", "relative_window"} <= set(served.columns) and np.isfinite(served["relative"]).all()
    assert (served["anomaly_score"] == served["relative"]).all()
    assert (served["is_anomaly"] == (served["relative"] > Calibration.load(path).threshold)).all()
    assert not {"relative", "relative_window"} & set(plain.columns)  # no map: no column of NaN
    with pytest.raises(ConfigError, match="carries no mean error map"):  # its calibration on a model without one
        _loaded(trained, path)
