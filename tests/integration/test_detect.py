"""`vad calibrate` and `vad detect`: a threshold from held-out normal footage, causal scores, events."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from tests.conftest import tiny_document

from vad.calibration import Calibration
from vad.data.clips import holdout_frames
from vad.data.store import FrameStore
from vad.stages import calibrate, detect, score


def vad(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "vad", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def calibration(trained, params, tmp_path_factory):
    path = tmp_path_factory.mktemp("calibration") / "calibration.json"
    calibrate.run(params, trained["frames"], trained["train"], path)
    return path


def test_calibration_scores_exactly_the_held_out_tail_of_each_training_video(trained, params, calibration):
    store = FrameStore.open(trained["frames"])
    share = params.detect.holdout_share
    assert share > 0  # the default: a model trained without its tail is what is calibrated here
    expected = sum(holdout_frames(video.frames, share) for video in store.split("train"))
    result = Calibration.load(calibration)
    assert result.frames == expected  # one clip per held-out frame: the clips that end in the tail
    assert result.threshold >= result.max_score  # a 1-per-hour budget is beyond what these few frames show
    assert result.cluster_distance == "squared"  # score.cluster_distance `model`: the map it was trained with


def test_detect_scores_with_the_cluster_map_its_threshold_was_calibrated_on(trained, params, raw_dataset, tmp_path):
    euclidean = params.model_copy(update={"score": params.score.model_copy(update={"cluster_distance": "euclidean"})})
    path = tmp_path / "calibration.json"
    calibrate.run(euclidean, trained["frames"], trained["train"], path)
    assert Calibration.load(path).cluster_distance == "euclidean"
    video = sorted((raw_dataset / "test").iterdir())[0]
    score.run_videos(euclidean, [video], trained["train"], tmp_path / "offline.csv")
    # params say `model` (squared): the calibration's map wins, or its threshold would mean nothing
    detect.run(params, [str(video)], trained["train"], tmp_path / "out", calibration_path=path)
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open()))
    reference = list(csv.DictReader((tmp_path / "offline.csv").open()))
    scored = [(row, ref) for row, ref in zip(rows, reference, strict=True) if row["scored"] == "1"]
    assert scored
    for row, ref in scored:
        assert float(row["anomaly_score"]) == pytest.approx(1.0 / float(ref["fused"]), rel=1e-6)


def test_a_calibration_from_before_the_switch_scores_with_the_model_s_own_map(trained, params, calibration,
                                                                              raw_dataset, tmp_path):
    old = json.loads(calibration.read_text())
    del old["cluster_distance"]  # written before score.cluster_distance: calibrated on the model's (squared) map
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(old))
    video = sorted((raw_dataset / "test").iterdir())[0]
    score.run_videos(params, [video], trained["train"], tmp_path / "offline.csv")
    euclidean = params.model_copy(update={"score": params.score.model_copy(update={"cluster_distance": "euclidean"})})
    detect.run(euclidean, [str(video)], trained["train"], tmp_path / "out", calibration_path=path)
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open()))
    reference = list(csv.DictReader((tmp_path / "offline.csv").open()))
    scored = [(row, ref) for row, ref in zip(rows, reference, strict=True) if row["scored"] == "1"]
    assert scored
    for row, ref in scored:
        assert float(row["anomaly_score"]) == pytest.approx(1.0 / float(ref["fused"]), rel=1e-6)


def test_detect_scores_causally_like_the_offline_scorer_and_writes_events(trained, params, calibration, raw_dataset,
                                                                           tmp_path):
    video = sorted((raw_dataset / "test").iterdir())[0]
    offline = tmp_path / "offline.csv"
    vad_score = vad("score", "--video", str(video), "--model", str(trained["train"]), "--out", str(offline),
                    "--params", _params_file(tmp_path))
    assert vad_score.returncode == 0, vad_score.stderr
    events = []
    result = detect.run(params, [str(video)], trained["train"], tmp_path / "out", calibration_path=calibration,
                        on_event=events.append)
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open()))
    reference = list(csv.DictReader(offline.open()))
    assert len(rows) == len(reference) == int(result.metrics["frames"])
    for row, ref in zip(rows, reference, strict=True):
        assert row["scored"] == ref["scored"]
        if row["scored"] == "1":  # the raw score is 1 / fused of the same clip: frame for frame
            assert float(row["anomaly_score"]) == pytest.approx(1.0 / float(ref["fused"]), rel=1e-6)
            assert row["is_anomaly"] == str(int(float(row["anomaly_score"]) > Calibration.load(calibration)
                                                .threshold_for(1.0, float(events[0].fps) if events else 10.0)))
    written = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    assert written == [event.to_dict() for event in events]


def test_a_low_threshold_raises_events_printed_as_json_lines_when_they_close(trained, raw_dataset, tmp_path):
    video = sorted((raw_dataset / "test").iterdir())[0]
    result = vad("detect", str(video), "--model", str(trained["train"]), "--threshold", "0", "--out",
                 str(tmp_path / "out"), "--params", _params_file(tmp_path))
    assert result.returncode == 0, result.stderr
    [event] = [json.loads(line) for line in result.stdout.splitlines()]  # every scored frame is above 0
    assert event["start_frame"] == tiny_document()["data"]["clip_len"] - 1 and event["peak_score"] > 0
    assert {"start_frame", "end_frame", "start_s", "end_s", "peak_s", "peak_score", "threshold"} <= set(event)
    never = vad("detect", str(video), "--model", str(trained["train"]), "--threshold", "1e9", "--out",
                str(tmp_path / "none"), "--params", _params_file(tmp_path))
    assert never.returncode == 0 and never.stdout == ""
    assert (tmp_path / "none" / "events.jsonl").read_text() == ""


@pytest.mark.parametrize(("args", "needle"), [
    (["missing.mp4"], "footage missing.mp4 not found"),
    (["{video}", "--calibration", "nowhere.json"], "no calibration at nowhere.json"),
    (["empty.mp4", "--threshold", "1"], "video empty.mp4 is missing or empty"),
    (["corrupt.mp4", "--threshold", "1"], "cannot open video corrupt.mp4"),
])
def test_bad_input_is_one_line(trained, raw_dataset, tmp_path, args, needle):
    video = str(sorted((raw_dataset / "test").iterdir())[0])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    result = vad("detect", *[a.format(video=video) for a in args], "--model", str(trained["train"]),
                 "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert needle in result.stderr and not (tmp_path / "out").exists()


def test_a_model_uri_that_does_not_resolve_is_one_line(tmp_path):
    result = vad("detect", "x.mp4", "--model", "models:/no-such-model@champion", cwd=tmp_path,
                 env={**__import__("os").environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "no-such-model" in result.stderr


def _params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_document()))
    return str(path)


def test_the_champion_detects_from_its_uri_in_a_folder_without_params(trained, params, calibration, raw_dataset,
                                                                       mlflow_server, make_params, tmp_path):
    import os

    from vad.stages import register

    named = make_params(register={"model_name": "vad-detect-test"})
    register.run(named, trained["frames"], trained["pretrain"], trained["train"], trained["metrics"],
                 trained["plots"], tmp_path / "register.json", tracking_uri=mlflow_server,
                 calibration_path=calibration)
    video = sorted((raw_dataset / "test").iterdir())[0]
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    result = vad("detect", str(video), "--model", "models:/vad-detect-test@champion", "--out", "out", cwd=folder,
                 env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server})
    assert result.returncode == 0, result.stderr
    assert not (folder / "params.yaml").exists()
    rows = list(csv.DictReader((folder / "out" / "scores.csv").open()))
    local = tmp_path / "local"
    detect.run(params, [str(video)], trained["train"], local, calibration_path=calibration)
    assert rows == list(csv.DictReader((local / "scores.csv").open()))  # the registered model is the same model
    import mlflow

    version = mlflow.MlflowClient(mlflow_server).get_model_version_by_alias("vad-detect-test", "champion")
    assert float(version.tags["threshold"]) == pytest.approx(Calibration.load(calibration).threshold)


def test_the_overlay_video_has_one_frame_per_input_frame_with_the_alarm_marked(trained, raw_dataset, tmp_path):
    import cv2

    video = sorted((raw_dataset / "test").iterdir())[0]
    result = vad("detect", str(video), "--model", str(trained["train"]), "--threshold", "0", "--out",
                 str(tmp_path / "out"), "--overlay", str(tmp_path / "overlay.mp4"), "--params", _params_file(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open()))
    capture = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    assert len(frames) == len(rows) == int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    size = tiny_document()["data"]["image_size"][0]
    scale = -(-240 // size)
    assert frames[0].shape == (size * scale + 64, size * scale, 3)
    # threshold 0: every scored frame is an alarm, framed in red; the first T-1 frames are not scored
    blue, green, red_ = (np.stack([frame[2, size * scale // 2] for frame in frames]).astype(int).T)
    red = list((red_ > 200) & (green < 80) & (blue < 80))  # the heat colours never reach this red
    assert red == [row["is_anomaly"] == "1" for row in rows]
    assert not list(tmp_path.glob("*.partial.mp4"))


def test_detect_raises_alarms_on_the_alarm_score_its_threshold_was_calibrated_on(trained, params, raw_dataset,
                                                                                tmp_path):
    window = params.model_copy(update={"detect": params.detect.model_copy(update={"map": "prediction",
                                                                                 "pooling": "window"})})
    path = tmp_path / "calibration.json"
    calibrate.run(window, trained["frames"], trained["train"], path)
    video = sorted((raw_dataset / "test").iterdir())[0]
    score.run_videos(params, [video], trained["train"], tmp_path / "offline.csv")
    # params say the paper's fused mean: the calibration's alarm score wins, or its threshold would mean nothing
    detect.run(params, [str(video)], trained["train"], tmp_path / "out", calibration_path=path, threshold=None)
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open()))
    reference = list(csv.DictReader((tmp_path / "offline.csv").open()))
    threshold = Calibration.load(path).threshold_for(params.detect.false_alarms_per_hour, 10.0)
    scored = [(row, ref) for row, ref in zip(rows, reference, strict=True) if row["scored"] == "1"]
    assert scored
    for row, ref in scored:
        assert float(row["anomaly_score"]) == pytest.approx(float(ref["prediction_window"]), rel=1e-6)
        assert row["is_anomaly"] == str(int(float(row["anomaly_score"]) > threshold))
