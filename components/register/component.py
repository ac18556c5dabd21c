"""Component `register`: one MLflow run, the model registered and, if it beats the champion, promoted."""

from components._image import VAD_CPU_IMAGE
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_CPU_IMAGE, install_kfp_package=False, packages_to_install=[])
def register(params: dict, frames: Input[Dataset], pretrained: Input[Model], model: Input[Model],
             metrics: Input[Metrics], plots: Input[Artifact], tracking_uri: str, pipeline_run_id: str,
             registration: Output[Artifact], calibration: Input[Artifact] = None):
    """Run vad.stages.register; `registration` is its JSON summary, also in its metadata.

    `calibration` (of the calibrate task) is packaged with the model, so `vad detect --model models:/...` finds
    its threshold.

    The MLflow run is the pipeline's (the `mlflow_run_id` metadata of `model`, opened by pretrain), completed and
    finished here; a new one when the training tasks ran without MLflow. The model version is tagged with the
    dataset URI and the Kubeflow run id on top of the MLflow run id and data fingerprint that the stage sets, so
    the version points back to its data and its pipeline run. An unreachable
    MLflow fails with one line and leaves the upstream artifacts in place, so the task can be retried.
    """
    import json
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import DataLayoutError
    from vad.pipeline_run import RUN_ID_KEY, PipelineRun
    from vad.stages.register import run
    from vad.tracking import MlflowTracker

    expected = (("frames", frames, "manifest.json", "frame store", "frames Dataset of extract"),
                ("pretrained", pretrained, "checkpoint.pt", "model", "model of pretrain"),
                ("model", model, "checkpoint.pt", "model", "model of train"))
    for name, artifact, marker, kind, source in expected:
        if not (Path(artifact.path) / marker).is_file():
            raise DataLayoutError(f"input {name} {artifact.path} is not a {kind} (no {marker}); connect the {source}")
    parsed = parse_params(params)
    tracking = PipelineRun.open(parsed, stage="register", frames_dir=Path(frames.path),
                                tracking_uri=tracking_uri or None, previous=model.metadata.get(RUN_ID_KEY),
                                source_uri=frames.metadata.get("dataset_uri"))
    run(parsed, Path(frames.path), Path(pretrained.path), Path(model.path), Path(metrics.path), Path(plots.path),
        Path(registration.path), tracking=tracking,
        calibration_path=Path(calibration.path) if calibration is not None else None)
    summary = json.loads(Path(registration.path).read_text())
    lineage = {"dataset_uri": str(frames.metadata.get("dataset_uri", "")), "kfp_run_id": pipeline_run_id}
    client = MlflowTracker(tracking_uri).client
    for key, value in lineage.items():
        client.set_model_version_tag(summary["model_name"], summary["version"], key, value)
    registration.metadata.update(summary | lineage)
