"""submit() against a stand-in kfp.Client: upload, run, optional recurring run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pipelines.compile import PACKAGE
from pipelines.submit import submit

from vad.errors import ConfigError

PARAMS = {"dataset_uri": "s3://datasets/ped2", "mlflow_tracking_uri": "http://mlflow:5000", "preset": "ped2"}


class FakeClient:
    def __init__(self, pipeline_id=None):
        self.pipeline_id, self.calls = pipeline_id, []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return {"get_pipeline_id": self.pipeline_id,
                    "upload_pipeline": SimpleNamespace(pipeline_id="p1"),
                    "list_pipeline_versions": SimpleNamespace(
                        pipeline_versions=[SimpleNamespace(pipeline_version_id="v1")]),
                    "upload_pipeline_version": SimpleNamespace(pipeline_version_id="v2"),
                    "create_experiment": SimpleNamespace(experiment_id="e1"),
                    "run_pipeline": SimpleNamespace(run_id="r1"),
                    "create_recurring_run": SimpleNamespace(recurring_run_id="rr1")}[name]
        return call

    def called(self, name):
        return [(args, kwargs) for called, args, kwargs in self.calls if called == name]


def test_submit_uploads_a_new_pipeline_and_starts_a_run():
    client = FakeClient()
    result = submit("http://kfp", PACKAGE, "vad-tests", PARAMS, client=client)
    assert result == {"pipeline_id": "p1", "version_id": "v1", "run_id": "r1"}
    [(args, kwargs)] = client.called("upload_pipeline")
    assert args == (str(PACKAGE),) and kwargs == {"pipeline_name": "vad"}
    [(args, _)] = client.called("create_experiment")
    assert args == ("vad-tests",)
    [(args, kwargs)] = client.called("run_pipeline")
    assert args[0] == "e1" and kwargs["pipeline_id"] == "p1" and kwargs["version_id"] == "v1"
    assert kwargs["params"] == PARAMS | {"dataset_format": "auto", "model_name": "", "train_gpus": 1,
                                         "normal_footage_uri": ""}
    assert client.called("create_recurring_run") == []


def test_submit_adds_a_version_and_a_recurring_retraining_run():
    client = FakeClient(pipeline_id="p0")
    result = submit("http://kfp", PACKAGE, "vad", PARAMS, recurring_cron="0 0 3 * * 1", client=client)
    assert result == {"pipeline_id": "p0", "version_id": "v2", "run_id": "r1", "recurring_run_id": "rr1"}
    assert client.called("upload_pipeline") == []
    [(_, kwargs)] = client.called("create_recurring_run")
    assert kwargs["cron_expression"] == "0 0 3 * * 1" and kwargs["version_id"] == "v2"
    assert kwargs["max_concurrency"] == 1


def test_submit_checks_the_parameters_before_contacting_the_server():
    client = FakeClient()
    with pytest.raises(ConfigError, match="unknown preset 'ped9'"):
        submit("http://kfp", PACKAGE, "vad", PARAMS | {"preset": "ped9"}, client=client)
    assert client.calls == []
