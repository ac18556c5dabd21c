"""Stage `detect`: alarms on footage, with the calibrated threshold (vad.calibration, vad.events).

    <out_dir>/
        scores.csv     the scores.csv columns, plus `anomaly_score` (raw a = 1 / fused, high = abnormal, no
                       per-video rescaling) and `is_anomaly` (a above the threshold)
        events.jsonl   one event per line: start_frame, end_frame, times (s), peak frame, time and score

Scoring is causal: the score of frame t comes from the clip that ends at t (frames t-T+1..t), never from a
later frame, and the threshold is fixed before the footage is seen. Files are scored in batches; each
event is also passed to `on_event` (the CLI prints it as a JSON line) as soon as it closes.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vad.atomic import atomic_write_text
from vad.calibration import CALIBRATION, Calibration
from vad.config import Params
from vad.data.decode import iter_frames, prefetch
from vad.data.videos import VIDEO_SUFFIXES
from vad.errors import DataError
from vad.events import Event, EventDetector
from vad.metrics import anomaly_from_regularity
from vad.scoring import SCORE_COLUMNS
from vad.stages import StageResult
from vad.stages.score import HEADER, load_model, score_frames

__all__ = ["run", "footage", "DETECT_HEADER"]

log = logging.getLogger(__name__)

DETECT_HEADER = (*HEADER, "anomaly_score", "is_anomaly")


def footage(sources: list[str]) -> list[Path]:
    """The video files named by `sources`: files as given, folders as their videos (sorted by name).

    Raises:
        DataError: a source that does not exist, or a folder without videos.
    """
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not videos:
                raise DataError(f"folder {path} holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
            found.extend(videos)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"footage {source} not found; pass video files or folders of videos")
    stems = [path.stem for path in found]
    if len(set(stems)) != len(stems):
        raise DataError("two videos share a file name; scores.csv and events.jsonl key rows by file name, so "
                        "rename them or detect in separate runs")
    return found


def _fps(path: Path, default: float) -> float:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else default


def run(params: Params, sources: list[str], model_dir: Path, out_dir: Path, *, threshold: float | None = None,
        calibration_path: Path | None = None, on_event: Callable[[Event], None] | None = None) -> StageResult:
    """Score each video of `sources` with the model in `model_dir`, raise events, write `out_dir`.

    The threshold is `threshold` if given, else the model's calibration (`calibration_path`, by default
    `model_dir/calibration.json`) for `detect.false_alarms_per_hour` at each video's frame rate.

    Raises:
        DataError: missing footage, a video shorter than a clip; DataLayoutError: no calibration.
        CorruptMediaError: a video cannot be decoded.
    """
    videos = footage(sources)
    calibration = None if threshold is not None else Calibration.load(calibration_path or model_dir / CALIBRATION)
    trained, runtime = load_model(params, model_dir)
    geometry, clip_len = trained.data_params, trained.data_params.clip_len
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(DETECT_HEADER)
    events: list[Event] = []
    frames_seen = alarms = 0
    for video in videos:
        fps = _fps(video, params.detect.fps)
        limit = threshold if threshold is not None else calibration.threshold_for(
            params.detect.false_alarms_per_hour, fps)
        # footage of another size or colour mode is resized and converted to what the model saw
        frames = prefetch(iter_frames(video, geometry.image_size, geometry.channels), 2 * params.score.batch_size)
        count, raw = score_frames(trained.model, frames, clip_len, params.score.batch_size,
                                  trained.model_params.kmeans, runtime.device, runtime.amp_dtype)
        if count < clip_len:
            raise DataError(f"video {video} has {count} frames, fewer than the clip length {clip_len}")
        detector = EventDetector(limit, min_frames=params.detect.min_event_frames,
                                 merge_gap=params.detect.merge_gap_frames, fps=fps, source=video.stem)
        anomaly = 1.0 / raw["fused"]
        relative = anomaly_from_regularity(raw["fused"])
        for frame in range(count):
            i = frame - clip_len + 1
            score = float(anomaly[i]) if i >= 0 else math.nan
            for event in detector.update(frame, score):
                events.append(event)
                if on_event:
                    on_event(event)
            if i < 0:
                writer.writerow((video.stem, frame, 0, "", "", "", "", "", 0))
                continue
            alarm = int(score > limit)
            alarms += alarm
            writer.writerow((video.stem, frame, 1, _format(relative[i]), *(_format(raw[c][i]) for c in SCORE_COLUMNS),
                             _format(score), alarm))
        for event in detector.close():
            events.append(event)
            if on_event:
                on_event(event)
        frames_seen += count
        log.info("%s: %d frames at %.3g frames/s, threshold %.6g: %d event(s)", video.name, count, fps, limit,
                 sum(event.source == video.stem for event in events))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "scores.csv", table.getvalue())
    atomic_write_text(out_dir / "events.jsonl", "".join(event.to_json() + "\n" for event in events))
    return StageResult(outputs={"scores": out_dir / "scores.csv", "events": out_dir / "events.jsonl"},
                       metrics={"frames": float(frames_seen), "events": float(len(events)),
                                "frames_above_threshold": float(alarms)})


def _format(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.8g}"
