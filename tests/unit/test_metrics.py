import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vad.metrics import (
    VideoScores,
    anomaly_from_regularity,
    evaluate,
    frame_auc,
    roc_curve,
)


def _video(video_id, labels, anomaly, scored=None, prediction_error=None, cluster_distance=None):
    labels = np.asarray(labels, dtype=np.uint8)
    scored = np.ones(labels.size, dtype=bool) if scored is None else np.asarray(scored, dtype=bool)
    def as_array(x):
        return None if x is None else np.asarray(x, dtype=np.float64)

    return VideoScores(video_id, labels, scored, np.asarray(anomaly, dtype=np.float64),
                       as_array(prediction_error), as_array(cluster_distance))


def test_frame_auc_hand_worked_cases():
    # Positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered correctly.
    assert frame_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert frame_auc([0, 1], [0.2, 0.9]) == 1.0
    assert frame_auc([0, 1], [0.9, 0.2]) == 0.0
    assert frame_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts half


def test_frame_auc_is_nan_for_a_single_class():
    assert math.isnan(frame_auc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(frame_auc([1, 1], [0.1, 0.2]))


def test_frame_auc_matches_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.random(500) + 0.3 * labels
    assert frame_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_anomaly_from_regularity_inverts_min_max_normalisation():
    np.testing.assert_allclose(anomaly_from_regularity(np.array([2.0, 4.0, 6.0])), [1.0, 0.5, 0.0])


def test_anomaly_from_regularity_gives_zeros_for_a_constant_video():
    with np.errstate(all="raise"):
        out = anomaly_from_regularity(np.full(5, 3.0))
    np.testing.assert_array_equal(out, np.zeros(5))


def test_evaluate_micro_and_macro_match_sklearn():
    a = _video("a", [0, 0, 1, 1, 0], [0.1, 0.2, 0.9, 0.6, 0.7])
    b = _video("b", [0, 1, 1, 0], [0.3, 0.8, 0.1, 0.0])
    result = evaluate([a, b])
    labels = np.concatenate([a.labels, b.labels])
    scores = np.concatenate([a.anomaly, b.anomaly])
    assert result.metrics["auc_micro"] == pytest.approx(roc_auc_score(labels, scores))
    auc_a, auc_b = roc_auc_score(a.labels, a.anomaly), roc_auc_score(b.labels, b.anomaly)
    assert result.per_video_auc == pytest.approx({"a": auc_a, "b": auc_b})
    assert result.metrics["auc_macro"] == pytest.approx((auc_a + auc_b) / 2)
    assert result.metrics["frames_scored"] == 9
    assert result.metrics["frames_abnormal"] == 4
    assert result.metrics["videos"] == 2


def test_evaluate_leaves_unscored_frames_out():
    # Unscored frames hold NaN scores; a label 1 there would lift micro AUC if it were counted.
    a = _video("a", [1, 1, 0, 1, 0, 0], [np.nan, np.nan, 0.2, 0.9, 0.1, 0.3], scored=[0, 0, 1, 1, 1, 1])
    result = evaluate([a])
    assert result.metrics["auc_micro"] == 1.0
    assert result.metrics["frames_scored"] == 4
    assert result.metrics["frames_abnormal"] == 1
    np.testing.assert_array_equal(result.labels, [0, 1, 0, 0])


def test_evaluate_macro_ignores_a_single_class_video():
    a = _video("a", [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])  # AUC 1
    b = _video("b", [0, 1, 1, 0], [0.9, 0.1, 0.2, 0.8])  # AUC 0
    normal = _video("normal", [0, 0, 0], [0.5, 0.9, 0.1])
    result = evaluate([a, b, normal])
    assert math.isnan(result.per_video_auc["normal"])
    assert result.metrics["auc_macro"] == pytest.approx(0.5)
    assert result.metrics["videos"] == 3
    assert result.metrics["videos_macro"] == 2


def test_evaluate_macro_is_nan_when_no_video_has_both_classes():
    result = evaluate([_video("a", [0, 0], [0.1, 0.2]), _video("b", [1, 1], [0.3, 0.4])])
    assert result.metrics["auc_micro"] == 1.0
    assert math.isnan(result.metrics["auc_macro"])


def test_component_auc_normalises_per_video_and_skips_missing_cluster_score():
    # Raw prediction errors pooled across videos give AUC 3/4 (2 < 10); per-video 1/e, min-max, 1 - S
    # maps both videos to [0, 1] and gives AUC 1, as in the paper's Fig. 8.
    a = _video("a", [0, 1], [0.0, 1.0], prediction_error=[1.0, 2.0])
    b = _video("b", [0, 1], [0.0, 1.0], prediction_error=[10.0, 20.0])
    assert roc_auc_score([0, 1, 0, 1], [1.0, 2.0, 10.0, 20.0]) == 0.75
    result = evaluate([a, b])
    assert result.metrics["auc_prediction"] == 1.0
    assert "auc_cluster" not in result.metrics


def test_component_auc_of_cluster_distance_matches_sklearn():
    a = _video("a", [0, 1, 0], [0, 1, 0], prediction_error=[1, 2, 3], cluster_distance=[0.5, 0.1, 0.2])
    result = evaluate([a])
    # Regularity 1/D = [2, 10, 5] -> S = [0, 1, 3/8] -> anomaly [1, 0, 0.625]: the abnormal frame is
    # the closest to a center, so it ranks last.
    anomaly = anomaly_from_regularity(1 / np.array([0.5, 0.1, 0.2]))
    np.testing.assert_allclose(anomaly, [1.0, 0.0, 0.625])
    assert result.metrics["auc_cluster"] == roc_auc_score([0, 1, 0], anomaly) == 0.0


def test_roc_curve_first_threshold_is_finite_and_above_every_score():
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 1.0])
    fpr, tpr, thresholds = roc_curve(labels, scores)
    assert np.all(np.isfinite(thresholds))
    assert thresholds[0] == pytest.approx(2.0)
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(0.75)


def test_the_raw_pooled_auc_keeps_one_scale_across_videos():
    import numpy as np

    from vad.metrics import VideoScores, evaluate

    # Each video alone is perfectly ranked, but video b's normal frames score above video a's abnormal ones:
    # per-video min-max hides that (micro AUC 1), the raw pooled AUC does not.
    labels = np.array([0, 0, 1, 1], np.uint8)
    scored = np.ones(4, bool)
    a = VideoScores("a", labels, scored, anomaly=np.array([0, 0, 1, 1.0]), fused=1 / np.array([1, 1, 2, 2.0]))
    b = VideoScores("b", labels, scored, anomaly=np.array([0, 0, 1, 1.0]), fused=1 / np.array([3, 3, 4, 4.0]))
    metrics = evaluate([a, b]).metrics
    assert metrics["auc_micro"] == 1.0 and metrics["auc_raw_pooled"] == 0.75
