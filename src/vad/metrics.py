"""Frame-level AUC of the anomaly scores (paper Sec. 4.3) and the reader of `scores.csv`.

`scores.csv` (written by `vad score`, see DESIGN.md "Data formats") has one row per test frame:

    video,frame,scored,anomaly,fused,prediction_error,cluster_distance
    01,0,0,,,,
    01,4,1,0.25,12.5,0.004,0.02

Unscored frames (the first T-1 of a video) carry empty strings and never enter an AUC.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as _sk_roc_curve

__all__ = [
    "VideoScores", "Evaluation", "anomaly_from_regularity", "frame_auc", "roc_curve", "evaluate",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoScores:
    """Labels and scores of one test video, indexed by frame.

    Attributes:
        video_id: The video's id in the frame store.
        labels: (frames,) 0/1 ground truth, 1 = abnormal.
        scored: (frames,) bool, True where a full clip ends at that frame.
        anomaly: (frames,) anomaly score in [0, 1] (1 = most abnormal); ignored where not scored.
        prediction_error: (frames,) mean_p e(p), or None when not available.
        cluster_distance: (frames,) mean_p D_u(p), or None when the K-means head is off.
        fused: (frames,) raw regularity s = 1 / mean_p(e * D_u), or None when not available.
        alarm: (frames,) the alarm score alarms are raised on (`vad.calibration.alarm_score`, high =
            abnormal), or None: the paper's a = 1 / fused.
    """

    video_id: str
    labels: np.ndarray
    scored: np.ndarray
    anomaly: np.ndarray
    prediction_error: np.ndarray | None = None
    cluster_distance: np.ndarray | None = None
    fused: np.ndarray | None = None  # raw regularity s (high = normal), no per-video rescaling
    alarm: np.ndarray | None = None


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` found.

    Attributes:
        metrics: Flat scalars: auc_micro, auc_macro, auc_prediction, auc_cluster (only with a cluster
            score), frames_scored, frames_abnormal (among scored frames), videos, videos_macro.
            Undefined AUCs are NaN.
        per_video_auc: AUC of each video's scored frames; NaN where they hold a single class.
        labels: Scored frames' labels of all videos, concatenated (the micro ROC's input).
        scores: Their anomaly scores, in the same order.
    """

    metrics: dict[str, float]
    per_video_auc: dict[str, float] = field(default_factory=dict)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


def anomaly_from_regularity(s: np.ndarray) -> np.ndarray:
    """Per-video anomaly score 1 - S, with S = (s - min) / (max - min) the min-max normalised regularity.

    Args:
        s: Regularity scores of one video's scored frames (high = normal). NaNs stay NaN.

    Returns:
        Anomaly scores in [0, 1], 1 = most abnormal. A constant video gives all zeros.
    """
    s = np.asarray(s, dtype=np.float64)
    if s.size == 0 or np.all(np.isnan(s)):
        return np.zeros_like(s) if s.size == 0 else s.copy()
    low, high = np.nanmin(s), np.nanmax(s)
    if not high > low:
        return np.where(np.isnan(s), np.nan, 0.0)
    return 1.0 - (s - low) / (high - low)


def frame_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of `scores` against 0/1 `labels`; NaN when only one class is present."""
    labels = np.asarray(labels)
    if np.unique(labels).size < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve (fpr, tpr, thresholds) with a finite first threshold, so it can be written to CSV/JSON.

    scikit-learn (>= 1.3) puts `inf` first, the threshold above every score where nothing is flagged.
    It is replaced by max(scores) + 1, the convention scikit-learn used before 1.3: still above every
    score (clipping to 1.0 would not be, as a normalised video always reaches 1.0), and finite.
    """
    fpr, tpr, thresholds = _sk_roc_curve(np.asarray(labels), np.asarray(scores, dtype=np.float64))
    thresholds = thresholds.astype(np.float64)
    if thresholds.size and not np.isfinite(thresholds[0]):
        thresholds[0] = float(np.max(scores)) + 1.0
    return fpr, tpr, thresholds


def _component_anomaly(component: np.ndarray) -> np.ndarray:
    # Paper Fig. 8: regularity s' = 1 / component, then the same per-video normalisation as the fused
    # score. A zero component (a perfect prediction) would divide by zero: clip to the smallest float.
    regularity = 1.0 / np.maximum(np.asarray(component, dtype=np.float64), np.finfo(np.float64).tiny)
    return anomaly_from_regularity(regularity)


def evaluate(videos: Sequence[VideoScores]) -> Evaluation:
    """Frame-level AUCs over the scored frames of `videos` (paper Sec. 4.3 and Fig. 8).

    Micro AUC pools all videos' scored frames into one ROC (the figure papers report); macro AUC is the
    mean of per-video AUCs over videos whose scored frames hold both classes. The component AUCs score
    frames by prediction error or cluster distance alone, normalised per video like the fused score.
    """
    labels, scores, prediction, cluster = [], [], [], []
    per_video: dict[str, float] = {}
    with_cluster = [video.cluster_distance is not None for video in videos]
    if any(with_cluster) and not all(with_cluster):
        raise ValueError("cluster_distance must be given for every video or for none")
    for video in videos:
        mask = np.asarray(video.scored, dtype=bool)
        if not (video.labels.shape == mask.shape == video.anomaly.shape):
            raise ValueError(f"video {video.video_id}: labels, scored and anomaly differ in shape")
        y = np.asarray(video.labels)[mask].astype(np.uint8)
        a = np.asarray(video.anomaly, dtype=np.float64)[mask]
        labels.append(y)
        scores.append(a)
        per_video[video.video_id] = frame_auc(y, a)
        if video.prediction_error is not None:
            prediction.append(_component_anomaly(video.prediction_error[mask]))
        if video.cluster_distance is not None:
            cluster.append(_component_anomaly(video.cluster_distance[mask]))
    all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.uint8)
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    defined = [auc for auc in per_video.values() if not np.isnan(auc)]
    metrics: dict[str, float] = {
        "auc_micro": frame_auc(all_labels, all_scores),
        "auc_macro": float(np.mean(defined)) if defined else float("nan"),
    }
    if videos and len(prediction) == len(videos):
        metrics["auc_prediction"] = frame_auc(all_labels, np.concatenate(prediction))
    if videos and len(cluster) == len(videos):
        metrics["auc_cluster"] = frame_auc(all_labels, np.concatenate(cluster))
    if videos and all(video.fused is not None for video in videos):
        # The honest figure for live use: one scale for all videos, as a threshold sees them (no Eq. 14).
        raw = np.concatenate([1.0 / np.asarray(v.fused, np.float64)[np.asarray(v.scored, bool)] for v in videos])
        metrics["auc_raw_pooled"] = frame_auc(all_labels, raw)
    if videos and all(video.alarm is not None for video in videos):
        # the same for the score alarms are raised on, where it is not a = 1 / fused (detect.map, detect.pooling)
        alarm = np.concatenate([np.asarray(v.alarm, np.float64)[np.asarray(v.scored, bool)] for v in videos])
        metrics["auc_alarm_pooled"] = frame_auc(all_labels, alarm)
    metrics.update(frames_scored=int(all_labels.size), frames_abnormal=int(all_labels.sum()),
                   videos=len(videos), videos_macro=len(defined))
    return Evaluation(metrics=metrics, per_video_auc=per_video, labels=all_labels, scores=all_scores)
