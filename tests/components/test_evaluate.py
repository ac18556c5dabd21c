from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from components.evaluate.component import evaluate
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Metrics

from vad.errors import DataLayoutError

PNG = b"\x89PNG\r\n\x1a\nfake"
METRICS = {"auc_micro": 0.91, "auc_macro": 0.875, "videos": 3}


def write_outputs(args) -> None:
    _frames, _scores, metrics_path, plots_dir = args
    metrics_path.write_text(json.dumps(METRICS))
    (plots_dir / "scores").mkdir(parents=True)
    # an older writer's infinite first threshold must never reach the metadata (JSON has no inf)
    (plots_dir / "roc.csv").write_text("fpr,tpr,threshold\n0.0,0.0,inf\n0.0,0.5,1.5\n0.25,1.0,0.5\n1.0,1.0,0.0\n")
    (plots_dir / "roc.png").write_bytes(PNG)
    for video in ("01", "02<b>"):
        (plots_dir / "scores" / f"{video}.png").write_bytes(PNG)


@pytest.fixture
def outputs(artifact):
    return {"metrics": artifact(Metrics, "metrics"), "plots": artifact(Artifact, "plots"),
            "roc": artifact(ClassificationMetrics, "roc"), "report": artifact(HTML, "report")}


def test_evaluate_publishes_metrics_roc_report_and_returns_auc_micro(record_run, frames, artifact, outputs, tmp_path):
    recorder = record_run("vad.stages.evaluate", metrics=METRICS, write=write_outputs)
    scores = artifact(Dataset, "scores.csv")
    Path(scores.path).write_text("video,frame,scored,anomaly,fused,prediction_error,cluster_distance\n")

    (auc_micro,) = evaluate.python_func(frames=frames, scores=scores, **outputs)

    [(args, _)] = recorder.calls
    assert args == (Path(frames.path), Path(scores.path), Path(outputs["metrics"].path), Path(outputs["plots"].path))
    assert auc_micro == 0.91
    assert outputs["metrics"].metadata == METRICS
    assert json.loads(Path(outputs["metrics"].path).read_text()) == METRICS  # what register reads back
    points = outputs["roc"].metadata["confidenceMetrics"]
    assert [(p["falsePositiveRate"], p["recall"], p["confidenceThreshold"]) for p in points] == [
        (0.0, 0.5, 1.5), (0.25, 1.0, 0.5), (1.0, 1.0, 0.0)]
    report = Path(outputs["report"].path).read_text()
    assert report.count(f"data:image/png;base64,{base64.b64encode(PNG).decode()}") == 3
    assert "02&lt;b&gt;" in report and "<td>auc_micro</td><td>0.91</td>" in report


def test_evaluate_without_test_labels_returns_zero_and_a_report_that_says_so(record_run, frames, artifact, outputs):
    unlabelled = {"labelled_test_videos": 0, "test_videos": 2}

    def write(args):
        _frames, _scores, metrics_path, plots_dir = args
        metrics_path.write_text(json.dumps(unlabelled))
        plots_dir.mkdir(parents=True)

    record_run("vad.stages.evaluate", metrics=unlabelled, write=write)
    scores = artifact(Dataset, "scores.csv")
    Path(scores.path).write_text("video,frame,scored,anomaly,fused,prediction_error,cluster_distance\n")
    (auc_micro,) = evaluate.python_func(frames=frames, scores=scores, **outputs)
    assert auc_micro == 0.0  # beats the -1.0 of "no champion" only (components/champion)
    assert outputs["metrics"].metadata == unlabelled
    assert "No test labels" in Path(outputs["report"].path).read_text()


def test_evaluate_refuses_a_folder_where_scores_csv_belongs(record_run, frames, checkpoint, outputs, assert_one_line):
    recorder = record_run("vad.stages.evaluate")
    with pytest.raises(DataLayoutError, match="not a scores.csv file") as error:
        evaluate.python_func(frames=frames, scores=checkpoint("model"), **outputs)
    assert_one_line(error)
    assert recorder.calls == []


def test_evaluate_refuses_a_model_where_the_frame_store_belongs(record_run, checkpoint, artifact, outputs,
                                                                assert_one_line):
    recorder = record_run("vad.stages.evaluate")
    with pytest.raises(DataLayoutError, match="not a frame store") as error:
        evaluate.python_func(frames=checkpoint("model"), scores=artifact(Dataset, "scores.csv"), **outputs)
    assert_one_line(error)
    assert recorder.calls == []
