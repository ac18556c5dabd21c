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
