"""Stage `calibrate`: the alarm threshold, from normal footage held out of training (vad.calibration)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vad.calibration import alarm_score, calibrate
from vad.checkpoint import CHECKPOINT
from vad.config import Params
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.decode import iter_frames, prefetch
from vad.data.store import FrameStore
from vad.data.videos import footage
from vad.errors import ConfigError
from vad.models import load_trained
from vad.scoring import score_clips, score_frames
from vad.stages import StageResult
from vad.training import select_device

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(params: Params, frames_dir: Path, model_dir: Path, out_path: Path,
        normal: Sequence[str | Path] = ()) -> StageResult:
    """Score the held-out tail of each training video with the model in `model_dir`; write the calibration.

    `normal`: more normal footage the model never trained on (video files or folders of videos), scored
    whole, frames resized and converted as `vad detect` does; the threshold is chosen on all of it. A
    strict budget needs far more footage than a hold-out holds (`calibrate` extrapolates a tail otherwise).

    The share held out is the one the model was trained with (its checkpoint says), so the clips scored here
    are exactly those no gradient step saw. The threshold is chosen for `detect.false_alarms_per_hour` at
    `detect.fps`, on the alarm score of `detect.map` and `detect.pooling` (stored with it); `vad detect` adapts
    it to the footage's own frame rate.

    Raises:
        DataError: `normal` names a missing file or a folder without videos; CorruptMediaError: a video that
            cannot be decoded.
        ConfigError: the model was trained without a hold-out (`detect.holdout_share` 0, or an older model), or
            `detect.map` is relative and the model carries no normal error map.
    """
    store = FrameStore.open(frames_dir)
    device = select_device(params.device)
    trained = load_trained(model_dir / CHECKPOINT, device)
    trained.require_map(params.detect.map, model_dir)
    cluster_distance = trained.score_with(params.score.cluster_distance) if trained.model_params.kmeans else None
    share = trained.holdout_share
    if not share and not normal:
        raise ConfigError(f"the model in {model_dir} was trained on all of its footage (detect.holdout_share "
                          f"{share}): nothing is left to calibrate on; pass normal footage it never saw (--normal), "
                          f"or set detect.holdout_share (e.g. 0.1) and retrain")
    if share and share != params.detect.holdout_share:
        log.warning("detect.holdout_share is %g but the model was trained holding out %g: calibrating on the "
                    "model's", params.detect.holdout_share, share)
    clips = ClipSource.from_split(store, Split.TRAIN, trained.data_params.clip_len, device,
                                  holdout_share=share or 0.0, part="holdout")
    videos = footage([str(path) for path in normal])  # checked before any scoring
    raw = score_clips(trained.model, clips, params.score.batch_size, trained.model_params.kmeans, device)
    detect = params.detect
    parts = [alarm_score(raw, detect.map, detect.pooling)]  # high = abnormal
    geometry = trained.data_params
    for video in videos:
        frames = prefetch(iter_frames(video, geometry.image_size, geometry.channels), 2 * params.score.batch_size)
        _, raw = score_frames(trained.model, frames, geometry.clip_len, params.score.batch_size,
                              trained.model_params.kmeans, device)
        parts.append(alarm_score(raw, detect.map, detect.pooling))
    scores = np.concatenate(parts)
    if videos:
        log.info("%d held-out frames and %d frames of %d normal videos", len(parts[0]), len(scores) - len(parts[0]),
                 len(videos))
    result = calibrate(scores, detect.false_alarms_per_hour, detect.fps, cluster_distance, detect.map, detect.pooling)
    result.save(out_path)
    if result.method != "empirical":
        # The promise rests on the tail model alone; on unseen demo footage such thresholds held for one model and
        # were exceeded 7- and 24-fold for others (docs/detect.md).
        log.warning("%d normal frames (%.1f s at %g frames/s) cannot show %g false alarms per hour: the threshold "
                    "extrapolates a log-normal fitted to them; check it on normal footage the model never saw "
                    "(benchmarks/normal_false_alarms.py), or calibrate on more (vad calibrate --normal)",
                    result.frames, result.frames / detect.fps, detect.fps, detect.false_alarms_per_hour)
    log.info("calibrated on %d normal clips: threshold %.6g on the %s map's %s (%s, %g false alarms/hour "
             "at %g frames/s)", result.frames, result.threshold, result.map, result.pooling, result.method,
             result.false_alarms_per_hour, result.fps)
    return StageResult(outputs={"calibration": out_path},
                       metrics={"calibration_frames": float(result.frames), "threshold": result.threshold})
