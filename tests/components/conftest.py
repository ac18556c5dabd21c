"""Component fixtures: artifacts in tmp_path, a recorder standing in for a stage's `run`, Struct round trips.

Component tests call `<component>.python_func(...)` directly, so they need the repository root (the folder
holding `components/`) on sys.path.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FINGERPRINT = "f" * 64


@pytest.fixture(autouse=True)
def no_mlflow(monkeypatch):
    """No MLflow unless a test says so: components set MLFLOW_TRACKING_URI, and monkeypatch restores it after."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@dataclass
class Recorder:
    """Stands in for a stage `run`: records each call, optionally writes outputs, returns a StageResult."""

    metrics: dict = field(default_factory=dict)
    write: object = None  # callable(args) that writes what the real stage would
    calls: list = field(default_factory=list)

    def __call__(self, *args, **kwargs):
        from vad.stages import StageResult

        self.calls.append((args, kwargs))
        if self.write is not None:
            self.write(args)
        return StageResult(metrics=dict(self.metrics))


@pytest.fixture
def record_run(monkeypatch):
    """record_run("vad.stages.train", metrics={...}, write=fn) replaces that module's `run`; returns the Recorder."""
    import importlib

    def install(module: str, **kwargs) -> Recorder:
        recorder = Recorder(**kwargs)
        monkeypatch.setattr(importlib.import_module(module), "run", recorder)
        return recorder

    return install


@pytest.fixture
def as_struct():
    """A params document as it arrives through a protobuf Struct: every number a float."""
    from google.protobuf import json_format, struct_pb2

    def convert(document: dict) -> dict:
        struct = struct_pb2.Struct()
        struct.update(json.loads(json.dumps(document)))
        return json_format.MessageToDict(struct)

    return convert


@pytest.fixture
def artifact(tmp_path):
    """artifact(Kind, name, marker=None, **metadata): an artifact at tmp_path/name; a folder holding `marker`."""

    def make(kind, name: str, marker: str | None = None, **metadata):
        path = tmp_path / name
        if marker is not None:
            path.mkdir(parents=True)
            (path / marker).write_text("{}")
        return kind(name=name, uri=str(path), metadata=dict(metadata))

    return make


@pytest.fixture
def frames(artifact):
    """A frame store Dataset as extract leaves it: manifest.json inside, lineage in the metadata."""
    from kfp.dsl import Dataset

    return artifact(Dataset, "frames", "manifest.json", dataset_uri="s3://bucket/ped2", dataset="tiny",
                    data_fingerprint=FINGERPRINT)


@pytest.fixture
def checkpoint(artifact):
    """checkpoint(name): a Model folder holding checkpoint.pt."""
    from kfp.dsl import Model

    return lambda name: artifact(Model, name, "checkpoint.pt")


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


@pytest.fixture
def assert_one_line():
    return one_line


@dataclass
class FakeRun:
    """Stands in for vad.pipeline_run.PipelineRun: records how it was opened and whether a stage failed in it."""

    run_id: str = "run-1"
    opened: list = field(default_factory=list)
    failed: list = field(default_factory=list)

    def stage(self, name):
        from contextlib import contextmanager

        @contextmanager
        def block():
            try:
                yield self
            except BaseException as error:
                self.failed.append((name, error))
                raise

        return block()

    def write(self, path):
        Path(path).write_text(json.dumps({"mlflow_run_id": self.run_id}))


@pytest.fixture
def fake_run(monkeypatch):
    """PipelineRun.open replaced by a FakeRun (the MLflow side is tested in tests/integration/test_pipeline_run.py)."""
    run = FakeRun()

    def open_run(params, **kwargs):
        run.opened.append(kwargs)
        return run

    monkeypatch.setattr("vad.pipeline_run.PipelineRun.open", open_run)
    return run
