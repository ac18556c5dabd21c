"""How `vad detect`'s alarms match the labels of a frame store's test videos: event recall and false alarms.

    vad detect data/raw/test --model models:/vad-synthetic@champion --out detections
    python benchmarks/detect_eval.py --frames data/frames --detections detections [--fps 10]

Records (docs/benchmarks.jsonl, as every benchmark) the labelled intervals overlapped by an event (event
recall), the events overlapping no labelled interval (false alarms) and their rate per hour of normal
footage, and the frame precision and recall of `is_anomaly`. Videos are matched by file name (the frame
store's `source`).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import emit  # noqa: E402

from vad.data.base import Split  # noqa: E402
from vad.data.store import FrameStore  # noqa: E402
from vad.plots import abnormal_intervals  # noqa: E402


def evaluate(frames: Path, detections: Path, fps: float) -> dict:
    store = FrameStore.open(frames)
    labels = {Path(v.source).stem: store.labels(v) for v in store.split(Split.TEST) if v.labels is not None}
    events = [json.loads(line) for line in (detections / "events.jsonl").read_text().splitlines() if line]
    flags: dict[str, list[int]] = {}
    with open(detections / "scores.csv") as handle:
        for row in csv.DictReader(handle):
            flags.setdefault(row["video"], []).append(int(row["is_anomaly"]))
    intervals = hit = false = tp = fp = fn = 0
    normal_frames = 0
    for video, truth in labels.items():
        if video not in flags:
            continue
        mine = [e for e in events if e["source"] == video]
        for start, end in abnormal_intervals(truth):
            intervals += 1
            hit += any(e["start_frame"] <= end and e["end_frame"] >= start for e in mine)
        false += sum(not truth[e["start_frame"] : e["end_frame"] + 1].any() for e in mine)
        predicted = np.asarray(flags[video][: len(truth)], dtype=bool)
        actual = np.asarray(truth[: len(predicted)], dtype=bool)
        tp, fp, fn = tp + int((predicted & actual).sum()), fp + int((predicted & ~actual).sum()), \
            fn + int((~predicted & actual).sum())
        normal_frames += int((~actual).sum())
    hours = normal_frames / fps / 3600
    return {"benchmark": "detect_eval", "videos": len([v for v in labels if v in flags]), "intervals": intervals,
            "intervals_detected": hit, "event_recall": hit / intervals if intervals else float("nan"),
            "events": len(events), "false_alarms": false, "normal_frames": normal_frames, "fps": fps,
            "false_alarms_per_hour": false / hours if hours else float("nan"),
            "frame_precision": tp / (tp + fp) if tp + fp else float("nan"),
            "frame_recall": tp / (tp + fn) if tp + fn else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", required=True, help="frame store with labelled test videos")
    parser.add_argument("--detections", required=True, help="the --out folder of `vad detect`")
    parser.add_argument("--fps", type=float, default=None, help="frame rate of the footage (default: the events')")
    args = parser.parse_args()
    events = (Path(args.detections) / "events.jsonl").read_text().splitlines()
    fps = args.fps or (json.loads(events[0])["fps"] if events else 25.0)
    emit(evaluate(Path(args.frames), Path(args.detections), fps))


if __name__ == "__main__":
    main()
