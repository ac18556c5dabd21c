"""`scores.csv`: one module writes and reads it (vad.scores_csv)."""

import math

import numpy as np
import pytest

from vad.errors import DataError, DataLayoutError
from vad.scores_csv import COLUMNS as SCORE_COLUMNS
from vad.scores_csv import DETECT_COLUMNS, read_scores, video_rows


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_scores_parses_columns_and_sorts_frames(tmp_path):
    path = _write(tmp_path / "scores.csv", [
        ",".join(SCORE_COLUMNS),
        "v1,1,1,0.5,2.0,0.1,,0.4,0.3",
        "v1,0,0,,,,,,",
        "v2,0,1,1.0,3.0,0.2,,0.5,0.6",
    ])
    scores = read_scores(path)
    assert list(scores) == ["v1", "v2"]
    np.testing.assert_array_equal(scores["v1"]["frame"], [0, 1])
    np.testing.assert_array_equal(scores["v1"]["scored"], [False, True])
    assert math.isnan(scores["v1"]["anomaly"][0])
    assert scores["v1"]["anomaly"][1] == 0.5
    assert np.isnan(scores["v1"]["cluster_distance"]).all()
    assert scores["v2"]["fused_window"][0] == 0.5 and scores["v2"]["prediction_window"][0] == 0.6


def test_read_scores_of_a_file_from_before_the_window_scores_gives_them_as_nan(tmp_path):
    path = _write(tmp_path / "scores.csv", [",".join(SCORE_COLUMNS[:7]), "v,0,0,,,,", "v,1,1,0.5,2.0,0.1,"])
    scores = read_scores(path)["v"]
    assert scores["fused"][1] == 2.0
    assert np.isnan(scores["fused_window"]).all() and np.isnan(scores["prediction_window"]).all()


def test_read_scores_names_the_file_and_the_missing_column(tmp_path):
    path = _write(tmp_path / "scores.csv", ["video,frame,scored,anomaly,fused,prediction_error", "v,0,0,,,"])
    with pytest.raises(DataError, match=r"scores\.csv.*cluster_distance"):
        read_scores(path)


@pytest.mark.parametrize("row, match", [
    ("v,x,0,,,,,,", "frame"),
    ("v,0,2,,,,,,", "scored"),
    ("v,0,1,,1.0,0.1,,0.1,0.1", "scored frame without"),
    ("v,0,1,0.5,1.0,0.1,,,0.1", "scored frame without"),
    ("v,0,1,abc,1.0,0.1,,0.1,0.1", "anomaly"),
])
def test_read_scores_rejects_malformed_rows(tmp_path, row, match):
    path = _write(tmp_path / "scores.csv", [",".join(SCORE_COLUMNS), row])
    with pytest.raises(DataError, match=match):
        read_scores(path)


def test_read_scores_rejects_a_repeated_frame(tmp_path):
    path = _write(tmp_path / "scores.csv", [",".join(SCORE_COLUMNS), "v,0,0,,,,,,", "v,0,0,,,,,,"])
    with pytest.raises(DataError, match="frame 0 twice"):
        read_scores(path)


def test_read_scores_raises_layout_error_when_missing(tmp_path):
    with pytest.raises(DataLayoutError, match="vad score"):
        read_scores(tmp_path / "scores.csv")


def test_rows_written_for_a_video_read_back_as_its_scores(tmp_path):
    raw = {"fused": np.array([4.0, 2.0, 8.0]), "prediction_error": np.array([0.1, 0.2, 0.3]),
           "cluster_distance": np.array([1.0, 1.5, 2.0]), "fused_window": np.array([0.5, 1.0, 0.25]),
           "prediction_window": np.array([0.2, 0.3, 0.4]), "relative": np.array([1.5, 0.9, 3.0]),
           "relative_window": np.array([np.nan, np.nan, np.nan])}
    rows = list(video_rows("v", 5, raw, clip_len=3))
    path = _write(tmp_path / "scores.csv", [",".join(SCORE_COLUMNS), *(",".join(map(str, r)) for r in rows)])
    scores = read_scores(path)["v"]
    np.testing.assert_array_equal(scores["scored"], [False, False, True, True, True])
    np.testing.assert_allclose(scores["fused"][2:], raw["fused"])
    np.testing.assert_allclose(scores["prediction_window"][2:], raw["prediction_window"])
    np.testing.assert_allclose(scores["relative"][2:], raw["relative"])
    assert np.isnan(scores["relative_window"]).all()  # a network without a normal error map: empty
    # Eq. 14 within the video: 1 - (s - min) / (max - min), high = abnormal
    np.testing.assert_allclose(scores["anomaly"][2:], [2 / 3, 1.0, 0.0], atol=1e-7)


def test_the_detect_columns_extend_the_score_columns():
    assert DETECT_COLUMNS[: len(SCORE_COLUMNS)] == SCORE_COLUMNS
    assert DETECT_COLUMNS[len(SCORE_COLUMNS) :] == ("anomaly_score", "is_anomaly")
