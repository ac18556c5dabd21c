"""The alarm threshold: chosen on normal footage the model did not train on, for a false-alarm budget.

The score is a raw anomaly score of a frame (high = abnormal, no per-video rescaling, so it can run live),
`alarm_score`: a map, the paper's e(p) * D_u(p), the prediction error e(p) alone, or e(p) relative to the
network's mean error at p on normal footage (`detect.map`; `vad.scoring.normal_error_map`), pooled
over the frame by its mean (the paper's, a = 1 / fused) or by its worst window of 2x2 latent cells
(`detect.pooling`). On held-out normal frames it gives an empirical distribution;
the threshold for `false_alarms_per_hour` at `fps` is the score exceeded by a share
p = false_alarms_per_hour / (3600 * fps) of normal frames. An alarm needs at least one exceeding frame, so
this bounds the false alarms per hour from above (fewer still with a minimum event duration).

Where the held-out frames are enough to see that share (n * p >= MIN_TAIL_FRAMES), the threshold is their
empirical quantile; where they are not (a strict budget, little footage), it is the quantile of a log-normal
fitted to them, and never below the largest held-out score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from vad.atomic import atomic_write_text
from vad.errors import DataError, DataLayoutError

__all__ = ["Calibration", "calibrate", "alarm_score", "CALIBRATION", "MIN_TAIL_FRAMES", "ALARM_MAPS", "POOLINGS"]

CALIBRATION = "calibration.json"
MIN_TAIL_FRAMES = 10  # exceeding frames the empirical quantile needs to stand on
STANDARD_BUDGETS = (1.0, 10.0, 60.0, 600.0, 3600.0)  # false alarms per hour whose quantiles a calibration stores
ALARM_MAPS = ("fused", "prediction", "relative")
POOLINGS = ("mean", "window")
# the vad.scoring column each alarm score is read from; the fused mean is stored as its reciprocal, s
_COLUMN = {("fused", "mean"): "fused", ("prediction", "mean"): "prediction_error",
           ("fused", "window"): "fused_window", ("prediction", "window"): "prediction_window",
           ("relative", "mean"): "relative", ("relative", "window"): "relative_window"}


def alarm_score(raw: Mapping[str, Any], map: str = "fused", pooling: str = "mean") -> Any:
    """The alarm score (high = abnormal) of raw scores from `vad.scoring` (floats or arrays, NaN kept).

    `map` "fused" is the paper's e * D_u, "prediction" the prediction error e, "relative" e / m with m the
    network's mean error map on normal footage (`TwoStreamAE.set_normal_error`); `pooling` "mean" its mean over
    the frame (for the fused map, a = 1 / fused), "window" its largest mean over a 2x2-cell window.
    """
    column = _column(map, pooling)
    return 1.0 / raw[column] if column == "fused" else raw[column]


def _column(map: str, pooling: str) -> str:
    if (map, pooling) not in _COLUMN:
        raise ValueError(f"alarm map {map!r} / pooling {pooling!r}: expected one of {ALARM_MAPS} / {POOLINGS}")
    return _COLUMN[map, pooling]


@dataclass(frozen=True)
class Calibration:
    """The distribution of the raw anomaly score on held-out normal frames, and the threshold it implies."""

    frames: int
    log_mean: float
    log_std: float
    max_score: float
    quantiles: dict[str, float]
    false_alarms_per_hour: float
    fps: float
    threshold: float
    method: str  # "empirical" or "log-normal tail"
    # The cluster map the scores were computed with (score.cluster_distance resolved); every command that
    # applies this threshold scores with it. None: a file from before the switch (the model's own).
    cluster_distance: str | None = None
    # The alarm score the distribution is of (`alarm_score`); files from before the switch: the paper's.
    map: str = "fused"
    pooling: str = "mean"

    def __post_init__(self) -> None:
        _column(self.map, self.pooling)  # a file naming an unknown score fails on load, not at the first frame

    def score(self, raw: Mapping[str, Any]) -> Any:
        """The alarm score this calibration's threshold applies to, from raw scores of `vad.scoring`."""
        return alarm_score(raw, self.map, self.pooling)

    def threshold_for(self, false_alarms_per_hour: float, fps: float) -> float:
        """The threshold for another budget or frame rate.

        From the stored empirical quantile where there is one for that share, else from the log-normal fit.
        """
        share = _share(false_alarms_per_hour, fps)
        level = f"{1 - share:.6g}"
        if level in self.quantiles and self.frames * share >= MIN_TAIL_FRAMES:
            return self.quantiles[level]
        return max(self.max_score, _lognormal_quantile(self.log_mean, self.log_std, share))

    def save(self, path: Path) -> None:
        """Write the calibration as JSON (atomically)."""
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read a calibration file written by `save`.

        Raises:
            DataLayoutError: missing or unreadable.
        """
        if not path.is_file():
            raise DataLayoutError(f"no calibration at {path}; run `vad calibrate` for the model, or pass "
                                  f"--threshold")
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as error:
            raise DataLayoutError(f"{path} is not a calibration file ({error}); re-run `vad calibrate`") from None


def calibrate(scores: np.ndarray, false_alarms_per_hour: float, fps: float,
              cluster_distance: str | None = None, map: str = "fused", pooling: str = "mean") -> Calibration:
    """The calibration of alarm scores (`alarm_score` of `map`, `pooling`) of held-out normal frames (NaN: ignored).

    Raises:
        DataError: fewer than 2 scored frames, or scores that are not positive.
    """
    values = np.asarray(scores, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        raise DataError(f"{len(values)} held-out frames to calibrate on; raise data.holdout_share or add "
                        f"training footage")
    if (values <= 0).any():
        raise DataError(f"alarm scores ({map} map, {pooling}) must be positive; the model is broken")
    share = _share(false_alarms_per_hour, fps)
    logs = np.log(values)
    log_mean, log_std = float(logs.mean()), float(logs.std(ddof=1))
    # the quantiles of the standard budgets too, so that `threshold_for` one of them stays empirical where the
    # footage shows it (it falls back to the tail model, never below the maximum, otherwise)
    standard = {1 - _share(budget, fps) for budget in STANDARD_BUDGETS}
    levels = sorted({0.5, 0.9, 0.99, 0.999, 1 - share} | {level for level in standard if level > 0})
    quantiles = {f"{level:.6g}": float(np.quantile(values, level)) for level in levels}
    if len(values) * share >= MIN_TAIL_FRAMES:
        threshold, method = quantiles[f"{1 - share:.6g}"], "empirical"
    else:
        threshold = max(float(values.max()), _lognormal_quantile(log_mean, log_std, share))
        method = "log-normal tail"
    return Calibration(frames=len(values), log_mean=log_mean, log_std=log_std, max_score=float(values.max()),
                       quantiles=quantiles, false_alarms_per_hour=false_alarms_per_hour, fps=fps,
                       threshold=threshold, method=method, cluster_distance=cluster_distance, map=map,
                       pooling=pooling)


def _share(false_alarms_per_hour: float, fps: float) -> float:
    if false_alarms_per_hour <= 0 or fps <= 0:
        raise DataError(f"false_alarms_per_hour and fps must be positive, got {false_alarms_per_hour} and {fps}")
    return min(1.0, false_alarms_per_hour / (3600.0 * fps))


def _lognormal_quantile(log_mean: float, log_std: float, share: float) -> float:
    z = NormalDist().inv_cdf(1 - share) if share < 1 else -math.inf
    return float(math.exp(log_mean + log_std * z))
