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
