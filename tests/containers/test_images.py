"""The CPU image for real: built by docker/build-local.sh, run through podman (`make test-containers`).

Marked `containers` (deselected by `make test`): they need root, podman and the built image, and the DAG test
takes minutes. The tasks run in containers on the host network, so the moto S3 server and the MLflow server on
127.0.0.1 answer them as they answer this process.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.containers

REPO = Path(__file__).resolve().parents[2]
IMAGE = runpy.run_path(str(REPO / "components" / "_image.py"))["VAD_CPU_IMAGE"]
IMAGE_UID = 1000  # the image's `vad` user
TASKS = {"extract", "validate", "pretrain", "init-clusters", "train", "calibrate", "score", "evaluate", "champion",
         "register"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def podman_env() -> dict[str, str]:
    """The environment podman runs in here (docker/podman/containers.conf); fails unless the image is built."""
    env = {**os.environ, "CONTAINERS_CONF": str(REPO / "docker" / "podman" / "containers.conf")}
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make image` (docker/build-local.sh) first")
    if subprocess.run(["podman", "image", "exists", IMAGE], env=env).returncode != 0:
        pytest.fail(f"no image {IMAGE}: run `make image` (docker/build-local.sh) first")
    return env


@pytest.fixture(scope="module")
def docker_host(podman_env, tmp_path_factory) -> str:
    """podman's Docker-compatible API on a private socket, as kfp's DockerRunner reaches it (DOCKER_HOST)."""
    import docker

    socket = tmp_path_factory.mktemp("podman") / "podman.sock"
    url = f"unix://{socket}"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", url], env=podman_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            docker.DockerClient(base_url=url).ping()
            break
        except Exception:  # not listening yet
            if service.poll() is not None or time.monotonic() > deadline:
                service.kill()
                pytest.fail(f"podman system service did not answer on {url}")
            time.sleep(0.2)
    yield url
    service.terminate()
    service.wait(timeout=30)


def owners(root: Path) -> set[int]:
    return {path.stat().st_uid for path in root.rglob("*")}


def test_vad_runs_in_the_image_as_its_own_user(podman_env):
    done = subprocess.run(["podman", "run", "--rm", IMAGE, "sh", "-c", "id -u && vad --help"], env=podman_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    uid, _, usage = done.stdout.partition("\n")
    assert int(uid) == IMAGE_UID and "usage: vad" in usage and "extract" in usage


def test_extract_in_the_image_writes_a_store_the_host_reads(podman_env, raw_dataset, make_document, tmp_path):
    import yaml

    from vad.data.store import FrameStore

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(make_document()))
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the image's user, not this one, writes here
    done = subprocess.run(
        ["podman", "run", "--rm", "-v", f"{raw_dataset}:/data/raw:ro", "-v",
         f"{tmp_path / 'params.yaml'}:/app/p.yaml:ro", "-v", f"{out}:/out", IMAGE,
         "vad", "extract", "--params", "/app/p.yaml", "--source", "/data/raw",
         "--format", "videos", "--out", "/out/frames", "--workers", "2"],
        env=podman_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    store = FrameStore.open(out / "frames")
    assert len(store.split("train")) == 2 and len(store.split("test")) == 3  # the tiny synthetic set
    assert owners(out / "frames") == {IMAGE_UID}
    # the umask's modes, not mkstemp's 0600: the host (and any other user) reads every file
    assert all(path.stat().st_mode & 0o004 for path in (out / "frames").rglob("*"))


def test_the_whole_dag_runs_in_containers_and_registers_the_champion(docker_host, s3_server, s3_bucket, raw_dataset,
                                                                     make_document, mlflow_server, tmp_path):
    import mlflow

    s3_server.upload(s3_bucket, "datasets/tiny", raw_dataset)
    document = make_document(register={"experiment": "kfp-containers"})
    root = tmp_path / "root"
    env = {**os.environ, "DOCKER_HOST": docker_host, "VAD_IMAGE": IMAGE}  # every task, GPU stages too, on it
    command = [str(Path(sys.executable).parent / "vad"), "pipeline", "run-local", "--runner", "docker",
               "--dataset", f"s3://{s3_bucket}/datasets/tiny", "--preset", json.dumps(document), "--format",
               "videos", "--model-name", "vad-containers", "--tracking-uri", mlflow_server, "--root", str(root)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    log = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, log[-4000:]

    succeeded = re.findall(r"Task '([\w-]+)' finished with status SUCCESS", log)
    assert set(succeeded) == TASKS and len(succeeded) == len(TASKS), succeeded
    assert log.count(f"Found image '{IMAGE}'") == len(TASKS)  # each task in the built image, none pulled
    assert owners(root) - {0} == {IMAGE_UID}  # outputs written by the image's user, inside the containers

    client = mlflow.MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias("vad-containers", "champion")
    assert champion.version == "1"
    assert champion.tags["dataset_uri"] == f"s3://{s3_bucket}/datasets/tiny" and float(champion.tags["threshold"]) > 0
    run = client.get_run(champion.tags["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["vad.stage"] == "register"
    assert float(run.data.metrics["auc_micro"]) == pytest.approx(float(champion.tags["auc_micro"]))
    [summary] = [p for p in root.rglob("registration") if p.is_file()]
    assert json.loads(summary.read_text())["version"] == "1"
