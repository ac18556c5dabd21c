"""Run the whole DAG on this machine with kfp's local SubprocessRunner (no cluster, no container).

Every task runs as a subprocess of the current Python, which must have `vad` and its `pipeline` extra installed;
the Kubernetes settings (GPUs, secrets, /dev/shm, retries) do not apply. Run from the repository root:

    vad pipeline run-local --dataset data/raw                     # the synthetic demo, params.yaml
    vad pipeline run-local --dataset s3://datasets/ped2 --preset ped2 --tracking-uri http://127.0.0.1:5000
"""

from pathlib import Path
from typing import Any

__all__ = ["run_local"]


def run_local(dataset_uri: str, *, mlflow_tracking_uri: str | None = None, preset: str | dict[str, Any] = "ped2",
              dataset_format: str = "auto", model_name: str = "", train_gpus: int = 1,
              pipeline_root: str | Path = ".kfp-local") -> Path:
    """Run `vad_pipeline` on `dataset_uri` through `kfp.local`; returns the pipeline root holding the artifacts.

    Args:
        dataset_uri: Local folder, s3://, http(s):// or dvc:// source of the raw dataset.
        mlflow_tracking_uri: MLflow tracking URI; default MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here.
        preset: Preset name, or a params document (dict or JSON).
        dataset_format: Dataset layout, `auto` to detect it.
        model_name: Registered model name; empty for the preset's.
        train_gpus: Processes of the train task; above 1, torchrun on this machine's GPUs (or its CPU, gloo).
        pipeline_root: Folder for the task artifacts (one sub-folder per run).

    Raises:
        VadError: a bad argument, found before anything runs.
        RuntimeError: a task failed (its log, printed above, ends with the reason).
    """
    from kfp import local

    from pipelines.vad_pipeline import pipeline_arguments, vad_pipeline
    from vad.tracking import tracking_uri

    arguments = pipeline_arguments(dataset_uri, mlflow_tracking_uri or tracking_uri(), preset=preset,
                                   dataset_format=dataset_format, model_name=model_name, train_gpus=train_gpus)
    root = Path(pipeline_root).resolve()
    _resolve_named_outputs_in_conditions()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    vad_pipeline(**arguments)
    return root


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
