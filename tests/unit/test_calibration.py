"""The alarm threshold from held-out normal scores, on distributions whose quantiles are known."""

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from vad.calibration import Calibration, alarm_score, calibrate
from vad.errors import DataError, DataLayoutError


def test_a_budget_the_footage_can_see_uses_the_empirical_quantile():
    scores = np.arange(1, 100_001, dtype=float)  # uniform on 1..100000
    # 36 false alarms per hour at 1 frame/s: a share of 1/100 of frames may exceed the threshold
    result = calibrate(scores, false_alarms_per_hour=36.0, fps=1.0)
    assert result.method == "empirical" and result.frames == 100_000
    assert result.threshold == pytest.approx(np.quantile(scores, 0.99))
    assert (scores > result.threshold).mean() == pytest.approx(0.01, abs=1 / len(scores))


def test_a_strict_budget_extrapolates_a_lognormal_tail_fitted_to_the_scores():
    rng = np.random.default_rng(0)
    scores = np.exp(rng.normal(-6.0, 0.5, size=20_000))  # log-normal, mu -6, sigma 0.5
    result = calibrate(scores, false_alarms_per_hour=1.0, fps=25.0)  # a share of 1 in 90,000 frames
    assert result.method == "log-normal tail"
    z = NormalDist().inv_cdf(1 - 1 / 90_000)
    # the fit's mean and std have standard errors of sigma / sqrt(n) and sigma / sqrt(2n): 4 of them in the log
    tolerance = 4 * (0.5 / math.sqrt(20_000) + z * 0.5 / math.sqrt(2 * 20_000))
    assert math.log(result.threshold) == pytest.approx(-6.0 + 0.5 * z, abs=tolerance)
    assert result.threshold >= scores.max()


def test_the_threshold_is_never_below_the_largest_held_out_score():
    result = calibrate(np.array([1.0, 1.0, 1.0, 1.0, 50.0]), false_alarms_per_hour=1.0, fps=25.0)
    assert result.threshold >= 50.0


def test_a_calibration_round_trips_and_gives_thresholds_for_other_frame_rates(tmp_path):
    scores = np.exp(np.random.default_rng(1).normal(0.0, 1.0, size=5000))
    result = calibrate(scores, false_alarms_per_hour=2.0, fps=10.0)
    result.save(tmp_path / "c.json")
    loaded = Calibration.load(tmp_path / "c.json")
    assert loaded == result
    assert loaded.threshold_for(2.0, 10.0) == pytest.approx(result.threshold)
    assert loaded.threshold_for(2.0, 30.0) > loaded.threshold_for(2.0, 10.0)  # more frames, rarer per frame


def test_another_standard_budget_is_the_empirical_quantile_where_the_footage_shows_it():
    scores = np.exp(np.random.default_rng(2).normal(0.0, 1.0, size=6000))  # ten minutes at 10 frames/s
    result = calibrate(scores, false_alarms_per_hour=1.0, fps=10.0)
    assert result.method == "log-normal tail"  # 1/h cannot be seen in ten minutes
    # 60/h is one frame in 600: ten of these 6,000 exceed it, enough to read it off the footage
    assert result.threshold_for(60.0, 10.0) == pytest.approx(np.quantile(scores, 1 - 1 / 600))
    assert result.threshold_for(60.0, 10.0) < scores.max()  # not the fallback to the largest score
    # 10/h (one frame in 3,600) shows in fewer than ten frames here: the tail model, never below the maximum
    assert result.threshold_for(10.0, 10.0) >= scores.max()


@pytest.mark.parametrize("scores", [[], [1.0], [float("nan")] * 5, [1.0, -1.0, 2.0]])
def test_unusable_scores_are_refused(scores):
    with pytest.raises(DataError):
        calibrate(np.array(scores), 1.0, 25.0)


RAW = {"fused": np.array([4.0, 0.5]), "prediction_error": np.array([0.1, 0.2]),
       "fused_window": np.array([0.3, 0.9]), "prediction_window": np.array([0.15, 0.7])}


@pytest.mark.parametrize("map_, pooling, expected", [
    ("fused", "mean", [0.25, 2.0]),  # the paper's a = 1 / s
    ("prediction", "mean", [0.1, 0.2]),
    ("fused", "window", [0.3, 0.9]),
    ("prediction", "window", [0.15, 0.7]),
])
def test_alarm_score_reads_the_map_and_pooling_it_is_asked_for(map_, pooling, expected):
    np.testing.assert_array_equal(alarm_score(RAW, map_, pooling), expected)
    calibration = calibrate(np.array([1.0, 2.0, 3.0]), 1.0, 10.0, map=map_, pooling=pooling)
    np.testing.assert_array_equal(calibration.score(RAW), expected)


def test_a_calibration_keeps_its_alarm_score_and_one_from_before_the_switch_is_the_paper_s(tmp_path):
    path = tmp_path / "calibration.json"
    calibrate(np.array([1.0, 2.0, 3.0]), 1.0, 10.0, map="prediction", pooling="window").save(path)
    loaded = Calibration.load(path)
    assert (loaded.map, loaded.pooling) == ("prediction", "window")
    old = json.loads(path.read_text())
    del old["map"], old["pooling"]
    path.write_text(json.dumps(old))
    assert (Calibration.load(path).map, Calibration.load(path).pooling) == ("fused", "mean")
    old["pooling"] = "median"
    path.write_text(json.dumps(old))
    with pytest.raises(DataLayoutError, match="calibrat"):
        Calibration.load(path)
