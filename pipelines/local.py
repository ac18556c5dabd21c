"""Run the whole DAG on this machine with kfp's local runners (no cluster).

`subprocess` (the default): every task runs as a subprocess of the current Python, which must have `vad` and its
`pipeline` extra installed. `docker`: every task runs in the image its component names (`VAD_IMAGE` when the
components are imported, see components/_image.py) through kfp's DockerRunner, on any Docker-compatible API
(`DOCKER_HOST`; podman's `podman system service` works, see docker/README.md). The Kubernetes settings (GPUs,
secrets, /dev/shm, retries) do not apply. Run from the repository root:

    vad pipeline run-local --dataset data/raw                     # the synthetic demo, params.yaml
    vad pipeline run-local --dataset s3://datasets/ped2 --preset ped2 --tracking-uri http://127.0.0.1:5000
    VAD_IMAGE=ghcr.io/vad-project/vad:0.1.0-cpu vad pipeline run-local --runner docker \
        --dataset s3://datasets/ped2 --tracking-uri http://127.0.0.1:5000
"""

import os
from pathlib import Path
from typing import Any

__all__ = ["RUNNERS", "run_local"]

RUNNERS = ("subprocess", "docker")
# What a task container gets from this environment, as a cluster task gets it from its secrets: S3 and MLflow
# credentials and endpoints, the project's own switches.
FORWARDED_ENV_PREFIXES = ("AWS_", "MLFLOW_", "VAD_")


def run_local(dataset_uri: str, *, mlflow_tracking_uri: str | None = None, preset: str | dict[str, Any] = "ped2",
              dataset_format: str = "auto", model_name: str = "", train_gpus: int = 1, normal_footage_uri: str = "",
              pipeline_root: str | Path = ".kfp-local", runner: str = "subprocess") -> Path:
    """Run `vad_pipeline` on `dataset_uri` through `kfp.local`; returns the pipeline root holding the artifacts.

    Args:
        dataset_uri: Local folder, s3://, http(s):// or dvc:// source of the raw dataset.
        mlflow_tracking_uri: MLflow tracking URI; default MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here.
        preset: Preset name, or a params document (dict or JSON).
        dataset_format: Dataset layout, `auto` to detect it.
        model_name: Registered model name; empty for the preset's.
        train_gpus: Processes of the train task; above 1, torchrun on this machine's GPUs (or its CPU, gloo).
        normal_footage_uri: Normal videos the model never trained on, for the calibrate task (as `dataset_uri`);
            empty: the hold-out only.
        pipeline_root: Folder for the task artifacts (one sub-folder per run).
        runner: `subprocess`, or `docker` to run every task in its component's image (host network, the
            pipeline root and local dataset and footage folders mounted at their own paths, AWS_*/MLFLOW_*/VAD_*
            passed on).

    Raises:
        VadError: a bad argument, found before anything runs.
        RuntimeError: a task failed (its log, printed above, ends with the reason).
    """
    from kfp import local

    from pipelines.vad_pipeline import pipeline_arguments, vad_pipeline
    from vad.errors import ConfigError
    from vad.tracking import tracking_uri

    if runner not in RUNNERS:
        raise ConfigError(f"unknown runner {runner!r}; pass one of {', '.join(RUNNERS)}")
    arguments = pipeline_arguments(dataset_uri, mlflow_tracking_uri or tracking_uri(), preset=preset,
                                   dataset_format=dataset_format, model_name=model_name, train_gpus=train_gpus,
                                   normal_footage_uri=normal_footage_uri)
    root = Path(pipeline_root).resolve()
    _resolve_named_outputs_in_conditions()
    if runner == "docker":
        task_runner = _docker_runner(arguments, root)
    else:
        task_runner = local.SubprocessRunner(use_venv=False)
    local.init(runner=task_runner, pipeline_root=str(root), raise_on_error=True)
    vad_pipeline(**arguments)
    return root


def _docker_runner(arguments: dict[str, Any], root: Path):
    """The DockerRunner of kfp with what a container needs to see this machine's dataset, MLflow and S3.

    The host network, so that endpoints on 127.0.0.1 answer in the container as they do here. The image's own
    user (uid 1000) writes the task outputs, so the pipeline root is made writable for it (others keep read).
    A local dataset (or normal footage) folder is mounted at its absolute path, which replaces its argument.
    """
    from docker.types import Mount
    from kfp import local

    from vad.errors import ConfigError

    tracking = str(arguments["mlflow_tracking_uri"])
    if not tracking.startswith(("http://", "https://")):
        raise ConfigError(f"the docker runner needs an MLflow server (--tracking-uri http://...), not {tracking}: "
                          "a task container cannot open this machine's files")
    mounts = []
    for name in ("dataset_uri", "normal_footage_uri"):
        if arguments.get(name) and "://" not in str(arguments[name]):
            folder = Path(str(arguments[name])).resolve()
            arguments[name] = str(folder)
            mounts.append(Mount(target=str(folder), source=str(folder), type="bind", read_only=True))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o1777)  # like /tmp: every task user may create its folders, none may delete another's
    environment = {name: value for name, value in os.environ.items() if name.startswith(FORWARDED_ENV_PREFIXES)}
    return local.DockerRunner(network_mode="host", environment=environment, mounts=mounts)


def _resolve_named_outputs_in_conditions() -> None:
    """Teach kfp.local's condition evaluator the named outputs of a task (`task.outputs['auc_micro']`).

    kfp 2.17's local orchestrator resolves `pipelinechannel--<task>-<output>` in a `dsl.If` only for a single
    `Output`; for a named output it logs a warning and evaluates the condition to False, which would silently skip
    registration. The cluster backend resolves them itself, so only local runs need this; it is a no-op when the
    local orchestrator lacks the hook.
    """
    from kfp.local.orchestrator import enhanced_dag_orchestrator as orchestrator

    evaluator = getattr(orchestrator, "ConditionEvaluator", None)
    original = getattr(evaluator, "_resolve_pipeline_channel", None)
    if original is None or getattr(original, "vad_named_outputs", False):
        return

    def resolve(channel_ref: str, io_store: Any) -> Any:
        ref = channel_ref.removeprefix("pipelinechannel--")
        for cut in (i for i, char in enumerate(ref) if char == "-"):  # task names hold '-', output names do not
            try:
                return io_store.get_task_output(ref[:cut], ref[cut + 1:])
            except (KeyError, ValueError):
                continue
        return original(channel_ref, io_store)

    resolve.vad_named_outputs = True
    evaluator._resolve_pipeline_channel = staticmethod(resolve)
