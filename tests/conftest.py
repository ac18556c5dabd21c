"""Shared fixtures: tiny params, a tiny synthetic dataset and frame store, a trained tiny model."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from vad.config import Params, parse_params

REPO = Path(__file__).resolve().parents[1]

# Tiny but complete: 32x32 grayscale, width-4 network, one epoch per stage (seconds on 2 cores).
TINY = {
    "seed": 0,
    "device": "cpu",
    "data": {"dataset": "tiny", "image_size": [32, 32], "channels": 1, "clip_len": 5},
    "synth": {"seed": 1, "train_videos": 2, "test_videos": 3, "frames": 30, "height": 48, "width": 64},
    "model": {"width": 4, "clusters": 4},
    "pretrain": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
    "init_clusters": {"sample_clips": 16, "max_vectors": 2000, "batch_size": 8},
    "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "lr_milestones": [1], "center_lr": 1e-4},
    "score": {"batch_size": 16},
    "detect": {"holdout_share": 0.1, "fps": 10.0},  # the tiny synthetic videos' rate
    "register": {"experiment": "tests"},
}


def tiny_document(**sections) -> dict:
    """TINY with some sections updated, e.g. tiny_document(model={"kmeans": False})."""
    document = {key: (dict(value) if isinstance(value, dict) else value) for key, value in TINY.items()}
    for section, values in sections.items():
        if isinstance(values, dict):
            document[section] = {**document.get(section, {}), **values}
        else:
            document[section] = values
    return document


def tiny_params(**sections) -> Params:
    return parse_params(tiny_document(**sections))


@pytest.fixture(scope="session")
def params() -> Params:
    return tiny_params()


@pytest.fixture(scope="session")
def raw_dataset(tmp_path_factory, params) -> Path:
    from vad.stages import synth

    root = tmp_path_factory.mktemp("raw") / "raw"
    synth.run(params.synth, root)
    return root


@pytest.fixture(scope="session")
def frame_store(tmp_path_factory, params, raw_dataset) -> Path:
    from vad.stages import extract

    out = tmp_path_factory.mktemp("frames") / "frames"
    extract.run(params.data, raw_dataset, out)
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory, params, frame_store) -> dict[str, Path]:
    """Every stage up to evaluate, run once for the session: {name: path}."""
    from vad.stages import evaluate, init_clusters, pretrain, score, train

    root = tmp_path_factory.mktemp("trained")
    paths = {"frames": frame_store, "pretrain": root / "pretrain", "init": root / "init", "train": root / "train",
             "scores": root / "scores.csv", "metrics": root / "eval.json", "plots": root / "plots"}
    pretrain.run(params, frame_store, paths["pretrain"])
    init_clusters.run(params, frame_store, paths["pretrain"], paths["init"])
    train.run(params, frame_store, paths["init"], paths["train"])
    score.run(params, frame_store, paths["train"], paths["scores"])
    evaluate.run(frame_store, paths["scores"], paths["metrics"], paths["plots"])
    return paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(command: list[str], ready_url: str, log_path: Path, env: dict | None = None,
                 timeout: float = 120) -> subprocess.Popen:
    """Start `command` (a server), logging to `log_path`, and wait until `ready_url` answers."""
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=log_path.parent)
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(ready_url, timeout=2).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = log_path.read_text()[-3000:]
                raise RuntimeError(f"{command[0]} {command[1]} did not start:\n{tail}") from None
            time.sleep(0.5)


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` (sqlite backend, local artifacts) on 127.0.0.1; yields its URI."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    uri = f"http://127.0.0.1:{port}"
    process = start_server(
        [mlflow, "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], f"{uri}/health", root / "server.log", env, timeout=90)
    yield uri
    stop_server(process)


@pytest.fixture(scope="session")
def make_params():
    """tiny_params as a fixture (conftest is not importable under --import-mode=importlib)."""
    return tiny_params


@pytest.fixture(scope="session")
def make_document():
    return tiny_document


def pretrain_steps(params: Params, frames: Path, perf: dict, device: str = "cpu", steps: int = 4):
    """Losses (steps, 1 + streams) of `steps` pretraining steps on fixed batches with the `perf` switches
    resolved for `device`, and the model after them."""
    import numpy as np
    import torch

    from vad.config import PerfParams
    from vad.data.clips import ClipSource
    from vad.data.store import FrameStore
    from vad.models import build_model
    from vad.models.losses import autoencoder_losses
    from vad.training import resolve_runtime, seed_everything

    seed_everything(params.seed)
    runtime = resolve_runtime(torch.device(device), PerfParams(**perf))
    clips = ClipSource.from_split(FrameStore.open(frames), "train", params.data.clip_len, runtime.device)
    model = build_model(params.model, params.data).to(runtime.device)
    forward = runtime.prepare(model, ignore=["kmeans.centers"])
    optimizer = runtime.adam(model.autoencoder_parameters(), lr=params.pretrain.lr)
    order = torch.randperm(len(clips), generator=torch.Generator().manual_seed(1))
    rows = []
    for i in range(steps):
        losses = autoencoder_losses(forward(clips.batch(order[8 * i : 8 * i + 8])), params.model.w_grad,
                                    params.model.gradient_on)
        assert all(v.dtype == torch.float32 for v in losses.values())  # losses in float32, autocast or not
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        rows.append([total.item(), *(v.item() for v in losses.values())])
    return np.array(rows), model


@pytest.fixture(scope="session", name="pretrain_steps")
def pretrain_steps_fixture():
    """`pretrain_steps` as a fixture."""
    return pretrain_steps


# Real S3 (moto server) and HTTP endpoints on 127.0.0.1, shared by the integration and pipeline tests.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
AWS_CLEARED = ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION")


@dataclass(frozen=True)
class S3Server:
    """A moto server; AWS_ENDPOINT_URL and test credentials point boto3 (and dvc) at it while it runs."""

    endpoint: str

    def client(self, service: str = "s3", **kwargs):
        import boto3

        return boto3.session.Session().client(service, **kwargs)

    def upload(self, bucket: str, prefix: str, root: Path, client=None) -> None:
        """Every file under `root` to s3://bucket/prefix/<relative path> (through `client`, default a new one)."""
        client = client or self.client()
        for path in sorted(root.rglob("*")):
            if path.is_file():
                client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")

    def require_auth(self, free_requests: float) -> None:
        """Check signatures and IAM permissions after `free_requests` more requests (inf: never)."""
        # a raw body: with urllib's default form content type the server would see no data
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", data=str(free_requests).encode(),
                                         headers={"Content-Type": "text/plain"}, method="POST")
        urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    isolated = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        for name in AWS_CLEARED:
            patch.delenv(name, raising=False)
        for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint,
                            # no ~/.aws files: only the variables above count
                            "AWS_CONFIG_FILE": str(isolated / "config"),
                            "AWS_SHARED_CREDENTIALS_FILE": str(isolated / "credentials")}.items():
            patch.setenv(name, value)
        try:
            yield S3Server(endpoint)
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, empty bucket on the moto server."""
    name = f"vad-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@dataclass(frozen=True)
class HttpServer:
    """A static file server: files written under `root` are served at `url`/<relative path>."""

    root: Path
    url: str


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keeps pytest output free of access logs
        pass


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
