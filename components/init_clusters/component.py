"""Component `init_clusters`: k-means++ initialisation of the cluster centers from pretrained features (GPU)."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def init_clusters(params: dict, frames: Input[Dataset], pretrained: Input[Model], model: Output[Model],
                  metrics: Output[Metrics]):
    """Run vad.stages.init_clusters on the pretrained model; `model` is the folder holding checkpoint.pt."""
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import DataLayoutError
    from vad.stages.init_clusters import run

    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    if not (Path(pretrained.path) / "checkpoint.pt").is_file():
        raise DataLayoutError(f"input pretrained {pretrained.path} is not a model (no checkpoint.pt); "
                              "connect the model output of the pretrain task")
    result = run(parse_params(params), Path(frames.path), Path(pretrained.path), Path(model.path))
    model.metadata.update(frames.metadata)
    if "mlflow_run_id" in pretrained.metadata:  # the pipeline's MLflow run, on to train
        model.metadata["mlflow_run_id"] = pretrained.metadata["mlflow_run_id"]
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
