"""Whether a calibrated threshold keeps its promise: false alarms on normal footage the model never saw.

    python benchmarks/unseen_synthetic.py --params params.yaml --videos 474 --out runs/hour   # 1 h at 10 frames/s
    vad detect runs/hour/videos/train --model models/train --out runs/hour/detections
    python benchmarks/normal_false_alarms.py --detections runs/hour/detections --calibration models/calibration.json

Every frame of the footage is taken as normal, so every event is a false alarm. For each budget (false alarms
per hour), the calibration's threshold for it, and per hour of scored footage: the events `vad detect` raises
at that threshold (the params' `detect.min_event_frames` and `merge_gap_frames`) and the frames above it. The
calibration promises at most the budget in frames above (so in events too); the record says what happened.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import emit  # noqa: E402

from vad.calibration import Calibration  # noqa: E402
from vad.config import load_params  # noqa: E402
from vad.events import EventDetector  # noqa: E402
from vad.scores_csv import read_scores  # noqa: E402

BUDGETS = (1.0, 60.0, 600.0, 3600.0)


def read_alarm_scores(scores_csv: Path, calibration: Calibration) -> dict[str, np.ndarray]:
    """Each video's alarm score (the calibration's) from a `vad detect` scores.csv, NaN where no clip was complete."""
    return {video: np.where(columns["scored"], calibration.score(columns), np.nan)
            for video, columns in read_scores(scores_csv).items()}


def count_events(videos: dict[str, np.ndarray], threshold: float, *, min_frames: int, merge_gap: int,
                 fps: float) -> int:
    """The events `vad detect` raises over `videos` at `threshold` (each video a stream of its own)."""
    events = 0
    for video, values in videos.items():
        detector = EventDetector(threshold, min_frames=min_frames, merge_gap=merge_gap, fps=fps, source=video)
        events += sum(len(detector.update(frame, float(score))) for frame, score in enumerate(values))
        events += len(detector.close())
    return events


def measure(videos: dict[str, np.ndarray], calibration: Calibration, *, min_frames: int, merge_gap: int,
            fps: float) -> dict:
    scores = np.concatenate(list(videos.values()))
    scores = scores[~np.isnan(scores)]
    hours = len(scores) / fps / 3600
    record = {"benchmark": "normal_false_alarms", "videos": len(videos), "scored_frames": len(scores),
              "hours": round(hours, 4), "fps": fps, "alarm_score": f"{calibration.map} {calibration.pooling}",
              "calibration_frames": calibration.frames, "calibration_max": calibration.max_score,
              "footage_max": float(scores.max())}
    for budget in BUDGETS:
        threshold = calibration.threshold_for(budget, fps)
        events = count_events(videos, threshold, min_frames=min_frames, merge_gap=merge_gap, fps=fps)
        key = f"{budget:g}_per_h"
        record[f"threshold_{key}"] = threshold
        record[f"false_events_{key}"] = events
        record[f"false_events_per_h_{key}"] = round(events / hours, 2)
        record[f"frames_above_per_h_{key}"] = round(float((scores > threshold).sum()) / hours, 2)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detections", type=Path, required=True, help="the --out folder of `vad detect` on "
                                                                       "normal footage")
    parser.add_argument("--calibration", type=Path, required=True, help="the calibration JSON `vad detect` used")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="for detect.min_event_frames, merge_gap_frames and fps (default: params.yaml)")
    args = parser.parse_args()
    detect = load_params(args.params).detect
    calibration = Calibration.load(args.calibration)
    emit(measure(read_alarm_scores(args.detections / "scores.csv", calibration), calibration,
                 min_frames=detect.min_event_frames, merge_gap=detect.merge_gap_frames, fps=detect.fps))


if __name__ == "__main__":
    main()
