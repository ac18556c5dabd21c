"""The one MLflow run of a pipeline execution: opened by the first training stage, joined by the later ones.

`pretrain` opens it, `train` and `register` join it, `register` finishes it. Each stage logs as it runs (the
losses of every epoch when the epoch ends), and a stage that fails or is stopped marks the run FAILED, with
the stage and the reason in its tags; re-running the stage (a resumed execution) sets it RUNNING again.

The run id travels between stages as a small JSON file under DVC (`--run-file`, deliberately not a DVC
output: run ids differ on every machine, and DVC's hashes must not) and as the `mlflow_run_id` metadata of
the model artifacts on Kubeflow. A stage handed a run that has already FINISHED (its upstream stage came
from DVC's run-cache or an earlier pipeline execution) opens a new run, tagged with the one it continues.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vad.atomic import atomic_write_text
from vad.errors import TrackingError

__all__ = ["PipelineRun", "read_run_file", "component_run", "RUN_ID_KEY"]

log = logging.getLogger(__name__)

RUN_ID_KEY = "mlflow_run_id"  # key in the run file and in Kubeflow artifact metadata


def read_run_file(path: Path | None) -> tuple[str | None, str | None]:
    """(run id, params digest) recorded in `path`; (None, None) when there is no file (or no path)."""
    if path is None or not path.is_file():
        return None, None
    try:
        document = json.loads(path.read_text())
        return str(document[RUN_ID_KEY]), document.get("params")
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring %s: not a run file (delete it, or let this stage overwrite it)", path)
        return None, None


def params_digest(params: Any) -> str:
    """Identifies the params of an execution: a run is joined only by stages run with the same ones."""
    text = json.dumps(params.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_commit() -> str:
    """HEAD, with `-dirty` when tracked files differ from it; `unknown` outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def flatten(document: dict, prefix: str = "") -> dict[str, str]:
    """Nested params -> {'train.lr': '0.001', ...} for MLflow."""
    flat: dict[str, str] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return flat


def _system_tags() -> dict[str, str]:
    import torch

    tags = {"system.python": platform.python_version(), "system.torch": torch.__version__,
            "system.platform": platform.platform(), "system.cpu_count": str(__import__("os").cpu_count())}
    if torch.cuda.is_available():
        tags["system.gpus"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        tags["system.cuda"] = str(torch.version.cuda)
    return tags


class PipelineRun:
    """A handle on the pipeline execution's MLflow run, through the client API (no global active run).

    Logging failures during training are warnings, not errors: an MLflow server that goes away costs the
    live view, never the training. `register`, which must record the model, fails on them instead.
    """

    def __init__(self, tracker: Any, run_id: str, params: str = "", *, joined: bool = False) -> None:
        self.tracker, self.run_id, self.params, self.joined = tracker, run_id, params, joined
        self._broken = False

    @property
    def client(self) -> Any:
        """The MLflow client, bounded by VAD_NETWORK_TIMEOUT."""
        return self.tracker.client

    @classmethod
    def open(cls, params: Any, *, stage: str, frames_dir: Path, previous: str | None = None,
             previous_params: str | None = None, source_uri: str | None = None,
             tracking_uri: str | None = None) -> PipelineRun:
        """Join the run `previous`, else start the run of a new pipeline execution.

        `previous` is joined unless it is missing, FINISHED, or was opened for other params (`previous_params`,
        when given, is not the digest of `params`).

        A new run gets its name, description, tags (dataset, data fingerprint, git commit, system), the params
        and the dataset as an MLflow input (name, source URI, fingerprint as digest).
        """
        from mlflow.exceptions import MlflowException

        from vad.data.store import FrameStore, fingerprint
        from vad.tracking import MlflowTracker

        tracker = MlflowTracker(tracking_uri)
        digest = params_digest(params)
        with tracker.calls("nothing was trained yet; start the server or unset MLFLOW_TRACKING_URI"):
            experiment = tracker.mlflow.set_experiment(params.registry.experiment).experiment_id
            if previous:
                try:
                    found = tracker.client.get_run(previous)
                except MlflowException:
                    found = None
                    log.warning("MLflow run %s not found at %s: starting a new one", previous, tracker.uri)
                same = previous_params in (None, digest)
                if found is not None and found.info.status != "FINISHED" and same:
                    tracker.client.update_run(previous, status="RUNNING")
                    tracker.client.set_tag(previous, "vad.stage", stage)
                    log.info("%s joins MLflow run %s", stage, previous)
                    return cls(tracker, previous, digest, joined=True)
            store = FrameStore.open(frames_dir)
            data = fingerprint(frames_dir)
            commit = git_commit()
            tags = {"dataset": store.dataset, "data_fingerprint": data, "git_commit": commit, "vad.stage": stage,
                    "mlflow.source.git.commit": commit.removesuffix("-dirty"),
                    "mlflow.note.content": _description(params, store.dataset, data, commit, previous),
                    **_system_tags()}
            if previous:
                tags["vad.continues_run"] = previous
            run = tracker.client.create_run(experiment, run_name=f"{store.dataset}-{data[:8]}", tags=tags)
            run_id = run.info.run_id
            values = flatten(params.model_dump(mode="json", by_alias=True))
            from mlflow.entities import Param

            items = [Param(k, v[:6000]) for k, v in values.items()]
            for first in range(0, len(items), 100):  # the server takes at most 100 params per batch
                tracker.client.log_batch(run_id, params=items[first : first + 100])
            _log_dataset(tracker.client, run_id, store.dataset, source_uri or frames_dir.resolve().as_uri(), data)
        log.info("%s opened MLflow run %s (%s)", stage, run_id, tracker.uri)
        return cls(tracker, run_id, digest)

    def write(self, path: Path | None) -> None:
        """Record the run id in the run file `path` (for the next stage under DVC)."""
        if path is not None:
            atomic_write_text(path, json.dumps({RUN_ID_KEY: self.run_id, "params": self.params,
                                                "tracking_uri": self.tracker.uri}) + "\n")

    def log_epoch(self, stage: str, record: dict[str, float]) -> None:
        """Log one epoch's figures as `<stage>_<name>` at step = epoch, now."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        step = int(record["epoch"])
        metrics = [Metric(f"{stage}_{k}", float(v), now, step) for k, v in record.items() if k != "epoch"]
        self._quietly(lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def _quietly(self, call: Any) -> None:
        if self._broken:
            return
        try:
            with self.tracker.calls():
                call()
        except TrackingError as error:
            self._broken = True  # one warning, then training goes on without the live view
            log.warning("live MLflow logging stopped: %s", error)

    @contextmanager
    def stage(self, name: str) -> Iterator[PipelineRun]:
        """Mark the run FAILED (with the stage and reason in its tags) if the block raises or is interrupted."""
        try:
            yield self
        except BaseException as error:
            self.fail(name, error)
            raise

    def fail(self, stage: str, error: BaseException) -> None:
        """Mark the run FAILED by `stage` for `error` (a warning if MLflow cannot be reached)."""
        reason = " ".join(str(error).split())[:500] or type(error).__name__
        if not isinstance(error, Exception):  # Ctrl-C, SIGTERM, exit
            reason = f"stopped ({type(error).__name__}{': ' + reason if str(error) else ''})"

        def mark() -> None:
            self.client.set_tag(self.run_id, "vad.failed_stage", stage)
            self.client.set_tag(self.run_id, "vad.failure", reason)
            self.client.set_terminated(self.run_id, status="FAILED")

        self._broken = False
        self._quietly(mark)

    def finish(self) -> None:
        """Mark the run FINISHED (the pipeline's last stage)."""
        self.client.set_terminated(self.run_id, status="FINISHED")


def _description(params: Any, dataset: str, data: str, commit: str, previous: str | None) -> str:
    lines = [f"Pipeline execution on **{dataset}** (data fingerprint `{data[:16]}`), code at `{commit}`.",
             f"{params.pretrain.epochs} pretraining + {params.train.epochs} alternating epochs at "
             f"{params.data.image_size} px, {params.data.channels} channel(s), width {params.model.width}, "
             f"K = {params.model.clusters}.",
             "Stages log into this run as they run; `register` adds the evaluation, the model and the champion "
             "decision, then finishes it."]
    if previous:
        lines.append(f"Continues run `{previous}` (its upstream stages were reused).")
    return "\n\n".join(lines)


def _log_dataset(client: Any, run_id: str, name: str, source_uri: str, digest: str) -> None:
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    try:
        with warnings.catch_warnings():  # a local path matches two equivalent resolvers; MLflow warns
            warnings.simplefilter("ignore")
            source = resolve_dataset_source(source_uri)
    except Exception:  # noqa: BLE001 - a scheme MLflow does not know (dvc://): recorded as a URI source
        from mlflow.data.http_dataset_source import HTTPDatasetSource

        source = HTTPDatasetSource(source_uri)
    dataset = MetaDataset(source, name=name, digest=digest[:36])
    client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(),
                                                     tags=[InputTag("mlflow.data.context", "training")])])


@contextmanager
def component_run(params: Any, stage: str, frames_dir: Path, *, tracking_uri: str = "", previous: str | None = None,
                  source_uri: str | None = None) -> Iterator[PipelineRun | None]:
    """For a Kubeflow component: the pipeline's run, or None when no MLflow is configured.

    `previous` comes from an upstream artifact's metadata (`RUN_ID_KEY`); no MLflow means `tracking_uri` empty and
    no MLFLOW_TRACKING_URI (the stages then run untracked and `register` opens the run at the end). The URI goes
    into MLFLOW_TRACKING_URI, so that processes the stage starts (torchrun) log to the same server.
    """
    import os

    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        yield None
        return
    run = PipelineRun.open(params, stage=stage, frames_dir=frames_dir, previous=previous or None,
                           source_uri=source_uri or None)
    with run.stage(stage):
        yield run
