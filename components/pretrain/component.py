"""Component `pretrain`: both autoencoders on L_a + L_m (GPU)."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def pretrain(params: dict, frames: Input[Dataset], model: Output[Model], metrics: Output[Metrics], gpus: int = 1,
             tracking_uri: str = ""):
    """Run vad.stages.pretrain on the frame store; `model` is the folder holding checkpoint.pt.

    With `gpus` above 1 the stage runs data-parallel on that many processes (torchrun, one GPU each);
    `pretrain.batch_size` is the global batch. With MLflow configured (`tracking_uri`, else MLFLOW_TRACKING_URI)
    the stage opens the pipeline's MLflow run and logs each epoch into it; the run id travels downstream as
    the `mlflow_run_id` metadata of `model`.
    """
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import ConfigError, DataLayoutError
    from vad.pipeline_run import RUN_ID_KEY, component_run

    if gpus < 1:
        raise ConfigError(f"gpus must be at least 1, got {gpus}; set it to the GPUs of the pretrain task")
    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    parsed = parse_params(params)  # here, so that bad params fail with the key named before any process starts
    with component_run(parsed, "pretrain", Path(frames.path), tracking_uri=tracking_uri,
                       source_uri=frames.metadata.get("dataset_uri")) as tracking:
        if gpus > 1:
            from vad.launch import run_stage

            paths = {"frames": frames.path, "out": model.path}
            if tracking is not None:  # rank 0 of torchrun joins the run through a run file
                tracking.write(Path(model.path).parent / "mlflow-run.json")
                paths["run-file"] = Path(model.path).parent / "mlflow-run.json"
            results = run_stage("pretrain", parsed, paths, gpus)
        else:
            from vad.stages.pretrain import run

            results = run(parsed, Path(frames.path), Path(model.path), tracking=tracking).metrics
    model.metadata.update(frames.metadata)  # dataset_uri and data_fingerprint: the model points back to its data
    if tracking is not None:
        model.metadata[RUN_ID_KEY] = tracking.run_id
    for name, value in results.items():
        metrics.log_metric(name, value)
