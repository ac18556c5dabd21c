"""One MLflow run per pipeline execution (vad.pipeline_run), against a real MLflow server on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest
import yaml
from tests.conftest import tiny_document

from vad import cli

DEADLINE_S = 600  # only a guard against a hang: nothing here asserts how long anything took


def _wait_for(what, condition, process=None):
    deadline = time.monotonic() + DEADLINE_S
    while (value := condition()) is None:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the stage exited ({process.returncode}) before {what}: {process.log()[-2000:]}")
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE_S} s"
        time.sleep(0.2)
    return value


def _run_id(run_file):
    try:
        return json.loads(run_file.read_text())["mlflow_run_id"]
    except (OSError, ValueError, KeyError):
        return None


def test_train_logs_epochs_while_it_runs_and_a_terminated_stage_marks_the_run_failed(
        tmp_path, trained, mlflow_server):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(tiny_document(train={"epochs": 10_000, "lr_milestones": [10_000]})))
    run_file = tmp_path / "run.json"
    command = [sys.executable, "-m", "vad", "train", "--params", str(params_file), "--frames", str(trained["frames"]),
               "--init", str(trained["init"]), "--out", str(tmp_path / "train"), "--run-file", str(run_file)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    client = mlflow.MlflowClient(mlflow_server)

    def start():
        log = tmp_path / f"stage-{time.monotonic_ns()}.log"  # a file, not a pipe: a full pipe would block the stage
        with open(log, "w") as handle:
            process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
        process.log = log.read_text
        return process

    process = start()
    try:
        run_id = _wait_for("run file", lambda: _run_id(run_file), process)
        # Visible while training runs: epochs appear one by one, the run is RUNNING.
        steps = _wait_for("two logged epochs", lambda: (
            h if len(h := client.get_metric_history(run_id, "train_loss")) >= 2 else None), process)
        assert [m.step for m in steps[:2]] == [1, 2]
        assert client.get_run(run_id).info.status == "RUNNING"
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, process.log()[-2000:]
    assert process.log().strip().splitlines()[-1] == "terminated"
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["vad.failed_stage"] == "train" and "stopped" in run.data.tags["vad.failure"]

    # Re-running the stage with the same params resumes the same execution: the same run, RUNNING again.
    process = start()
    try:
        _wait_for("the run RUNNING again", lambda: (
            True if client.get_run(run_id).info.status == "RUNNING" else None), process)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        process.kill()
    assert _run_id(run_file) == run_id
    assert client.get_run(run_id).info.status == "FAILED"


def test_stages_log_into_one_run_that_register_completes_and_finishes(tmp_path, frame_store, mlflow_server,
                                                                       monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.chdir(tmp_path)
    document = tiny_document(pretrain={"epochs": 2}, register={"model_name": "vad-live-run"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    frames, run_file = str(frame_store), tmp_path / "run.json"
    tracked = ["--run-file", str(run_file)]
    client = mlflow.MlflowClient(mlflow_server)
    stages = [["pretrain", "--frames", frames, "--out", "pretrain"],
              ["init-clusters", "--frames", frames, "--pretrained", "pretrain", "--out", "init"],
              ["train", "--frames", frames, "--init", "init", "--out", "train"],
              ["score", "--frames", frames, "--model", "train", "--out", "scores.csv"],
              ["evaluate", "--frames", frames, "--scores", "scores.csv", "--metrics", "eval.json", "--plots", "plots"]]
    run_ids = []
    for argv in stages:
        assert cli.main([*argv, *tracked]) == 0
        run_ids.append(_run_id(run_file))
        assert client.get_run(run_ids[-1]).info.status == "RUNNING"
    assert len(set(run_ids)) == 1
    run_id = run_ids[0]
    assert [m.step for m in client.get_metric_history(run_id, "pretrain_loss")] == [1, 2]
    assert [m.step for m in client.get_metric_history(run_id, "train_clips_per_s")] == [1]

    assert cli.main(["register", "--frames", frames, "--pretrained", "pretrain", "--model", "train",
                     "--metrics", "eval.json", "--plots", "plots", "--out", "register.json", "--lineage",
                     "lineage.json", "--artifact", "params.yaml", "--artifact", "dvc.lock", *tracked]) == 0
    summary = json.loads((tmp_path / "register.json").read_text())
    assert summary["run_id"] == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert "Pipeline execution on **tiny**" in run.data.tags["mlflow.note.content"]
    assert run.data.tags["data_fingerprint"] == summary["data_fingerprint"]
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.name == "tiny" and summary["data_fingerprint"].startswith(dataset.digest)
    artifacts = {a.path for folder in ("", "pipeline", "plots") for a in client.list_artifacts(run_id, folder)}
    assert {"pipeline/params.yaml", "pipeline/dvc.lock", "plots/losses.png", "eval.json"} <= artifacts
    version = client.get_model_version("vad-live-run", summary["version"])
    assert version.run_id == run_id and "micro AUC" in version.description
    assert summary["data_fingerprint"][:16] in version.description
    lineage = json.loads((tmp_path / "lineage.json").read_text())
    assert lineage == {"model_name": "vad-live-run", "model_digest": version.tags["model_digest"],
                       "data_fingerprint": summary["data_fingerprint"], "auc_micro": summary["auc_micro"]}

    # A stage handed a FINISHED run is a new execution: a new run, which says which one it continues.
    assert cli.main(["train", "--frames", frames, "--init", "init", "--out", "train2", *tracked]) == 0
    new = client.get_run(_run_id(run_file))
    assert new.info.run_id != run_id and new.data.tags["vad.continues_run"] == run_id
    assert new.info.status == "RUNNING"


def test_a_failing_stage_marks_the_run_failed_with_its_reason(tmp_path, frame_store, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_document()))
    run_file = tmp_path / "run.json"
    assert cli.main(["pretrain", "--frames", str(frame_store), "--out", "pretrain", "--run-file", str(run_file)]) == 0
    # init-clusters from a folder without a checkpoint: the stage's own one-line error, and the run FAILED.
    code = cli.main(["init-clusters", "--frames", str(frame_store), "--pretrained", "missing", "--out", "init",
                     "--run-file", str(run_file)])
    assert code == 2
    run = mlflow.MlflowClient(mlflow_server).get_run(_run_id(run_file))
    assert run.info.status == "FAILED" and run.data.tags["vad.failed_stage"] == "init_clusters"
    assert "checkpoint" in run.data.tags["vad.failure"] and "not found" in run.data.tags["vad.failure"]


@pytest.mark.parametrize("content", ["", "{not json", '{"other": 1}'])
def test_an_unreadable_run_file_starts_a_new_run(tmp_path, frame_store, mlflow_server, monkeypatch, content):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_document()))
    run_file = tmp_path / "run.json"
    run_file.write_text(content)
    assert cli.main(["pretrain", "--frames", str(frame_store), "--out", "pretrain", "--run-file", str(run_file)]) == 0
    assert mlflow.MlflowClient(mlflow_server).get_run(_run_id(run_file)).info.status == "RUNNING"
