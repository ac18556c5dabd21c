from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from components.champion.component import champion

from vad.errors import TrackingError


@pytest.fixture
def registry(monkeypatch):
    """A stand-in MlflowTracker whose champion is `registry.holder`; records (uri, name, alias) lookups."""
    state = SimpleNamespace(holder=None, lookups=[])

    class FakeTracker:
        def __init__(self, uri=None):
            self.uri = uri

        def champion(self, name, alias):
            state.lookups.append((self.uri, name, alias))
            return state.holder

    monkeypatch.setattr("vad.tracking.MlflowTracker", FakeTracker)
    return state


def test_champion_is_minus_one_without_a_champion(registry, frames, as_struct, make_document):
    assert champion.python_func(params=as_struct(make_document()), frames=frames, tracking_uri="http://mlflow") == -1.0
    assert registry.lookups == [("http://mlflow", "vad-tiny", "champion")]


def test_champion_returns_the_auc_of_the_champion_on_the_same_data(registry, frames, make_document):
    same = frames.metadata["data_fingerprint"]
    registry.holder = SimpleNamespace(tags={"auc_micro": "0.93", "data_fingerprint": same})
    document = make_document(register={"model_name": "vad-ped2", "alias": "best"})
    assert champion.python_func(params=document, frames=frames, tracking_uri="http://mlflow") == 0.93
    assert registry.lookups == [("http://mlflow", "vad-ped2", "best")]


def test_champion_on_other_data_does_not_count(registry, frames, make_document):
    registry.holder = SimpleNamespace(tags={"auc_micro": "0.93", "data_fingerprint": "0" * 64})
    assert champion.python_func(params=make_document(), frames=frames, tracking_uri="http://mlflow") == -1.0


def test_a_champion_without_an_auc_counts_as_zero(registry, frames, make_document):
    # registered from unlabelled footage: an evaluated model (AUC > 0) beats it, an unlabelled one (0.0) does not
    registry.holder = SimpleNamespace(tags={"data_fingerprint": frames.metadata["data_fingerprint"]})
    assert champion.python_func(params=make_document(), frames=frames, tracking_uri="http://mlflow") == 0.0


def test_champion_fails_with_one_line_when_mlflow_is_unreachable(frames, make_document, assert_one_line):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TrackingError, match=f"MLflow server http://127.0.0.1:{port} is unreachable") as error:
        champion.python_func(params=make_document(), frames=frames, tracking_uri=f"http://127.0.0.1:{port}")
    assert_one_line(error)
