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
