"""Events from per-frame scores: opening, merge gap, minimum duration, causality."""

import math

import pytest

from vad.events import EventDetector


def _run(scores, **options):
    detector = EventDetector(1.0, source="cam", **options)
    closed_at = []
    for frame, score in enumerate(scores):
        closed_at += [(frame, event) for event in detector.update(frame, score)]
    return closed_at, detector.close()


def test_an_event_spans_its_frames_above_the_threshold_and_reports_its_peak():
    closed, last = _run([0, 0, 2, 3, 2.5, 0, 0, 0], fps=10.0)
    [(at, event)] = closed
    assert last == [] and at == 5  # closed by the first frame below, with no merge gap
    assert (event.start_frame, event.end_frame, event.peak_frame, event.peak_score) == (2, 4, 3, 3.0)
    assert event.to_dict()["start_s"] == 0.2 and event.to_dict()["end_s"] == 0.5 and event.to_dict()["frames"] == 3


def test_a_gap_shorter_than_merge_gap_joins_two_bursts_and_a_longer_one_splits_them():
    scores = [2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 2, 2]
    closed, last = _run(scores, merge_gap=2)
    assert [(e.start_frame, e.end_frame) for _, e in closed] == [(0, 5)]
    assert closed[0][0] == 8  # certain only once the gap ran out: causal
    assert [(e.start_frame, e.end_frame) for e in last] == [(10, 11)]


def test_events_shorter_than_min_frames_are_dropped():
    closed, last = _run([2, 0, 0, 2, 2, 2, 0, 2], min_frames=3)
    assert [(e.start_frame, e.end_frame) for _, e in closed] == [(3, 5)] and last == []


def test_unscored_frames_count_as_below_and_the_threshold_is_strict():
    closed, last = _run([math.nan, 1.0, 2.0, math.nan, 1.0])
    assert [(e.start_frame, e.end_frame) for _, e in closed] == [(2, 2)] and last == []


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        EventDetector(1.0, min_frames=0)


def test_alarm_metrics_on_a_known_video():
    import numpy as np

    from vad.events import alarm_metrics
    from vad.metrics import VideoScores

    raw = np.array([0, 0, 1, 1, 1, 5, 5, 5, 1, 5], float)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 0, 0], np.uint8)
    scored = np.arange(10) >= 2
    video = VideoScores("v", labels, scored, anomaly=np.zeros(10), fused=np.where(scored, 1 / np.maximum(raw, 1e-9), 1))
    got = alarm_metrics([video], 2.0, min_frames=1, merge_gap=0, fps=1.0)
    # alarms at frames 5, 6, 7 (abnormal) and 9 (normal): one event per burst, the second a false alarm
    assert got["alarm_frame_precision"] == 0.75 and got["alarm_frame_recall"] == 1.0
    assert got["alarm_frame_f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert got["alarm_event_recall"] == 1.0 and got["alarm_false_events"] == 1
    assert got["alarm_false_per_minute"] == pytest.approx(1 / (5 / 60))  # 5 normal scored frames at 1 frame/s
