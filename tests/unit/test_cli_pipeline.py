"""`vad pipeline compile | run-local | submit`: thin wrappers over pipelines/, run from the repository root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vad.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_pipeline_compile_writes_the_pipeline_yaml(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(REPO)
    assert main(["pipeline", "compile", "--out", str(tmp_path / "p.yaml")]) == 0
    spec, platform = yaml.safe_load_all((tmp_path / "p.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == "vad" and "kubernetes" in platform["platforms"]
    assert capsys.readouterr().out.strip() == str(tmp_path / "p.yaml")


def test_pipeline_outside_the_repository_root_fails_in_one_line(monkeypatch, tmp_path, caplog):
    monkeypatch.chdir(tmp_path)
    assert main(["pipeline", "compile"]) == 2
    assert "run `vad pipeline` from the repository root" in caplog.text


@pytest.mark.parametrize(("option", "message"), [(["--preset", "ped3"], "unknown preset 'ped3'"),
                                               (["--train-gpus", "0"], "train_gpus must be an integer of at "
                                                                       "least 1, got 0")])
def test_pipeline_run_local_refuses_bad_arguments_before_running(monkeypatch, tmp_path, caplog, option, message):
    monkeypatch.chdir(REPO)
    code = main(["pipeline", "run-local", "--dataset", str(tmp_path), *option, "--root", str(tmp_path / "root")])
    assert code == 2 and message in caplog.text
    assert not (tmp_path / "root").exists()


def test_pipeline_run_local_refuses_an_unsupported_scheme(monkeypatch, tmp_path, caplog):
    monkeypatch.chdir(REPO)
    assert main(["pipeline", "run-local", "--dataset", "ftp://example.com/ped2", "--root", str(tmp_path / "r")]) == 2
    assert "unsupported dataset_uri ftp://example.com/ped2" in caplog.text


def test_pipeline_submit_reads_a_params_file_and_passes_the_schedule(monkeypatch, tmp_path, capsys, make_document):
    import importlib

    monkeypatch.chdir(REPO)
    calls = []
    submit_module = importlib.import_module("pipelines.submit")
    monkeypatch.setattr(submit_module, "submit",
                        lambda *args, **kwargs: calls.append((args, kwargs)) or {"run_id": "r"})
    params_file = tmp_path / "tiny.yaml"
    params_file.write_text(yaml.safe_dump(make_document()))

    assert main(["pipeline", "submit", "--host", "http://kfp", "--dataset", "s3://b/tiny", "--preset", str(params_file),
                 "--tracking-uri", "http://mlflow", "--cron", "0 0 3 * * 1", "--experiment", "nightly",
                 "--train-gpus", "4", "--normal-footage", "s3://b/lobby"]) == 0

    [(args, kwargs)] = calls
    host, package, experiment, params = args
    assert (host, package.name, experiment, kwargs) == ("http://kfp", "vad_pipeline.yaml", "nightly",
                                                        {"recurring_cron": "0 0 3 * * 1"})
    assert params["preset"]["model"]["width"] == 4 and params["dataset_uri"] == "s3://b/tiny"
    assert params["train_gpus"] == 4 and params["normal_footage_uri"] == "s3://b/lobby"
    assert json.loads(capsys.readouterr().out) == {"run_id": "r"}


def test_pipeline_run_local_in_containers_needs_an_mlflow_server(monkeypatch, tmp_path, caplog):
    # a task container cannot open ./mlflow.db: refused before any container starts
    monkeypatch.chdir(REPO)
    code = main(["pipeline", "run-local", "--runner", "docker", "--dataset", str(tmp_path), "--tracking-uri",
                 f"sqlite:///{tmp_path / 'mlflow.db'}", "--root", str(tmp_path / "root")])
    assert code == 2 and "the docker runner needs an MLflow server (--tracking-uri http://...)" in caplog.text
    assert not (tmp_path / "root").exists()


def test_docker_runner_sees_this_machine_s_endpoints_dataset_and_credentials(monkeypatch, tmp_path):
    # What the container test (tests/containers) relies on, checked without a container engine.
    monkeypatch.syspath_prepend(str(REPO))
    from pipelines.local import _docker_runner

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t")
    monkeypatch.setenv("HOME_SECRET", "not for containers")
    arguments = {"dataset_uri": str(tmp_path / "raw"), "mlflow_tracking_uri": "http://127.0.0.1:5000"}
    runner = _docker_runner(arguments, tmp_path / "root")
    args = runner.container_run_args
    assert args["network_mode"] == "host"
    assert args["environment"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert args["environment"]["MLFLOW_TRACKING_TOKEN"] == "t" and "HOME_SECRET" not in args["environment"]
    [mount] = args["mounts"]
    assert mount["Source"] == mount["Target"] == str(tmp_path / "raw") and mount["ReadOnly"]
    assert (tmp_path / "root").stat().st_mode & 0o7777 == 0o1777  # the image's user writes the task outputs

    footage = {**arguments, "normal_footage_uri": str(tmp_path / "lobby")}
    mounts = _docker_runner(footage, tmp_path / "root3").container_run_args["mounts"]
    assert [m["Source"] for m in mounts] == [str(tmp_path / "raw"), str(tmp_path / "lobby")]
    assert all(m["Source"] == m["Target"] and m["ReadOnly"] for m in mounts)

    remote = {"dataset_uri": "s3://bucket/ped2", "mlflow_tracking_uri": "https://mlflow.example.com",
              "normal_footage_uri": "s3://bucket/lobby"}
    assert _docker_runner(remote, tmp_path / "root2").container_run_args["mounts"] == []
