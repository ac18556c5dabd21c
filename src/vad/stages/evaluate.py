"""Stage `evaluate`: frame-level AUC of `scores.csv` against the frame store's test labels.

Outputs:

    <metrics_path>            flat JSON of scalars (auc_micro, auc_macro, ..., and auc_video_<id> for each
                              test video holding both classes), for DVC metrics and MLflow
    <plots_dir>/
        roc.csv               micro ROC: fpr,tpr,threshold (first threshold finite, see metrics.roc_curve)
        roc.png
        per_video.csv         video,frames,frames_scored,frames_abnormal,auc (auc empty when undefined)
        scores/<video>.png    anomaly score over time, abnormal ground truth shaded
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from pathlib import Path

import numpy as np

from vad.atomic import atomic_dir, atomic_write_text
from vad.calibration import Calibration, alarm_score
from vad.config import DetectParams
from vad.data.base import Split
from vad.data.store import FrameStore, VideoEntry
from vad.errors import DataError
from vad.events import alarm_metrics
from vad.metrics import Evaluation, VideoScores, evaluate, roc_curve
from vad.scores_csv import read_scores
from vad.stages import StageResult

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(frames_dir: Path, scores_csv: Path, metrics_path: Path, plots_dir: Path, *,
        calibration: Calibration | None = None, detect: DetectParams | None = None) -> StageResult:
    """Evaluate the test scores in `scores_csv` against the labels of the frame store in `frames_dir`.

    Besides the paper's per-video-normalised AUCs: `auc_raw_pooled` (the raw score a = 1 / fused on one scale
    for every video, as a live threshold sees it), `auc_alarm_pooled` (the same for the alarm score, where the
    calibration's, else `detect.map` and `detect.pooling`, is another) and, with a `calibration`, the alarms at
    its threshold for `detect.false_alarms_per_hour` at `detect.fps` (`vad.metrics.alarm_metrics`).

    Every check runs before anything is written; `metrics_path` and `plots_dir` are replaced atomically.

    A store whose test videos carry no labels at all (or that has none: a camera's footage) is not an error: the
    metrics file says so (`labelled_test_videos: 0`, no AUC), the plots folder is empty, and `register` registers
    the model without AUCs (promoted only where no champion exists).

    Raises:
        DataError: some test videos carry labels and others not, or the scores do not cover the test videos
            frame by frame, or the scored frames hold a single class.
    """
    store = FrameStore.open(frames_dir)
    tests = store.split(Split.TEST)
    if all(video.labels is None for video in tests):
        log.warning("the test videos of %s carry no labels (%d videos): no AUC; the model is registered without "
                    "one, and calibrated on the hold-out as always", frames_dir, len(tests))
        metrics = {"labelled_test_videos": 0, "test_videos": len(tests)}
        with atomic_dir(plots_dir):
            pass
        atomic_write_text(Path(metrics_path), json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        return StageResult(outputs={"metrics": Path(metrics_path), "plots": Path(plots_dir)}, metrics=metrics)
    detect = detect or DetectParams()
    # alarms are measured on the score the threshold was calibrated on; without one, on the params'
    alarm = (calibration.map, calibration.pooling) if calibration else (detect.map, detect.pooling)
    videos = _video_scores(store, read_scores(scores_csv), Path(scores_csv), alarm)
    evaluation = evaluate(videos)
    if math.isnan(evaluation.metrics["auc_micro"]):
        raise DataError(
            f"the {evaluation.metrics['frames_scored']} scored test frames of {frames_dir} hold one class "
            f"only ({evaluation.metrics['frames_abnormal']} abnormal); frame AUC is undefined; "
            "the test labels need both normal and abnormal frames"
        )
    measured = dict(evaluation.metrics)
    if calibration is not None:
        measured |= alarm_metrics(videos, calibration.threshold_for(detect.false_alarms_per_hour, detect.fps),
                                  min_frames=detect.min_event_frames, merge_gap=detect.merge_gap_frames,
                                  fps=detect.fps)
    metrics = _finite_scalars(measured)
    # Per video too, so that a regression on one video shows (a video of one class has no AUC).
    metrics.update({f"auc_video_{_metric_safe(video_id)}": round(auc, 6)
                    for video_id, auc in evaluation.per_video_auc.items() if not math.isnan(auc)})
    metrics = dict(sorted(metrics.items()))
    fpr, tpr, thresholds = roc_curve(evaluation.labels, evaluation.scores)

    from vad import plots  # matplotlib loads here only

    with atomic_dir(plots_dir) as tmp:
        roc_rows = zip(fpr, tpr, thresholds, strict=True)
        (tmp / "roc.csv").write_text(_csv(("fpr", "tpr", "threshold"), roc_rows))
        (tmp / "per_video.csv").write_text(_per_video_csv(videos, evaluation))
        plots.plot_roc(fpr, tpr, metrics["auc_micro"], tmp / "roc.png")
        (tmp / "scores").mkdir()
        for video in videos:
            anomaly = np.where(video.scored, video.anomaly, np.nan)
            plots.plot_video_scores(video.video_id, np.arange(video.labels.size), anomaly, video.labels,
                                    tmp / "scores" / f"{video.video_id}.png")
    atomic_write_text(Path(metrics_path), json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    log.info("frame AUC micro %.4f, macro %s over %d test videos (%d scored frames, %d abnormal)",
             metrics["auc_micro"], f"{metrics['auc_macro']:.4f}" if "auc_macro" in metrics else "undefined",
             metrics["videos"], metrics["frames_scored"], metrics["frames_abnormal"])
    return StageResult(outputs={"metrics": Path(metrics_path), "plots": Path(plots_dir)}, metrics=metrics)


def _video_scores(store: FrameStore, scores: dict[str, dict[str, np.ndarray]], scores_csv: Path,
                  alarm: tuple[str, str] = ("fused", "mean")) -> list[VideoScores]:
    tests = store.split(Split.TEST)
    unlabelled = [video.id for video in tests if video.labels is None]
    if unlabelled:
        raise DataError(f"test videos {', '.join(unlabelled)} of {store.root} carry no labels while "
                        "others do; re-run `vad extract`")
    stale = sorted(set(scores) - {video.id for video in tests})
    if stale:
        raise DataError(f"{scores_csv} scores videos that are not test videos of {store.root} "
                        f"({', '.join(stale)}); re-run `vad score` on this frame store")
    return [_one_video(store, video, scores.get(video.id), scores_csv, alarm) for video in tests]


def _one_video(store: FrameStore, video: VideoEntry, columns: dict[str, np.ndarray] | None,
               scores_csv: Path, alarm: tuple[str, str]) -> VideoScores:
    if columns is None:
        raise DataError(f"{scores_csv} has no rows for test video '{video.id}'; re-run `vad score`")
    if not np.array_equal(columns["frame"], np.arange(video.frames)):
        raise DataError(f"{scores_csv} has {columns['frame'].size} rows for test video '{video.id}', "
                        f"expected one per frame 0..{video.frames - 1}; re-run `vad score`")
    labels = np.asarray(store.labels(video)).reshape(-1)
    if labels.size != video.frames:
        raise DataError(f"labels of test video '{video.id}' in {store.root} hold {labels.size} frames, "
                        f"the video {video.frames}; re-run `vad extract`")
    cluster = columns["cluster_distance"]
    score = None if alarm == ("fused", "mean") else alarm_score(columns, *alarm)
    if score is not None and np.isnan(score[columns["scored"]]).any():
        raise DataError(f"{scores_csv} has no {alarm[0]}-map {alarm[1]} scores for test video '{video.id}' (written "
                        "before them, or by a model without the normal error map the relative map needs); re-run "
                        "`vad score` with the model `vad calibrate` used")
    return VideoScores(
        video_id=video.id, labels=labels.astype(np.uint8), scored=columns["scored"],
        anomaly=columns["anomaly"], prediction_error=columns["prediction_error"],
        cluster_distance=None if np.isnan(cluster[columns["scored"]]).all() else cluster, fused=columns["fused"],
        alarm=score,
    )


def _finite_scalars(metrics: dict[str, float]) -> dict[str, float]:
    # JSON has no NaN, and DVC / MLflow would choke on one: an undefined AUC is dropped, with a warning.
    out = {}
    for name, value in sorted(metrics.items()):
        if isinstance(value, float) and math.isnan(value):
            log.warning("%s is undefined (no video has both classes among its scored frames); left out",
                        name)
            continue
        out[name] = round(value, 6) if isinstance(value, float) else value
    return out


def _metric_safe(name: str) -> str:
    # MLflow metric names take letters, digits, _ - . / and spaces; a video id is a file name.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _csv(header: tuple[str, ...], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])
    return buffer.getvalue()


def _per_video_csv(videos: list[VideoScores], evaluation: Evaluation) -> str:
    rows = []
    for video in videos:
        auc = evaluation.per_video_auc[video.video_id]
        rows.append((video.video_id, video.labels.size, int(video.scored.sum()),
                     int(video.labels[video.scored].sum()), "" if math.isnan(auc) else round(auc, 6)))
    return _csv(("video", "frames", "frames_scored", "frames_abnormal", "auc"), rows)
