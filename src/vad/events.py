"""Alarms from a stream of per-frame anomaly scores: events with a minimum duration and a merge gap.

Causal: `EventDetector.update` sees one frame at a time and returns the events that closed with it, so a
live source raises each alarm as soon as it is certain (the frame after its merge gap runs out).

    detector = EventDetector(threshold=0.0031, min_frames=5, merge_gap=10, fps=25.0)
    for frame, score in enumerate(scores):
        for event in detector.update(frame, score):
            print(event.to_json())
    for event in detector.close():
        ...
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vad.metrics import VideoScores

__all__ = ["Event", "EventDetector", "alarm_metrics"]


@dataclass(frozen=True)
class Event:
    """One alarm: frames `start_frame`..`end_frame` (inclusive) of `source`, times in seconds from its start."""

    source: str
    start_frame: int
    end_frame: int
    peak_frame: int
    peak_score: float
    threshold: float
    fps: float

    @property
    def start_s(self) -> float:
        """Time of the first frame."""
        return self.start_frame / self.fps

    @property
    def end_s(self) -> float:
        """Time at which the last frame ends."""
        return (self.end_frame + 1) / self.fps

    @property
    def peak_s(self) -> float:
        """Time of the highest-scoring frame."""
        return self.peak_frame / self.fps

    def to_dict(self) -> dict[str, float | int | str]:
        """The JSON-lines record: frames, times (s), peak, threshold."""
        return {**asdict(self), "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "peak_s": round(self.peak_s, 3), "frames": self.end_frame - self.start_frame + 1}

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(self.to_dict())


class EventDetector:
    """Frames scoring above `threshold` open an event; it closes once `merge_gap` frames in a row are below.

    An event spans its first to its last frame above the threshold; closed events shorter than `min_frames`
    are dropped (a single noisy frame is no alarm). Frames without a score (NaN: no full clip yet) count as
    below the threshold.
    """

    def __init__(self, threshold: float, *, min_frames: int = 1, merge_gap: int = 0, fps: float = 25.0,
                 source: str = "") -> None:
        if min_frames < 1 or merge_gap < 0 or fps <= 0:
            raise ValueError(f"min_frames >= 1, merge_gap >= 0 and fps > 0 required, got {min_frames}, "
                             f"{merge_gap}, {fps}")
        self.threshold, self.min_frames, self.merge_gap, self.fps = threshold, min_frames, merge_gap, fps
        self.source = source
        self._start: int | None = None
        self._last_above = -1
        self._peak = (-1, -math.inf)

    @property
    def open(self) -> bool:
        """True while an event is open (the alarm is on)."""
        return self._start is not None

    def update(self, frame: int, score: float) -> list[Event]:
        """Feed the score of `frame` (frames in increasing order); returns the events this frame closed."""
        closed: list[Event] = []
        above = not math.isnan(score) and score > self.threshold
        if self._start is not None and not above and frame - self._last_above > self.merge_gap:
            closed = self._close()
        if above:
            if self._start is None:
                self._start, self._peak = frame, (frame, score)
            self._last_above = frame
            if score > self._peak[1]:
                self._peak = (frame, score)
        return closed

    def close(self) -> list[Event]:
        """End of the stream: the open event, if any and long enough."""
        return self._close() if self._start is not None else []

    def _close(self) -> list[Event]:
        start, end = self._start, self._last_above
        self._start = None
        if start is None or end - start + 1 < self.min_frames:
            return []
        return [Event(self.source, start, end, self._peak[0], float(self._peak[1]), self.threshold, self.fps)]


def alarm_metrics(videos: Sequence[VideoScores], threshold: float, *, min_frames: int, merge_gap: int,
                  fps: float) -> dict[str, float]:
    """How the alarms of `vad detect` at `threshold` match the labels (causal events).

    The score is each video's `alarm`, else a = 1 / fused. Frame precision, recall and F1 of a > threshold over
    scored frames; event recall: the share of labelled intervals overlapped by an event; false alarms: events
    that overlap no abnormal frame, per minute of normal footage at `fps`.
    """
    from vad.plots import abnormal_intervals

    tp = fp = fn = intervals = detected = false = normal = 0
    for video in videos:
        scored = np.asarray(video.scored, bool)
        labels = np.asarray(video.labels, bool)
        score = 1.0 / np.asarray(video.fused, np.float64) if video.alarm is None else video.alarm
        raw = np.where(scored, np.asarray(score, np.float64), np.nan)
        alarm = scored & (raw > threshold)
        tp, fp = tp + int((alarm & labels).sum()), fp + int((alarm & ~labels).sum())
        fn += int((scored & ~alarm & labels).sum())
        normal += int((scored & ~labels).sum())
        detector = EventDetector(threshold, min_frames=min_frames, merge_gap=merge_gap, fps=fps)
        events = [event for frame, value in enumerate(raw) for event in detector.update(frame, float(value))]
        events += detector.close()
        for start, end in abnormal_intervals(labels & scored):
            intervals += 1
            detected += any(e.start_frame <= end and e.end_frame >= start for e in events)
        false += sum(not labels[e.start_frame : e.end_frame + 1].any() for e in events)
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    minutes = normal / fps / 60
    return {"alarm_threshold": threshold, "alarm_frame_precision": precision, "alarm_frame_recall": recall,
            "alarm_frame_f1": 2 * precision * recall / (precision + recall) if tp else 0.0,
            "alarm_event_recall": detected / intervals if intervals else float("nan"),
            "alarm_false_per_minute": false / minutes if minutes else float("nan"), "alarm_false_events": false}
