r"""The Kubeflow DAG: extract -> validate -> pretrain -> init_clusters -> train -> score -> evaluate -> register.

Parameters (`kfp run create ... dataset_uri=s3://datasets/ped2 mlflow_tracking_uri=http://mlflow:5000`):

    dataset_uri          s3://bucket/prefix, http(s)://.../archive.tar.gz, dvc://<repo>#<path>[@<rev>] or a folder
    mlflow_tracking_uri  the MLflow server (empty: MLFLOW_TRACKING_URI from the mlflow secret below)
    dataset_format       layout of the dataset: auto (detected), ucsd, frames, avenue, shanghaitech or videos
    preset               ped2, avenue, shanghaitech (configs/*.yaml, embedded at compile time) or a params
                         document as JSON
    model_name           registered model name; empty: the preset's register.model_name, else vad-<dataset>
    train_gpus           GPUs of the train task (default 1); above 1, train runs data-parallel on that many
                         processes (torchrun) with the same params, train.batch_size being the global batch
    normal_footage_uri   normal videos the model never trained on (a folder, s3://, http(s):// archive or
                         dvc://; default none): `calibrate` chooses the alarm threshold on them and the held-out
                         frames together (`vad calibrate --normal`). A strict false-alarm budget needs minutes of
                         footage; the hold-out alone holds seconds, and its threshold is an extrapolation

`extract` resolves and validates these into the params document every later task receives, so a bad preset,
format or URI fails the first task within seconds. `register` runs only when the new micro AUC beats the
champion's on the same data (`champion` returns -1.0 when there is none; a test set without labels gives
0.0, so an unlabelled model is registered exactly where no champion exists). Only `extract` and `validate` are cached,
keyed on their inputs: new data under the same URI needs a run with caching off (or a dvc:// URI pinned to a
revision). GPU tasks checkpoint into their output artifact path; with retries, `train` resumes from the last
checkpoint when that path survives the failed attempt (a volume-backed pipeline root), else it restarts.

Cluster prerequisites: the images of components/_image.py, GPU nodes exposing `nvidia.com/gpu`, and two
optional Kubernetes secrets whose keys are the environment variables they set:

    kubectl create secret generic vad-s3 --from-literal=AWS_ACCESS_KEY_ID=... \
        --from-literal=AWS_SECRET_ACCESS_KEY=... --from-literal=AWS_ENDPOINT_URL=https://minio.example.com
    kubectl create secret generic vad-mlflow --from-literal=MLFLOW_TRACKING_URI=http://mlflow:5000 \
        --from-literal=MLFLOW_TRACKING_USERNAME=... --from-literal=MLFLOW_TRACKING_PASSWORD=...
"""

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from kfp import dsl, kubernetes
from kfp.dsl.pipeline_channel import PipelineChannel

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `kfp dsl compile --py pipelines/vad_pipeline.py` loads this file on its own
    sys.path.insert(0, str(ROOT))

from components import (  # noqa: E402 - needs ROOT on the path
    calibrate,
    champion,
    evaluate,
    extract,
    init_clusters,
    pretrain,
    register,
    score,
    train,
    validate,
)

__all__ = ["vad_pipeline", "pipeline_arguments", "PRESETS"]

# The paper's settings, one per dataset; the CPU scalings (configs/*-cpu*.yaml) are for a laptop, not a cluster.
PRESETS: dict[str, dict] = {path.stem: yaml.safe_load(path.read_text())
                            for path in sorted((ROOT / "configs").glob("*.yaml"))
                            if "-cpu" not in path.stem}
EXTRACT_WORKERS = 8  # decoding processes; equal to the extract task's CPU limit
S3_SECRET = ("vad-s3", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"))
MLFLOW_SECRET = ("vad-mlflow", ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                                "MLFLOW_TRACKING_TOKEN"))
SHM_SIZE = "8Gi"  # /dev/shm of the GPU tasks (PyTorch shared memory); counts against their memory limit


def _setup(task: dsl.PipelineTask, *, cpu: str, memory: str, gpus: int | PipelineChannel = 0,
           cache: bool = False, secrets: tuple = ()) -> dsl.PipelineTask:
    """Requests (limits twice as large), retries with exponential backoff, caching, secrets, GPUs and /dev/shm.

    `gpus` is a count or a pipeline parameter (resolved when the run starts).
    """
    task.set_cpu_request(cpu).set_cpu_limit(str(2 * float(cpu)).removesuffix(".0"))
    task.set_memory_request(memory).set_memory_limit(f"{2 * int(memory.removesuffix('Gi'))}Gi")
    task.set_retry(num_retries=3, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="3600s")
    task.set_caching_options(enable_caching=cache)
    for name, keys in secrets:
        kubernetes.use_secret_as_env(task, secret_name=name, secret_key_to_env={k: k for k in keys}, optional=True)
    if isinstance(gpus, PipelineChannel) or gpus > 0:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(gpus)
        kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory",
                                   size_limit=SHM_SIZE)
    return task


@dsl.pipeline(name="vad", description="Video anomaly detection with spatio-temporal dissociation: train, "
                                      "evaluate and register the model in MLflow")
def vad_pipeline(dataset_uri: str, mlflow_tracking_uri: str, dataset_format: str = "auto", preset: str = "ped2",
                 model_name: str = "", train_gpus: int = 1, normal_footage_uri: str = ""):
    """Train, evaluate and (if it beats the champion) register a model on the dataset at `dataset_uri`."""
    extract_task = _setup(extract(dataset_uri=dataset_uri, dataset_format=dataset_format, preset=preset,
                                  model_name=model_name, presets=PRESETS, workers=EXTRACT_WORKERS, skip_corrupt=False),
                          cpu=str(EXTRACT_WORKERS // 2), memory="8Gi", cache=True, secrets=(S3_SECRET,))
    params, frames = extract_task.outputs["params"], extract_task.outputs["frames"]
    validate_task = _setup(validate(params=params, frames=frames), cpu="1", memory="4Gi", cache=True)
    # The training tasks open and join the pipeline's MLflow run (its id travels in the model artifacts' metadata).
    pretrain_task = _setup(pretrain(params=params, frames=frames, tracking_uri=mlflow_tracking_uri)
                           .after(validate_task), cpu="4", memory="16Gi", gpus=1, secrets=(MLFLOW_SECRET,))
    init_task = _setup(init_clusters(params=params, frames=frames, pretrained=pretrain_task.outputs["model"]),
                       cpu="4", memory="16Gi", gpus=1)
    train_task = _setup(train(params=params, frames=frames, init=init_task.outputs["model"], gpus=train_gpus,
                              tracking_uri=mlflow_tracking_uri),
                        cpu="4", memory="16Gi", gpus=train_gpus, secrets=(MLFLOW_SECRET,))
    calibrate_task = _setup(calibrate(params=params, frames=frames, model=train_task.outputs["model"],
                                      normal_footage_uri=normal_footage_uri),
                            cpu="4", memory="16Gi", gpus=1, secrets=(S3_SECRET,))
    score_task = _setup(score(params=params, frames=frames, model=train_task.outputs["model"]), cpu="4",
                        memory="16Gi", gpus=1)
    evaluate_task = _setup(evaluate(frames=frames, scores=score_task.outputs["scores"], params=params,
                                    calibration=calibrate_task.outputs["calibration"]), cpu="1", memory="4Gi")
    champion_task = _setup(champion(params=params, frames=frames, tracking_uri=mlflow_tracking_uri)
                           .after(evaluate_task), cpu="0.5", memory="1Gi", secrets=(MLFLOW_SECRET,))
    with dsl.If(evaluate_task.outputs["auc_micro"] > champion_task.output, name="beats-champion"):
        _setup(register(params=params, frames=frames, pretrained=pretrain_task.outputs["model"],
                        model=train_task.outputs["model"], metrics=evaluate_task.outputs["metrics"],
                        plots=evaluate_task.outputs["plots"], calibration=calibrate_task.outputs["calibration"],
                        tracking_uri=mlflow_tracking_uri,
                        pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER),
               cpu="1", memory="4Gi", secrets=(MLFLOW_SECRET, S3_SECRET))


def pipeline_arguments(dataset_uri: str, mlflow_tracking_uri: str, *, preset: str | dict[str, Any] = "ped2",
                       dataset_format: str = "auto", model_name: str = "", train_gpus: int = 1,
                       normal_footage_uri: str = "") -> dict[str, str | int]:
    """Check the arguments of `vad_pipeline` on the client (before anything runs) and return them.

    `preset` may be a dict (a params document), sent as JSON. The `extract` task repeats the preset and format
    checks at run time, and the train task the GPU count, for runs created without this helper.

    Raises:
        ConfigError: unknown preset, invalid JSON or params document, unknown format, train_gpus below 1.
        DataError: `dataset_uri` or `normal_footage_uri` names an unsupported scheme.
    """
    from vad.config import resolve_preset
    from vad.data.sources import SUPPORTED
    from vad.errors import ConfigError, DataError

    text = json.dumps(preset) if isinstance(preset, dict) else str(preset)
    resolve_preset(text, PRESETS, dataset_format=dataset_format, model_name=model_name)
    for name, uri in (("dataset_uri", dataset_uri), ("normal_footage_uri", normal_footage_uri)):
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in ("", "s3", "http", "https", "dvc"):
            raise DataError(f"unsupported {name} {uri} (scheme {scheme}://); pass {SUPPORTED}")
    if isinstance(train_gpus, bool) or not isinstance(train_gpus, int) or train_gpus < 1:
        raise ConfigError(f"train_gpus must be an integer of at least 1, got {train_gpus!r}")
    return {"dataset_uri": dataset_uri, "mlflow_tracking_uri": mlflow_tracking_uri, "dataset_format": dataset_format,
            "preset": text, "model_name": model_name, "train_gpus": train_gpus,
            "normal_footage_uri": normal_footage_uri}
