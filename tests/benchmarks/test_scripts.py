"""The benchmark scripts run and record what they claim, on tiny inputs (their figures are not checked)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "benchmarks"


def _run(script: str, *args: str, tmp_path: Path, timeout: int = 300) -> dict:
    """Run a benchmark script; return the one JSON record it appended (to a temporary file)."""
    jsonl = tmp_path / "benchmarks.jsonl"
    env = {**os.environ, "BENCHMARKS_JSONL": str(jsonl), "OUT": str(tmp_path)}
    done = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    [line] = jsonl.read_text().splitlines()
    record = json.loads(line)
    assert record["cores"] == os.cpu_count() and record["cpu"]  # every record names the machine
    return record


def test_throughput_reports_flops_and_rates(tmp_path):
    record = _run("throughput.py", "--size", "32", "--width", "4", "--batch", "2", "--score-batch", "4",
                  "--repeats", "2", tmp_path=tmp_path)
    assert 0 < record["gflop_per_clip_forward"] < record["gflop_per_clip_train_step"]
    assert record["train_clips_per_s"] > 0 and record["score_frames_per_s"] > 0
    assert record["train_achieved_tflops"] > 0 and record["train_share_of_peak"] is None  # no GPU: no peak
    assert record["peak_host_mb"] > 0 and record["peak_gpu_mb"] is None


def test_score_throughput_compares_end_to_end_with_forward_only(tmp_path, raw_dataset):
    record = _run("score_throughput.py", "--source", str(raw_dataset), "--size", "32", "--width", "4",
                  "--batch", "8", "--repeat", "1", tmp_path=tmp_path)
    assert record["clips"] == 3 * (30 - 4)  # every clip of the 3 tiny test videos
    assert record["share"] == pytest.approx(record["end_to_end_frames_per_s"] / record["forward_only_frames_per_s"],
                                            abs=1e-3)
    assert record["from_video_files_frames_per_s"] > 0  # the source holds video files: `vad score --video` timed


@pytest.mark.parametrize("staged", [[], ["--host-staged"]])
def test_train_throughput_reports_the_data_wait_share(tmp_path, frame_store, make_document, staged):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(make_document()))
    record = _run("train_throughput.py", "--frames", str(frame_store), "--preset", str(tmp_path / "tiny.yaml"),
                  "--epochs", "2", *staged, tmp_path=tmp_path)
    assert record["host_staged"] is bool(staged)
    assert record["train_clips_per_s"] > 0 and 0 <= record["data_wait_share"] < 1
    assert record["gflop_per_clip_train_step"] > 0 and record["size"] == [32, 32]


def test_extract_benchmark_measures_a_single_core_loop_and_memory(tmp_path, raw_dataset):
    record = _run("extract_ped2.py", "--source", str(raw_dataset), "--size", "32", "--channels", "1",
                  "--repeat", "1", tmp_path=tmp_path)
    assert record["frames"] == 2 * 30 + 3 * 30
    assert record["ratio_per_worker"] == pytest.approx(
        record["extract_frames_per_s"] / record["workers"] / record["bare_loop_frames_per_s"], abs=2e-3)
    assert record["peak_rss_mb_1x"] > 0 and record["peak_rss_mb_4x"] > 0


def test_gpu_check_runs_on_cpu_within_its_budget(tmp_path, raw_dataset):
    # The GPU check's CPU path: extract, scale the Ped2 schedule to the budget, train, score, evaluate.
    done = subprocess.run(["bash", str(SCRIPTS / "gpu_check.sh"), "60", str(raw_dataset), "--size", "32",
                           "--channels", "1", "--width", "4"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}, cwd=REPO)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    record = json.loads((tmp_path / "benchmarks.jsonl").read_text())
    # Whether the tiny schedule fits 60 s whole depends on the machine and its load (idle here, it does: 27 s):
    # the plan may scale it, and a loaded machine may overrun the plan and cut alternating epochs. Both are
    # checked for either outcome, and `plan` itself on fixed costs in test_budget.py.
    scaled = record["planned_fraction"] < 1
    assert ("scaling the Ped2 schedule" in done.stderr) is scaled
    cut = record["train_epochs"] < record["planned_train_epochs"]
    assert ("took longer than planned" in done.stderr) is cut
    assert (record["schedule_fraction"] < record["planned_fraction"]) is cut
    # the probe runs' costs, and the whole schedule (50 + 100 epochs of the 2 x 26 training clips) they project
    costs = record["probe_costs_s"]
    assert all(cost > 0 for cost in costs.values()) and costs["init_clips"] == 2000
    projected = (2 * costs["stage"] + 52 * costs["init_clip"] + 50 * (52 * costs["pretrain_clip"] + costs["epoch"])
                 + 100 * (52 * costs["train_clip"] + costs["epoch"]))
    assert record["full_schedule_estimate_s"] == pytest.approx(projected, rel=0.01, abs=0.1)
    # The schedule it ran, priced with its own probe costs, fits the 60 s budget (the wall time itself depends
    # on what else the machine runs, so it is not asserted).
    per_epoch = record["clips_per_epoch"]
    ran = (2 * costs["stage"] + min(costs["init_clips"], per_epoch) * costs["init_clip"]
           + record["pretrain_epochs"] * (per_epoch * costs["pretrain_clip"] + costs["epoch"])
           + record["train_epochs"] * (per_epoch * costs["train_clip"] + costs["epoch"]))
    assert ran < 60 and 0 < record["schedule_fraction"] <= 1 and 0 <= record["auc_micro"] <= 1
    if not scaled:
        assert (record["pretrain_epochs"], record["planned_train_epochs"], per_epoch) == (50, 100, 52)
    assert record["score_frames_per_s"] > 0 and record["forward_only_frames_per_s"] > 0
    assert 0 <= record["data_wait_share_mean"] < 1 and record["gflop_per_clip_train_step"] > 0


def test_ped2_cpu_script_runs_every_stage_and_fit_reports_the_trivial_predictors(tmp_path, raw_dataset,
                                                                                  make_document):
    # The documented Ped2 command on the tiny synthetic dataset (same `videos` layout), then the diagnostics.
    # Half of each training video held out: 15 frames, room for clips at stride 3 (13 frames) in them.
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(make_document(detect={"holdout_share": 0.5})))
    out = tmp_path / "run"
    env = {**os.environ, "VAD": str(Path(sys.executable).parent / "vad"), "PYTHON": sys.executable}
    command = ["bash", str(SCRIPTS / "ped2_cpu.sh"), str(raw_dataset), str(out), str(tmp_path / "tiny.yaml")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    metrics = json.loads((out / "eval.json").read_text())
    assert f"ped2_cpu: micro AUC {metrics['auc_micro']:.4f}" in done.stdout
    for stage in ("extract", "pretrain", "init-clusters", "train", "score", "evaluate"):
        assert f"ped2_cpu: {stage} " in done.stderr

    done = subprocess.run([sys.executable, str(SCRIPTS / "ped2_fit.py"), "--frames", str(out / "frames"),
                           "--model", str(out / "train"), "--json", str(tmp_path / "fit.json")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    table = json.loads((tmp_path / "fit.json").read_text())
    assert list(table) == ["train", "test normal", "test abnormal"]
    # d_hat = 0 costs the mean squared frame difference f4 - f0 over the training clips, computed here anew.
    from vad.data.store import FrameStore

    store = FrameStore.open(out / "frames")
    squared = [((np.asarray(store.frames(v))[4:].astype(np.float64) - np.asarray(store.frames(v))[:-4]) / 255) ** 2
               for v in store.split("train")]
    expected = np.mean(np.concatenate([s.reshape(len(s), -1).mean(1) for s in squared]))
    assert table["train"]["motion_zero"] == pytest.approx(expected, rel=1e-5)
    assert all(value >= 0 for row in table.values() for value in row.values())

    def script(name: str) -> dict:
        done = subprocess.run([sys.executable, str(SCRIPTS / name), "--frames", str(out / "frames"), "--model",
                               str(out / "train"), "--json", str(tmp_path / "out.json")],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return json.loads((tmp_path / "out.json").read_text())

    # The fusion variants: the squared map is the product's fused score, so its AUC is `vad evaluate`'s (up to
    # ranks flipped by float rounding between batchings: two pairs at most).
    fusion = script("ped2_fusion.py")
    pairs = metrics["frames_abnormal"] * (metrics["frames_scored"] - metrics["frames_abnormal"])
    assert fusion["squared"]["auc_micro"] == pytest.approx(metrics["auc_micro"], abs=2 / pairs + 1e-4)
    assert fusion["prediction"]["auc_micro"] == pytest.approx(metrics["auc_prediction"], abs=2 / pairs + 1e-4)
    assert 0 <= fusion["euclidean"]["auc_micro"] <= 1
    # Pseudo-anomalies: every stride-1 and stride-3 clip of the 15 held-out frames of each training video.
    pseudo = script("pseudo_anomalies.py")
    videos = len(store.split("train"))
    assert (pseudo["normal_clips"], pseudo["pseudo_clips"]) == (videos * (15 - 4), videos * (15 - 12))
    assert all(0 <= pseudo[name] <= 1 for name in ("squared", "euclidean", "prediction"))

    # Detection margins: the mean of e * D_u is the raw score of scores.csv (1 / fused), so its ratios follow from it.
    from vad.plots import abnormal_intervals

    margins = script("detect_margins.py")
    raw, labels = {}, {}
    with open(out / "scores.csv") as handle:
        for row in csv.DictReader(handle):
            if row["scored"] == "1":
                raw.setdefault(row["video"], []).append(1 / float(row["fused"]))
    for video in store.split("test"):
        labels[video.id] = store.labels(video)[4:]
    normal_peak = max(np.asarray(raw[v])[labels[v] == 0].max() for v in raw if (labels[v] == 0).any())
    expected = [np.asarray(raw[v])[start:end + 1].max() / normal_peak
                for v in raw for start, end in abnormal_intervals(labels[v])]
    assert len(margins["intervals"]) == len(expected) > 0
    assert margins["ratios"]["e*D_u mean"] == pytest.approx(expected, rel=1e-4)
    assert set(margins["ratios"]) == {f"{m} {s}" for m in ("e*D_u", "e", "D_u") for s in ("mean", "max8")}

    # --unseen: whole fresh normal videos of the same scene (benchmarks/unseen_synthetic.py), not the hold-out.
    fresh_dir = tmp_path / "unseen"
    done = subprocess.run([sys.executable, str(SCRIPTS / "unseen_synthetic.py"), "--params",
                           str(tmp_path / "tiny.yaml"), "--videos", "2", "--out", str(fresh_dir)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    fresh = FrameStore.open(fresh_dir / "frames")
    lengths = [len(fresh.frames(v)) for v in fresh.split("train")]
    assert len(lengths) == 2
    seen = {np.asarray(store.frames(v))[0].tobytes() for v in store.split("train")}
    assert all(np.asarray(fresh.frames(v))[0].tobytes() not in seen for v in fresh.split("train"))  # new footage
    done = subprocess.run([sys.executable, str(SCRIPTS / "pseudo_anomalies.py"), "--frames",
                           str(fresh_dir / "frames"), "--model", str(out / "train"), "--unseen", "--json",
                           str(tmp_path / "unseen.json")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    unseen = json.loads((tmp_path / "unseen.json").read_text())
    expected = (sum(n - 4 for n in lengths), sum(n - 12 for n in lengths))  # clips at stride 1 and 3
    assert (unseen["normal_clips"], unseen["pseudo_clips"]) == expected


def test_detect_eval_counts_detected_intervals_and_false_alarms(tmp_path, frame_store):
    from vad.data.store import FrameStore
    from vad.plots import abnormal_intervals

    store = FrameStore.open(frame_store)
    video = next(v for v in store.split("test") if store.labels(v).any() and not store.labels(v).all())
    labels, name = store.labels(video), Path(video.source).stem
    (start, end), normal = abnormal_intervals(labels)[0], int(np.flatnonzero(labels == 0)[0])
    detections = tmp_path / "det"
    detections.mkdir()
    events = [{"source": name, "start_frame": end, "end_frame": end + 3, "fps": 10.0},      # overlaps the interval
              {"source": name, "start_frame": normal, "end_frame": normal, "fps": 10.0}]   # on normal frames only
    (detections / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    flags = np.zeros(len(labels), int)
    flags[[start, normal]] = 1  # one true positive, one false positive
    rows = "".join(f"{name},{i},1,,,,,,{flag}\n" for i, flag in enumerate(flags))
    (detections / "scores.csv").write_text("video,frame,scored,anomaly,fused,prediction_error,cluster_distance,"
                                           "anomaly_score,is_anomaly\n" + rows)
    record = _run("detect_eval.py", "--frames", str(frame_store), "--detections", str(detections), tmp_path=tmp_path)
    assert record["intervals"] == len(abnormal_intervals(labels)) and record["intervals_detected"] == 1
    assert record["false_alarms"] == 1 and record["normal_frames"] == int((labels == 0).sum())
    assert record["false_alarms_per_hour"] == pytest.approx(3600 * 10.0 / record["normal_frames"])
    assert record["frame_precision"] == 0.5 and record["frame_recall"] == pytest.approx(1 / int(labels.sum()))


def test_detect_latency_reports_file_rate_and_live_latency(tmp_path):
    record = _run("detect_latency.py", "--size", "32", "--width", "4", "--fps", "25", "--seconds", "2",
                  "--file-frames", "30", tmp_path=tmp_path)
    assert record["file_frames"] == 30 and record["file_frames_per_s"] > 0
    # every frame of the 2 s stream that ends a clip is scored, each after it was sent
    assert record["live_frames_scored"] == 50 - 4
    assert 0 < record["live_latency_p50_ms"] <= record["live_latency_p99_ms"] <= record["live_latency_max_ms"]


def test_normal_false_alarms_counts_events_and_frames_above_each_budgets_threshold(tmp_path):
    from vad.calibration import calibrate
    from vad.scores_csv import DETECT_COLUMNS

    # thresholds of every budget lie between the held-out maximum (2) and 100 (a log-normal tail above it)
    calibrate(np.linspace(1.0, 2.0, 50), 1.0, 10.0, map="prediction").save(tmp_path / "calibration.json")
    alarm = {"a": np.ones(60), "b": np.ones(20)}
    alarm["a"][10:14] = 100.0  # 4 frames: one event
    alarm["a"][30:32] = 100.0  # 2 frames: shorter than detect.min_event_frames (3), no event
    alarm["a"][50] = 100.0     # 1 frame: no event
    alarm["b"][-3:] = 100.0    # 3 frames at the end of the stream: one event, closed by the end
    rows = [",".join(DETECT_COLUMNS)]
    for video, values in alarm.items():  # the alarm score is the prediction error's mean (the calibration's)
        rows += [f"{video},{i},0,,,,,,,," if i < 4 else f"{video},{i},1,0.5,1,{value},1,1,1,{value},0"
                 for i, value in enumerate(values)]
    detections = tmp_path / "det"
    detections.mkdir()
    (detections / "scores.csv").write_text("\n".join(rows) + "\n")
    record = _run("normal_false_alarms.py", "--detections", str(detections), "--calibration",
                  str(tmp_path / "calibration.json"), "--params", str(REPO / "params.yaml"), tmp_path=tmp_path)
    hours = (56 + 16) / 10.0 / 3600
    assert record["scored_frames"] == 72 and record["videos"] == 2
    for budget in ("1", "60", "600", "3600"):
        assert 2.0 <= record[f"threshold_{budget}_per_h"] < 100.0
        assert record[f"false_events_{budget}_per_h"] == 2
        assert record[f"frames_above_per_h_{budget}_per_h"] == pytest.approx(10 / hours, rel=1e-3)


def test_tile_seams_measures_the_error_at_tile_borders_with_and_without_overlap(tmp_path, raw_dataset, monkeypatch):
    import torch

    monkeypatch.syspath_prepend(str(SCRIPTS))
    from tests.conftest import tiny_params
    from tile_seams import seam_ratio

    from vad.checkpoint import CHECKPOINT, save_checkpoint
    from vad.models import build_model
    from vad.stages import extract
    from vad.stages.pretrain import model_config

    # An error map with its tile borders (rows and columns 15|16 of 16x16 tiles) 3x as high as elsewhere.
    error = torch.ones(32, 32)
    error[15:17] = error[:, 15:17] = 3.0
    seams = torch.cat([error[[15, 16]].flatten(), error[:, [15, 16]].flatten()]).mean()
    assert seam_ratio(error, (16, 16)) == pytest.approx(float(seams / error.mean()))
    assert seam_ratio(torch.ones(32, 32), (16, 16)) == pytest.approx(1.0)

    # The script on an untrained tiled network (64x64 frames in 32x32 tiles), half of each video held out.
    params = tiny_params(data={"image_size": [64, 64], "tile": [32, 32]}, detect={"holdout_share": 0.5})
    extract.run(params.data, raw_dataset, tmp_path / "frames")
    torch.manual_seed(0)
    (tmp_path / "train").mkdir()
    save_checkpoint(tmp_path / "train" / CHECKPOINT, {"model": build_model(params.model, params.data).state_dict(),
                                                      "config": model_config(params)})
    done = subprocess.run([sys.executable, str(SCRIPTS / "tile_seams.py"), "--frames", str(tmp_path / "frames"),
                           "--model", str(tmp_path / "train"), "--json", str(tmp_path / "seams.json")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    figures = json.loads((tmp_path / "seams.json").read_text())
    assert set(figures) == {f"{n}_{k}" for n in ("abutting", "overlap") for k in ("prediction_error", "seam_ratio")}
    assert all(value > 0 for value in figures.values())
    assert "22 held-out clips" in done.stdout  # 2 training videos x (15 held-out frames - 4)
