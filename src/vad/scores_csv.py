"""The `scores.csv` format, defined, written and read here only.

One row per frame of each scored video, in frame order:

    video, frame, scored, anomaly, fused, prediction_error, cluster_distance, fused_window, prediction_window,
    relative, relative_window

`scored` is 0 for the first T-1 frames of a video (no full clip ends there; their other columns are empty)
and 1 elsewhere. `anomaly` is the paper's per-video min-max normalised score (Eq. 14, in [0, 1], high =
abnormal), `fused` the raw regularity score s = 1 / mean_p(e * D_u) (high = normal), `prediction_error`
and `cluster_distance` its two parts (`cluster_distance` empty everywhere without k-means), `fused_window`
and `prediction_window` the largest mean of e * D_u and of e over a window of 2x2 latent cells (high =
abnormal; `vad.scoring.window_max`), `relative` and `relative_window` the mean and window maximum of e
divided by the network's mean error map on normal footage (empty for networks without one). `vad detect`
writes the same columns plus `DETECT_COLUMNS[len(COLUMNS):]`: `anomaly_score` (the alarm score of the
calibration, `vad.calibration.alarm_score`, high = abnormal) and `is_anomaly` (0 or 1 at the threshold); a
live source leaves `anomaly` empty (Eq. 14 needs the whole video).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vad.errors import DataError, DataLayoutError
from vad.metrics import anomaly_from_regularity

__all__ = ["RAW_SCORES", "COLUMNS", "DETECT_COLUMNS", "format_value", "video_rows", "read_scores"]

# what vad.scoring computes for each clip
RAW_SCORES = ("fused", "prediction_error", "cluster_distance", "fused_window", "prediction_window", "relative",
              "relative_window")
COLUMNS = ("video", "frame", "scored", "anomaly", *RAW_SCORES)
DETECT_COLUMNS = (*COLUMNS, "anomaly_score", "is_anomaly")
# Columns that every scored row must fill; cluster_distance is empty everywhere when K-means is off.
_REQUIRED_WHEN_SCORED = ("anomaly", "fused", "prediction_error", "fused_window", "prediction_window")
# Files written before these scores existed lack them: read as NaN (what needs them asks for a re-score)
_OPTIONAL = ("fused_window", "prediction_window", "relative", "relative_window")


def format_value(value: float) -> str:
    """A score as written: 8 significant digits, empty for NaN."""
    return "" if math.isnan(value) else f"{value:.8g}"


def video_rows(video: str, frames: int, raw: dict[str, np.ndarray], clip_len: int) -> Iterator[tuple]:
    """The `COLUMNS` rows of one video of `frames` frames, from the raw scores of its clips.

    Clip i ends at frame i + clip_len - 1; `anomaly` is normalised over this video (Eq. 14).
    """
    anomaly = anomaly_from_regularity(raw["fused"])
    for frame in range(frames):
        if frame < clip_len - 1:  # no full clip ends here: reported as unscored, never filled in
            yield (video, frame, 0, "", *("" for _ in RAW_SCORES))
            continue
        i = frame - clip_len + 1
        yield (video, frame, 1, format_value(anomaly[i]), *(format_value(raw[c][i]) for c in RAW_SCORES))


def _parse_float(text: str, path: Path, line: int, column: str) -> float:
    if text == "":
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}, line {line}: {column} {text!r} is not a number; "
                        "re-run `vad score`") from None
    if not np.isfinite(value):
        raise DataError(f"{path}, line {line}: {column} is {text!r}; expected a finite number; "
                        "re-run `vad score`")
    return value


def read_scores(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read `scores.csv` into per-video column arrays, sorted by frame.

    Returns:
        {video: {"frame": int64, "scored": bool, "anomaly", "fused", "prediction_error", "cluster_distance",
        "fused_window", "prediction_window", "relative", "relative_window": float64 with NaN where the file
        holds an empty string}}, videos in file order.

    Raises:
        DataLayoutError: the file is missing.
        DataError: a header column is missing, a value is malformed, a frame repeats, or a scored row
            lacks a score.
    """
    path = Path(path)
    if not path.is_file():
        raise DataLayoutError(f"no scores file at {path}; run `vad score` first")
    rows: dict[str, list[tuple]] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for column in COLUMNS:
            if column not in header and column not in _OPTIONAL:
                raise DataError(f"{path}: column '{column}' missing from the header "
                                f"(found {','.join(header)}); expected {','.join(COLUMNS)}; "
                                "re-run `vad score`")
        for row in reader:
            line = reader.line_num
            try:
                frame = int(row["frame"])
            except (TypeError, ValueError):
                raise DataError(f"{path}, line {line}: frame {row['frame']!r} is not an integer; "
                                "re-run `vad score`") from None
            if row["scored"] not in ("0", "1"):
                raise DataError(f"{path}, line {line}: scored {row['scored']!r} must be 0 or 1; "
                                "re-run `vad score`")
            scored = row["scored"] == "1"
            values = [_parse_float(row.get(c) or "", path, line, c) for c in COLUMNS[3:]]
            if scored and any(np.isnan(values[COLUMNS.index(c) - 3]) for c in _REQUIRED_WHEN_SCORED
                              if c in header):
                raise DataError(f"{path}, line {line}: scored frame without "
                                f"{'/'.join(_REQUIRED_WHEN_SCORED)}; re-run `vad score`")
            rows.setdefault(row["video"], []).append((frame, scored, *values))
    return {video: _columns(path, video, video_rows) for video, video_rows in rows.items()}


def _columns(path: Path, video: str, rows: list[tuple]) -> dict[str, np.ndarray]:
    rows.sort(key=lambda row: row[0])
    frames = np.array([row[0] for row in rows], dtype=np.int64)
    repeated = frames[1:][frames[1:] == frames[:-1]]
    if repeated.size:
        raise DataError(f"{path}: video '{video}' lists frame {int(repeated[0])} twice; re-run `vad score`")
    columns = {"frame": frames, "scored": np.array([row[1] for row in rows], dtype=bool)}
    for i, name in enumerate(COLUMNS[3:]):
        columns[name] = np.array([row[2 + i] for row in rows], dtype=np.float64)
    cluster = columns["cluster_distance"][columns["scored"]]
    if np.isnan(cluster).any() and not np.isnan(cluster).all():
        raise DataError(f"{path}: video '{video}' has cluster_distance on some scored frames only; "
                        "re-run `vad score`")
    return columns

