"""Stage `register`: the pipeline execution's MLflow run completed, the model registered and maybe promoted."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from vad.atomic import atomic_write_text
from vad.calibration import Calibration
from vad.checkpoint import CHECKPOINT, content_digest, load_checkpoint
from vad.config import Params
from vad.data.base import Split
from vad.data.store import FrameStore, fingerprint
from vad.errors import DataLayoutError
from vad.pipeline_run import PipelineRun
from vad.stages import StageResult

__all__ = ["run"]

log = logging.getLogger(__name__)


def _example_clips(store: FrameStore, clip_len: int, count: int = 2) -> np.ndarray:
    video = (store.split(Split.TEST) or store.split(Split.TRAIN))[0]
    frames = store.frames(video)
    return np.stack([np.asarray(frames[i : i + clip_len]) for i in range(count)])


def _signature(example: np.ndarray, output) -> Any:
    """Any number of sequences of any length, size and colour mode (the model conforms them), uint8."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import Schema, TensorSpec

    from vad.serving import REQUEST_PARAMS

    inferred = infer_signature(example, output, params=REQUEST_PARAMS)
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, -1, -1))]),
                          outputs=inferred.outputs, params=inferred.params)


def run(params: Params, frames_dir: Path, pretrain_dir: Path, model_dir: Path, metrics_path: Path | None,
        plots_dir: Path, out_path: Path, *, tracking_uri: str | None = None, tracking: PipelineRun | None = None,
        artifacts: Sequence[Path] = (), lineage_path: Path | None = None,
        calibration_path: Path | None = None) -> StageResult:
    """Complete the pipeline's MLflow run, register the model and promote it if it beats the champion.

    `tracking`: the run the training stages logged into (`vad.pipeline_run`); without one a run is opened here.
    The run gets the evaluation metrics, the epochs its stages did not log live, the loss curves as a figure,
    the metrics file, the plots and `artifacts` (params.yaml, dvc.lock, the validation report) under
    `pipeline/`, and the model; the model version gets a description with the AUCs and the data lineage. The
    run is FINISHED on success and FAILED otherwise.

    `calibration_path` (from `vad calibrate`) goes into the model next to the checkpoint, so that `vad detect
    --model models:/...` finds its threshold; the version is tagged with the threshold.

    `out_path` gets the summary (run id, version, decision); `lineage_path`, if given, only what the inputs
    determine (model name and digest, data fingerprint, AUC): the file DVC hashes.

    `metrics_path` None: footage without test labels (a new camera). The model is registered with its
    calibration and without AUCs, and promoted only where no champion exists (`vad.tracking.promote`: a version
    without `auc_micro` never beats one; `vad promote NAME VERSION --force` moves the alias to it).
    """
    import requests

    from vad.plots import loss_figure
    from vad.serving import ClipScorer
    from vad.tracking import mlflow_error

    if metrics_path is not None and not metrics_path.is_file():
        raise DataLayoutError(f"metrics file {metrics_path} not found; run `vad evaluate` first")
    metrics = json.loads(metrics_path.read_text()) if metrics_path is not None else {}
    calibration = Calibration.load(calibration_path) if calibration_path is not None else None  # checked first
    store = FrameStore.open(frames_dir)
    state = load_checkpoint(model_dir / CHECKPOINT)
    histories = {"pretrain": load_checkpoint(pretrain_dir / CHECKPOINT)["history"], "train": state["history"]}
    tracking = tracking or PipelineRun.open(params, stage="register", frames_dir=frames_dir, tracking_uri=tracking_uri)
    data_fingerprint, model_digest = fingerprint(frames_dir), content_digest(state)
    tracker, run_id = tracking.tracker, tracking.run_id
    mlflow, client, name = tracker.mlflow, tracking.client, params.model_name
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    keep = f"the trained model in {model_dir} is kept, re-run `vad register`"
    try:
        with tracking.stage("register"):
            logged = client.get_run(run_id).data.metrics
            for stage, history in histories.items():  # epochs that no live stage logged (reused outputs)
                if f"{stage}_loss" not in logged:
                    for record in history:
                        tracking.log_epoch(stage, record)
            client.set_tag(run_id, "device", state.get("device", "unknown"))
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()
                                              if isinstance(v, int | float)])
            client.log_figure(run_id, loss_figure(histories), "plots/losses.png")
            if metrics_path is not None:
                client.log_artifact(run_id, str(metrics_path))
            if plots_dir.is_dir():
                client.log_artifacts(run_id, str(plots_dir), "plots")
            for path in artifacts:
                if path.is_file():
                    client.log_artifact(run_id, str(path), "pipeline")
            example = _example_clips(store, params.data.clip_len)
            model_artifacts = {"checkpoint": str(model_dir / CHECKPOINT)}
            if calibration is not None:
                model_artifacts["calibration"] = str(calibration_path)
            scorer = ClipScorer()
            scorer.load_context(SimpleNamespace(artifacts=model_artifacts))
            signature = _signature(example, scorer.predict(None, example))
            package = Path(__file__).resolve().parents[1]
            with mlflow.start_run(run_id=run_id):  # log_model takes the active run; FINISHED by finish() below
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=str(package / "serving_model.py"),  # models from code: no pickle
                    artifacts=model_artifacts, code_paths=[str(package)],
                    signature=signature, input_example=example, registered_model_name=name,
                    pip_requirements=_requirements(),
                )
            version = str(info.registered_model_version)
            tags = {"data_fingerprint": data_fingerprint, "dataset": store.dataset, "run_id": run_id,
                    "model_digest": model_digest}
            if "auc_micro" in metrics:  # promotion compares it; without labels there is none
                tags["auc_micro"] = str(metrics["auc_micro"])
            if calibration is not None:
                tags["threshold"] = f"{calibration.threshold:.8g}"
                tags["alarm_score"] = f"{calibration.map} map, {calibration.pooling}"  # what the threshold is of
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)
            client.update_model_version(name, version, description=_version_description(
                metrics, store.dataset, data_fingerprint, run_id, params))
            decision = tracker.promote(name, version, alias=params.registry.alias)
            client.set_tag(run_id, "promoted", str(decision.promoted).lower())
            client.set_tag(run_id, "vad.stage", "register")
            tracking.finish()
    except (MlflowException, requests.RequestException) as error:
        raise mlflow_error(tracker.uri, error, keep) from None
    summary = {"run_id": run_id, "model_name": name, "version": version, "promoted": decision.promoted,
               "reason": decision.reason, "auc_micro": metrics.get("auc_micro"), "data_fingerprint": data_fingerprint,
               "tracking_uri": tracker.uri}
    atomic_write_text(out_path, json.dumps(summary, indent=1) + "\n")
    if lineage_path is not None:
        lineage = {"model_name": name, "model_digest": model_digest, "data_fingerprint": data_fingerprint,
                   "auc_micro": metrics.get("auc_micro")}
        atomic_write_text(lineage_path, json.dumps(lineage, indent=1) + "\n")
    log.info("MLflow run %s: %s v%s (%s)", run_id, name, version, decision.reason)
    return StageResult(outputs={"summary": out_path}, metrics={"version": float(version),
                                                               "promoted": float(decision.promoted)})


def _version_description(metrics: dict, dataset: str, data_fingerprint: str, run_id: str, params: Params) -> str:
    aucs = ", ".join(f"{label} {metrics[key]:.4f}" for key, label in (
        ("auc_micro", "micro AUC"), ("auc_macro", "macro AUC")) if isinstance(metrics.get(key), int | float))
    evaluated = (f"{aucs} (frame level, per-video min-max, Eq. 14) on the test split of {dataset}" if aucs else
                 f"Not evaluated: {dataset} has no test labels")
    return (f"{evaluated}. "
            f"Data fingerprint {data_fingerprint[:16]}; MLflow run {run_id}; "
            f"{params.data.image_size[0]}x{params.data.image_size[1]} px, {params.data.channels} channel(s), "
            f"width {params.model.width}, motion decoder {params.model.motion_decoder}.")


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("torch", "numpy", "pandas", "pydantic", "pyyaml")
    return [f"{package}=={version(package).split('+')[0]}" for package in packages]
