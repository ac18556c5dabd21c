"""Component `train`: alternating training of the autoencoders and the cluster centers (GPU)."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def train(params: dict, frames: Input[Dataset], init: Input[Model], model: Output[Model], metrics: Output[Metrics],
          gpus: int = 1, tracking_uri: str = ""):
    """Run vad.stages.train from the initialised model; `model` is the folder holding checkpoint.pt.

    With `gpus` above 1 the stage runs data-parallel on that many processes (torchrun, one GPU each);
    `params` stay the same, `train.batch_size` being the global batch. The stage checkpoints into `model`
    every epoch, so a retried task that finds the checkpoint resumes from it. With MLflow configured
    (`tracking_uri`, else MLFLOW_TRACKING_URI) the stage logs each epoch into the pipeline's run, named by the
    `mlflow_run_id` metadata of `init`, and passes it on in that of `model`.
    """
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import ConfigError, DataLayoutError
    from vad.pipeline_run import RUN_ID_KEY, component_run

    if gpus < 1:
        raise ConfigError(f"gpus must be at least 1, got {gpus}; set train_gpus to the GPUs of the train task")
    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    if not (Path(init.path) / "checkpoint.pt").is_file():
        raise DataLayoutError(f"input init {init.path} is not a model (no checkpoint.pt); "
                              "connect the model output of the init_clusters task")
    parsed = parse_params(params)  # here, so that bad params fail with the key named before any process starts
    with component_run(parsed, "train", Path(frames.path), tracking_uri=tracking_uri,
                       previous=init.metadata.get(RUN_ID_KEY),
                       source_uri=frames.metadata.get("dataset_uri")) as tracking:
        if gpus > 1:
            from vad.launch import run_stage

            paths = {"frames": frames.path, "init": init.path, "out": model.path}
            if tracking is not None:  # rank 0 of torchrun joins the run through a run file
                tracking.write(Path(model.path).parent / "mlflow-run.json")
                paths["run-file"] = Path(model.path).parent / "mlflow-run.json"
            results = run_stage("train", parsed, paths, gpus)
        else:
            from vad.stages.train import run

            results = run(parsed, Path(frames.path), Path(init.path), Path(model.path), tracking=tracking).metrics
    model.metadata.update(frames.metadata)
    if tracking is not None:
        model.metadata[RUN_ID_KEY] = tracking.run_id
    for name, value in results.items():
        metrics.log_metric(name, value)
