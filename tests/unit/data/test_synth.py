import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from vad.config import SynthParams
from vad.data import synth
from vad.data.synth import ANOMALY_KINDS, anomaly_kind, generate
from vad.data.videos import index_videos
from vad.stages import synth as synth_stage

PARAMS = SynthParams(seed=3, train_videos=2, test_videos=3, frames=40, height=64, width=96, fps=10)


def _decode(path: Path) -> np.ndarray:
    """Grayscale frames (T, H, W) as int16, plus a check that the BGR channels carry the same content."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (PARAMS.height, PARAMS.width, 3)
        assert np.abs(frame.astype(np.int16) - frame[:, :, :1]).max() <= 3  # grayscale content
        frames.append(frame[:, :, 0])
    capture.release()
    return np.stack(frames).astype(np.int16)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    intervals = generate(PARAMS, root)
    return root, intervals


def _labels(intervals, name: str) -> np.ndarray:
    labels = np.zeros(PARAMS.frames, bool)
    for start, end in intervals[name]:
        labels[start:end + 1] = True
    return labels


def _video_of(kind: str) -> str:
    index = next(i for i in range(PARAMS.test_videos) if anomaly_kind(i) == kind)
    return f"{index + 1:02d}"


def test_generate_writes_videos_layout_with_exact_frame_counts(dataset):
    root, intervals = dataset
    assert sorted(p.name for p in (root / "train").iterdir()) == ["01.avi", "02.avi"]
    assert sorted(p.name for p in (root / "test").iterdir()) == ["01.avi", "02.avi", "03.avi"]
    assert sorted(intervals) == ["01", "02", "03"]
    for path in sorted(root.glob("*/*.avi")):
        capture = cv2.VideoCapture(str(path))
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == PARAMS.frames
        capture.release()
        assert _decode(path).shape == (PARAMS.frames, PARAMS.height, PARAMS.width)


def test_labels_csv_matches_returned_intervals_and_reader(dataset):
    root, intervals = dataset
    with open(root / "labels.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["video", "start", "end"]
        rows = sorted((row["video"], int(row["start"]), int(row["end"])) for row in reader)
    assert rows == sorted((name, s, e) for name, spans in intervals.items() for s, e in spans)
    records = {record.video_id: record for record in index_videos(root)}
    assert set(records) == {"train_01", "train_02", "test_01", "test_02", "test_03"}
    for name in intervals:
        np.testing.assert_array_equal(records[f"test_{name}"].labels(PARAMS.frames), _labels(intervals, name))


def test_every_test_video_has_one_anomaly_inside_the_allowed_window(dataset):
    _, intervals = dataset
    first_allowed = math.ceil(0.2 * PARAMS.frames)
    last_allowed = PARAMS.frames - math.ceil(0.15 * PARAMS.frames) - 1
    for name, spans in intervals.items():
        assert len(spans) == 1, name
        start, end = spans[0]
        assert first_allowed <= start <= end <= last_allowed, (name, start, end)
        assert end - start + 1 >= 10, (name, start, end)


def test_anomaly_kinds_cycle_over_test_videos():
    assert {anomaly_kind(i) for i in range(3)} == set(ANOMALY_KINDS)
    assert anomaly_kind(3) == anomaly_kind(0)
    assert [anomaly_kind(i, ("motion_fast", "appearance")) for i in range(3)] == [
        "motion_fast", "appearance", "motion_fast"]


def test_anomalies_param_selects_the_kinds(tmp_path):
    params = PARAMS.model_copy(update={"anomalies": ("appearance",), "test_videos": 2, "train_videos": 1})
    intervals = generate(params, tmp_path)
    for name in ("01", "02"):
        frames = _decode(tmp_path / "test" / f"{name}.avi")
        labels = _labels(intervals, name)
        assert frames[labels].max() > frames[~labels].max() + 30  # the bright cart, in both videos


def test_same_seed_gives_identical_frames_and_other_seed_differs(dataset, tmp_path):
    root, intervals = dataset
    assert generate(PARAMS, tmp_path / "again") == intervals
    other = generate(PARAMS.model_copy(update={"seed": PARAMS.seed + 1}), tmp_path / "other")
    for rel in ("train/01.avi", "test/02.avi"):
        np.testing.assert_array_equal(_decode(tmp_path / "again" / rel), _decode(root / rel))
        assert np.abs(_decode(tmp_path / "other" / rel) - _decode(root / rel)).mean() > 1.0
    assert (tmp_path / "again" / "labels.csv").read_text() == (root / "labels.csv").read_text()
    assert other.keys() == intervals.keys()


def test_appearance_anomaly_is_brighter_than_any_normal_frame(dataset):
    root, intervals = dataset
    name = _video_of("appearance")
    frames, labels = _decode(root / "test" / f"{name}.avi"), _labels(intervals, name)
    normal_max = max(frames[~labels].max(), *(_decode(p).max() for p in (root / "train").glob("*.avi")))
    bright = frames[labels].reshape(labels.sum(), -1).max(axis=1)
    assert bright.max() > normal_max + 30
    assert (bright > normal_max).mean() >= 0.5


def test_fast_anomaly_raises_frame_differences(dataset):
    root, intervals = dataset
    name = _video_of("motion_fast")
    frames, labels = _decode(root / "test" / f"{name}.avi"), _labels(intervals, name)
    diffs = np.abs(np.diff(frames, axis=0))  # diffs[t - 1]: frame t vs t - 1
    diffs = np.where(diffs > 10, diffs, 0).mean(axis=(1, 2))  # ignore sensor noise and JPEG ringing
    during = diffs[labels[1:] & labels[:-1]]
    outside = diffs[~labels[1:] & ~labels[:-1]]
    assert len(during) >= 5 and len(outside) >= 5
    assert during.mean() > 1.3 * outside.mean()


def test_across_anomaly_leaves_the_walkway_from_top_to_bottom(dataset):
    root, intervals = dataset
    name = _video_of("motion_across")
    frames, labels = _decode(root / "test" / f"{name}.avi"), _labels(intervals, name)
    height = PARAMS.height
    dark = frames < 70  # pedestrians are darker than any background pixel
    top = dark[:, : int(synth._WALKWAY[0] * height)].any(axis=(1, 2))
    bottom = dark[:, int(synth._WALKWAY[1] * height) + 1:].any(axis=(1, 2))
    assert not (top | bottom)[~labels].any()  # normal pedestrians stay on the walkway
    assert top.any() and bottom.any()
    assert np.flatnonzero(top).min() < np.flatnonzero(bottom).min()


def test_write_video_raises_when_writer_cannot_open(tmp_path):
    frames = [np.zeros((32, 32), np.uint8)]
    with pytest.raises(RuntimeError, match="could not open"):
        synth._write_video(tmp_path / "missing" / "x.avi", frames, 10)


# Stage `synth` (vad.stages.synth); kept here next to the generator it wraps.
def test_stage_run_replaces_out_dir_and_reports_counts(tmp_path):
    params = PARAMS.model_copy(update={"train_videos": 1, "test_videos": 1, "frames": 20})
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    result = synth_stage.run(params, out)
    assert result.outputs == {"dataset": out}
    assert not (out / "stale.txt").exists()
    assert (out / "train" / "01.avi").is_file() and (out / "labels.csv").is_file()
    with open(out / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    abnormal = sum(int(row["end"]) - int(row["start"]) + 1 for row in rows)
    assert len(rows) == 1
    assert result.metrics == {"train_videos": 1, "test_videos": 1, "abnormal_frames": abnormal,
                              "test_frames": 20}
    assert abnormal > 0


def test_stage_run_failure_leaves_existing_out_dir_untouched(tmp_path, monkeypatch):
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "keep.txt").write_text("old")

    def broken(params, out_dir):
        (out_dir / "train").mkdir()
        raise RuntimeError("boom")

    monkeypatch.setattr(synth_stage, "generate", broken)
    with pytest.raises(RuntimeError, match="boom"):
        synth_stage.run(PARAMS, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
