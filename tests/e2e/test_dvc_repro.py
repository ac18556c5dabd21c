"""`dvc repro` of the whole pipeline in a temporary copy of the repository, tracked to a real MLflow server."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import yaml

from vad.data.store import FrameStore

REPO = Path(__file__).resolve().parents[2]
KEEP = ["dvc.yaml", "pyproject.toml", "src", "configs", ".dvc", ".dvcignore", ".gitignore"]


def _run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{args}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def test_dvc_repro_runs_every_stage_registers_and_is_then_up_to_date(tmp_path, mlflow_server, make_document):
    project = tmp_path / "project"
    project.mkdir()
    for name in KEEP:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
        else:
            shutil.copy(source, project / name)
    document = make_document(register={"model_name": "vad-e2e"})
    (project / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": mlflow_server,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    _run(["git", "init", "-q"], project, env)
    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-qm", "copy"], project, env)
    dvc = [sys.executable, "-m", "dvc"]

    log = _run([*dvc, "repro"], project, env)
    stages = ["synth", "extract", "validate", "pretrain", "init_clusters", "train", "score", "evaluate", "register"]
    for stage in stages:
        assert f"Running stage '{stage}'" in log

    summary = json.loads((project / "reports" / "register.json").read_text())
    evaluation = json.loads((project / "metrics" / "eval.json").read_text())
    assert summary["model_name"] == "vad-e2e" and summary["promoted"] is True
    assert summary["auc_micro"] == evaluation["auc_micro"] and 0.0 <= evaluation["auc_micro"] <= 1.0
    client = mlflow.MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias("vad-e2e", "champion")
    assert champion.version == summary["version"] and champion.run_id == summary["run_id"]
    assert (project / "dvc.lock").is_file() and (project / "plots" / "roc.csv").is_file()
    # The training stages logged into the run that register finished (the run id passed through the run file).
    assert json.loads((project / "reports" / "mlflow-run.json").read_text())["mlflow_run_id"] == summary["run_id"]
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED" and "pretrain_clips_per_s" in run.data.metrics
    # `dvc plots show` draws the ROC, both loss curves and one score image per test video, with titled axes.
    shown = json.loads(_run([*dvc, "plots", "show", "--json"], project, env))["data"]
    videos = [v.id for v in FrameStore.open(project / "data" / "frames").split("test")]
    assert {"ROC", "Pretraining losses", "Alternating training losses"} <= set(shown)
    assert {f"plots/scores/{video}.png" for video in videos} <= set(shown)
    # `dvc exp show` opens with the evaluation: auc_micro before any data count.
    columns = next(csv.reader(io.StringIO(_run([*dvc, "exp", "show", "--csv"], project, env))))
    assert columns.index("auc_micro") < columns.index("abnormal_frames") < columns.index("seed")

    again = _run([*dvc, "repro"], project, env)
    assert "Running stage" not in again
    status = _run([*dvc, "status"], project, env)
    assert "up to date" in status
    assert len(client.search_model_versions("name='vad-e2e'")) == 1

    # Changing one train value re-runs train and what follows it, not the data or pretraining stages.
    document["train"]["lambda_r"] = 0.2
    (project / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    changed = _run([*dvc, "repro"], project, env)
    assert "Running stage 'train'" in changed and "Running stage 'register'" in changed
    assert "Running stage 'pretrain'" not in changed and "Running stage 'extract'" not in changed

    # An ablation as the README runs it: queued from the commit, run in a temporary copy. The experiment
    # keeps its metrics (cached outputs: `dvc exp show` reads them), the run-cache restores the stages it
    # does not change, and its MLflow run goes to the server.
    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-qm", "lambda_r 0.2"], project, env)
    _run([*dvc, "exp", "run", "--queue", "-S", "train.lambda_r=0.5", "-n", "lambda-half"], project, env)
    ablation = _run([*dvc, "exp", "run", "--run-all"], project, env)
    assert "Running stage 'train'" in ablation and "Running stage 'register'" in ablation
    assert "Running stage 'extract'" not in ablation and "Running stage 'pretrain'" not in ablation
    table = {row["Experiment"] or row["rev"]: row for row in
             csv.DictReader(io.StringIO(_run([*dvc, "exp", "show", "--csv"], project, env)))}
    assert float(table["lambda-half"]["train.lambda_r"]) == 0.5
    assert 0.0 <= float(table["lambda-half"]["auc_micro"]) <= 1.0
    assert float(table["lambda-half"]["auc_micro"]) != float(table["workspace"]["auc_micro"])
    assert len(client.search_model_versions("name='vad-e2e'")) == 3
