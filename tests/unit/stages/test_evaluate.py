import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vad.calibration import calibrate
from vad.errors import DataError
from vad.scores_csv import COLUMNS as SCORE_COLUMNS
from vad.stages.evaluate import run

CLIP_LEN = 5
# Two labelled test videos and one training video; video "b" holds no abnormal scored frame.
LABELS = {
    "a": np.array([0, 0, 0, 0, 0, 1, 1, 1, 0, 0], dtype=np.uint8),
    "b": np.array([1, 0, 0, 0, 0, 0, 0, 0], dtype=np.uint8),  # its only abnormal frame is unscored
}
ANOMALY = {
    "a": [0.0, 0.9, 1.0, 0.4, 0.5, 0.2],      # frames 4..9
    "b": [0.3, 1.0, 0.0, 0.6],                 # frames 4..7
}
PREDICTION = {"a": [5.0, 1.0, 0.5, 2.0, 1.5, 3.0], "b": [0.2, 0.1, 0.4, 0.15]}


def _write_store(root, labelled=True):
    (root / "frames").mkdir(parents=True)
    (root / "labels").mkdir()
    videos = []
    for video_id, split, n in (("train0", "train", 6), ("a", "test", 10), ("b", "test", 8)):
        np.save(root / "frames" / f"{video_id}.npy", np.zeros((n, 16, 16, 1), dtype=np.uint8))
        labels = None
        if split == "test" and labelled:
            labels = f"labels/{video_id}.npy"
            np.save(root / labels, LABELS[video_id])
        videos.append({"id": video_id, "split": split, "frames": n, "path": f"frames/{video_id}.npy",
                       "labels": labels, "source": f"/src/{video_id}.avi"})
    manifest = {"version": 1, "dataset": "tiny", "image_size": [16, 16], "channels": 1, "videos": videos}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _write_scores(path, videos=("a", "b"), cluster=False):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SCORE_COLUMNS)
        for video_id in videos:
            n = LABELS[video_id].size
            for frame in range(n):
                if frame < CLIP_LEN - 1:
                    writer.writerow([video_id, frame, 0, "", "", "", "", "", ""])
                    continue
                i = frame - (CLIP_LEN - 1)
                pe = PREDICTION[video_id][i]
                cd = 2 * pe if cluster else ""
                # the window scores: the frame's own means (a uniform map)
                writer.writerow([video_id, frame, 1, ANOMALY[video_id][i], 1.0 / pe, pe, cd, pe * (cd or 1), pe])
    return path


@pytest.fixture
def paths(tmp_path):
    return {
        "frames_dir": _write_store(tmp_path / "frames"),
        "scores_csv": _write_scores(tmp_path / "scores.csv"),
        "metrics_path": tmp_path / "reports" / "eval.json",
        "plots_dir": tmp_path / "reports" / "plots",
    }


def _scored(video_id):
    return LABELS[video_id][CLIP_LEN - 1:]


def test_run_writes_metrics_that_match_sklearn(paths):
    result = run(**paths)
    labels = np.concatenate([_scored("a"), _scored("b")])
    scores = np.concatenate([ANOMALY["a"], ANOMALY["b"]])
    metrics = json.loads(paths["metrics_path"].read_text())
    assert metrics == result.metrics
    assert list(metrics) == sorted(metrics)
    assert all(isinstance(value, (int, float)) for value in metrics.values())
    assert metrics["auc_micro"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    # Only video "a" holds both classes among its scored frames.
    assert metrics["auc_macro"] == pytest.approx(roc_auc_score(_scored("a"), ANOMALY["a"]), abs=1e-6)
    # Per-video AUC, for the videos that have one ("b" holds a single class among its scored frames).
    assert metrics["auc_video_a"] == pytest.approx(roc_auc_score(_scored("a"), ANOMALY["a"]), abs=1e-6)
    assert [k for k in metrics if k.startswith("auc_video_")] == ["auc_video_a"]
    assert metrics["frames_scored"] == 10
    assert metrics["frames_abnormal"] == 3
    assert metrics["videos"] == 2
    assert "auc_prediction" in metrics and "auc_cluster" not in metrics
    assert result.outputs == {"metrics": paths["metrics_path"], "plots": paths["plots_dir"]}


def test_run_computes_the_prediction_component_per_video(paths):
    metrics = run(**paths).metrics
    component = []
    for video_id in ("a", "b"):
        s = 1.0 / np.array(PREDICTION[video_id])
        component.append(1.0 - (s - s.min()) / (s.max() - s.min()))
    labels = np.concatenate([_scored("a"), _scored("b")])
    expected = roc_auc_score(labels, np.concatenate(component))
    assert metrics["auc_prediction"] == pytest.approx(expected, abs=1e-6)


def test_run_reports_the_cluster_component_when_scored(paths):
    _write_scores(paths["scores_csv"], cluster=True)
    metrics = run(**paths).metrics
    # cluster_distance = 2 * prediction_error: the same ranking after per-video normalisation.
    assert metrics["auc_cluster"] == pytest.approx(metrics["auc_prediction"])


def test_run_writes_a_finite_roc_csv_and_one_png_per_test_video(paths):
    run(**paths)
    with open(paths["plots_dir"] / "roc.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["fpr", "tpr", "threshold"]
    values = np.array(rows[1:], dtype=np.float64)
    assert np.isfinite(values).all()
    assert tuple(values[0, :2]) == (0.0, 0.0) and tuple(values[-1, :2]) == (1.0, 1.0)
    assert values[0, 2] > 1.0  # above every anomaly score: nothing flagged at the first point
    pngs = sorted(p.name for p in (paths["plots_dir"] / "scores").iterdir())
    assert pngs == ["a.png", "b.png"]
    assert (paths["plots_dir"] / "scores" / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(paths["plots_dir"] / "per_video.csv", newline="") as handle:
        per_video = {row["video"]: row for row in csv.DictReader(handle)}
    assert per_video["b"]["auc"] == ""
    assert float(per_video["a"]["auc"]) == pytest.approx(roc_auc_score(_scored("a"), ANOMALY["a"]), abs=1e-6)
    assert not [p for p in paths["plots_dir"].parent.iterdir() if p.name.startswith(".")]


def test_run_raises_when_a_test_video_is_not_scored_and_keeps_old_outputs(paths):
    paths["metrics_path"].parent.mkdir(parents=True)
    paths["metrics_path"].write_text('{"auc_micro": 0.5}\n')
    _write_scores(paths["scores_csv"], videos=("a",))
    with pytest.raises(DataError, match=r"'b'.*re-run `vad score`"):
        run(**paths)
    assert paths["metrics_path"].read_text() == '{"auc_micro": 0.5}\n'
    assert not paths["plots_dir"].exists()


def test_run_raises_when_a_video_misses_frames(paths):
    lines = paths["scores_csv"].read_text().splitlines()
    paths["scores_csv"].write_text("\n".join(lines[:-1]) + "\n")  # drop b's last frame
    with pytest.raises(DataError, match=r"'b'.*re-run `vad score`"):
        run(**paths)


def test_test_videos_without_labels_give_a_metrics_file_without_auc(tmp_path, paths):
    frames_dir = _write_store(tmp_path / "unlabelled", labelled=False)
    result = run(frames_dir, paths["scores_csv"], paths["metrics_path"], paths["plots_dir"])
    assert json.loads(paths["metrics_path"].read_text()) == {"labelled_test_videos": 0, "test_videos": 2}
    assert "auc_micro" not in result.metrics
    assert paths["plots_dir"].is_dir() and not any(paths["plots_dir"].iterdir())


def test_run_raises_when_only_some_test_videos_carry_labels(paths):
    (paths["frames_dir"] / "labels" / "b.npy").unlink()
    manifest = json.loads((paths["frames_dir"] / "manifest.json").read_text())
    manifest["videos"][2]["labels"] = None
    (paths["frames_dir"] / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="'?b'? of .* carry no labels while others do"):
        run(**paths)


def test_run_raises_when_scored_frames_hold_one_class(paths):
    np.save(paths["frames_dir"] / "labels" / "a.npy", np.zeros(10, dtype=np.uint8))
    with pytest.raises(DataError, match="one class"):
        run(**paths)
    assert not paths["metrics_path"].exists()


def test_run_raises_when_scores_hold_a_video_the_store_does_not_test(paths):
    with open(paths["scores_csv"], "a", newline="") as handle:
        csv.writer(handle).writerow(["train0", 0, 0, "", "", "", ""])
    with pytest.raises(DataError, match="train0"):
        run(**paths)


def _with_prediction_window(path, values):
    rows = list(csv.DictReader(path.open()))
    for row in rows:
        if row["scored"] == "1":
            row["prediction_window"] = values(row)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SCORE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_run_measures_alarms_on_the_alarm_score_of_the_calibration(paths):
    # a prediction_window that tells the abnormal frames apart where 1 / fused does not
    _with_prediction_window(paths["scores_csv"], lambda row: 1.0 + LABELS[row["video"]][int(row["frame"])])
    calibration = calibrate(np.array([1.0, 1.1, 1.2, 1.3]), 1.0, 10.0, map="prediction", pooling="window")
    assert calibration.threshold < 2.0  # between the normal (1.0) and the abnormal (2.0) frames
    metrics = run(**paths, calibration=calibration).metrics
    raw = np.concatenate([PREDICTION[v] for v in ("a", "b")])  # a = 1 / fused
    assert metrics["auc_raw_pooled"] == pytest.approx(roc_auc_score(np.r_[_scored("a"), _scored("b")], raw), abs=1e-6)
    assert metrics["auc_alarm_pooled"] == 1.0
    assert metrics["alarm_frame_precision"] == metrics["alarm_frame_recall"] == metrics["alarm_event_recall"] == 1.0
    assert metrics["alarm_false_events"] == 0
    assert "auc_alarm_pooled" not in run(**paths).metrics  # the paper's a = 1 / fused: auc_raw_pooled says it


def test_run_asks_to_rescore_a_file_without_the_alarm_score_s_column(paths):
    rows = [line.split(",")[:7] for line in paths["scores_csv"].read_text().splitlines()]
    paths["scores_csv"].write_text("\n".join(",".join(row) for row in rows) + "\n")  # as written before windows
    run(**paths)  # the paper's score needs no window column
    calibration = calibrate(np.array([1.0, 1.1, 1.2, 1.3]), 1.0, 10.0, map="fused", pooling="window")
    with pytest.raises(DataError, match="fused-map window.*re-run `vad score`"):
        run(**paths, calibration=calibration)
