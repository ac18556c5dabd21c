"""The whole DAG through kfp's local SubprocessRunner: S3 dataset in, model registered in a real MLflow server."""

from __future__ import annotations

import json

import pytest
from pipelines.local import run_local


def test_pipeline_runs_locally_from_s3_and_registers_the_champion(s3_server, s3_bucket, raw_dataset, make_document,
                                                                   mlflow_server, tmp_path, capfd):
    import mlflow

    s3_server.upload(s3_bucket, "datasets/tiny", raw_dataset)
    # Normal footage for the calibrate task: the tiny set's own training videos (this checks the wiring, not a
    # threshold), two of 30 frames, 26 clips each.
    s3_server.upload(s3_bucket, "footage/tiny", raw_dataset / "train")
    # train_gpus=2: the train task runs torchrun with two processes (gloo on this CPU-only machine).
    root = run_local(f"s3://{s3_bucket}/datasets/tiny", mlflow_tracking_uri=mlflow_server,
                     # its own experiment: MLflow keeps one dataset per (experiment, name, digest), and other
                     # tests log the same tiny frames from a local folder
                     preset=make_document(register={"experiment": "kfp-local"}), dataset_format="videos",
                     model_name="vad-kfp-local",
                     normal_footage_uri=f"s3://{s3_bucket}/footage/tiny", pipeline_root=tmp_path / "root",
                     train_gpus=2)
    assert "2 processes (DDP)" in "".join(capfd.readouterr())

    client = mlflow.MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias("vad-kfp-local", "champion")
    assert champion.version == "1"
    assert champion.tags["dataset_uri"] == f"s3://{s3_bucket}/datasets/tiny"
    assert len(champion.tags["data_fingerprint"]) == 64 and champion.tags["kfp_run_id"]
    run = client.get_run(champion.tags["run_id"])
    assert float(run.data.metrics["auc_micro"]) == pytest.approx(float(champion.tags["auc_micro"]))
    [summary] = [p for p in root.rglob("registration") if p.is_file()]
    assert json.loads(summary.read_text())["version"] == "1"
    # One MLflow run for the whole DAG: opened by pretrain, its epochs logged by the training tasks as they ran
    # (with their throughput, which only live logging has), finished by register.
    assert run.info.status == "FINISHED" and run.data.tags["vad.stage"] == "register"
    assert "pretrain_clips_per_s" in run.data.metrics and "train_clips_per_s" in run.data.metrics
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.source_type == "s3" and f"s3://{s3_bucket}/datasets/tiny" in dataset.dataset.source
    # The calibrate task's threshold travels with the registered model. It was chosen on the footage and the
    # hold-out (10% of each 30-frame training video: at most 3 frames each).
    assert float(champion.tags["threshold"]) > 0
    [calibration] = [p for p in root.rglob("calibration") if p.is_file()]
    assert 2 * 26 < json.loads(calibration.read_text())["frames"] <= 2 * 26 + 2 * 3


def test_pipeline_on_footage_without_labels_registers_the_first_model(raw_dataset, make_document, mlflow_server,
                                                                     tmp_path):
    import shutil

    import mlflow

    footage = tmp_path / "camera"
    shutil.copytree(raw_dataset, footage)
    (footage / "labels.csv").unlink()  # test videos to score, none labelled: a camera's footage
    run_local(str(footage), mlflow_tracking_uri=mlflow_server, preset=make_document(register={"experiment": "kfp-nl"}),
              dataset_format="videos", model_name="vad-kfp-unlabelled", pipeline_root=tmp_path / "root")
    champion = mlflow.MlflowClient(mlflow_server).get_model_version_by_alias("vad-kfp-unlabelled", "champion")
    assert champion.version == "1"
    assert "auc_micro" not in champion.tags and float(champion.tags["threshold"]) > 0
