"""Stage `register`: one MLflow run for the pipeline execution, the model registered and maybe promoted."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from vad.atomic import atomic_write_text
from vad.checkpoint import CHECKPOINT, load_checkpoint
from vad.config import Params
from vad.data.base import Split
from vad.data.store import FrameStore, fingerprint
from vad.errors import DataLayoutError
from vad.stages import StageResult

__all__ = ["run", "flatten"]

log = logging.getLogger(__name__)


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


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _example_clips(store: FrameStore, clip_len: int, count: int = 2) -> np.ndarray:
    video = (store.split(Split.TEST) or store.split(Split.TRAIN))[0]
    frames = store.frames(video)
    return np.stack([np.asarray(frames[i : i + clip_len]) for i in range(count)])


def run(params: Params, frames_dir: Path, pretrain_dir: Path, model_dir: Path, metrics_path: Path,
        plots_dir: Path, out_path: Path, *, tracking_uri: str | None = None) -> StageResult:
    """Log params, per-epoch losses, metrics, plots and the model as one MLflow run; register and promote."""
    import requests

    from vad.serving import ClipScorer
    from vad.tracking import MlflowTracker, mlflow_error

    if not metrics_path.is_file():
        raise DataLayoutError(f"metrics file {metrics_path} not found; run `vad evaluate` first")
    metrics = json.loads(metrics_path.read_text())
    store = FrameStore.open(frames_dir)
    state = load_checkpoint(model_dir / CHECKPOINT)
    pre_history = load_checkpoint(pretrain_dir / CHECKPOINT)["history"]
    data_fingerprint = fingerprint(frames_dir)
    tracker = MlflowTracker(tracking_uri)
    mlflow, name = tracker.mlflow, params.model_name
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    try:
        mlflow.set_experiment(params.registry.experiment)
        with mlflow.start_run(run_name=f"{params.data.dataset}-{data_fingerprint[:8]}") as active:
            mlflow.set_tags({"dataset": params.data.dataset, "data_fingerprint": data_fingerprint,
                             "git_commit": _git_commit(), "device": state.get("device", "unknown")})
            mlflow.log_params(flatten(params.model_dump(mode="json", by_alias=True)))
            for stage, history in (("pretrain", pre_history), ("train", state["history"])):
                for record in history:
                    mlflow.log_metrics({f"{stage}_{k}": v for k, v in record.items() if k != "epoch"},
                                       step=int(record["epoch"]))
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.log_artifact(str(metrics_path))
            mlflow.log_artifacts(str(plots_dir), "plots")
            example = _example_clips(store, params.data.clip_len)
            scorer = ClipScorer()
            scorer.load_context(SimpleNamespace(artifacts={"checkpoint": str(model_dir / CHECKPOINT)}))
            signature = infer_signature(example, scorer.predict(None, example))
            package = Path(__file__).resolve().parents[1]
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(package / "serving_model.py"),  # models from code: no pickle
                artifacts={"checkpoint": str(model_dir / CHECKPOINT)}, code_paths=[str(package)],
                signature=signature, input_example=example, registered_model_name=name,
                pip_requirements=_requirements(),
            )
            version = str(info.registered_model_version)
            for key, value in {"auc_micro": str(metrics["auc_micro"]), "data_fingerprint": data_fingerprint,
                               "run_id": active.info.run_id}.items():
                tracker.client.set_model_version_tag(name, version, key, value)
            decision = tracker.promote(name, version, alias=params.registry.alias)
            mlflow.set_tag("promoted", str(decision.promoted).lower())
            run_id = active.info.run_id
    except (MlflowException, requests.RequestException) as error:
        raise mlflow_error(tracker.uri, error, f"the trained model in {model_dir} is kept, re-run `vad register`"
                           ) from None
    summary = {"run_id": run_id, "model_name": name, "version": version, "promoted": decision.promoted,
               "reason": decision.reason, "auc_micro": metrics["auc_micro"], "data_fingerprint": data_fingerprint,
               "tracking_uri": tracker.uri}
    atomic_write_text(out_path, json.dumps(summary, indent=1) + "\n")
    log.info("MLflow run %s: %s v%s (%s)", run_id, name, version, decision.reason)
    return StageResult(outputs={"summary": out_path}, metrics={"version": float(version),
                                                               "promoted": float(decision.promoted)})


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("torch", "numpy", "pandas", "pydantic", "pyyaml")
    return [f"{package}=={version(package).split('+')[0]}" for package in packages]
