"""Component `train`: alternating training of the autoencoders and the cluster centers (GPU)."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def train(params: dict, frames: Input[Dataset], init: Input[Model], model: Output[Model], metrics: Output[Metrics],
          gpus: int = 1):
    """Run vad.stages.train from the initialised model; `model` is the folder holding checkpoint.pt.

    With `gpus` above 1 the stage runs data-parallel on that many processes (torchrun, one GPU each);
    `params` stay the same, `train.batch_size` being the global batch. The stage checkpoints into `model`
    every epoch, so a retried task that finds the checkpoint resumes from it.
    """
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import ConfigError, DataLayoutError

    if gpus < 1:
        raise ConfigError(f"gpus must be at least 1, got {gpus}; set train_gpus to the GPUs of the train task")
    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    if not (Path(init.path) / "checkpoint.pt").is_file():
        raise DataLayoutError(f"input init {init.path} is not a model (no checkpoint.pt); "
                              "connect the model output of the init_clusters task")
    parsed = parse_params(params)  # here, so that bad params fail with the key named before any process starts
    if gpus > 1:
        from vad.launch import run_stage

        results = run_stage("train", parsed, {"frames": frames.path, "init": init.path, "out": model.path}, gpus)
    else:
        from vad.stages.train import run

        results = run(parsed, Path(frames.path), Path(init.path), Path(model.path)).metrics
    model.metadata.update(frames.metadata)
    for name, value in results.items():
        metrics.log_metric(name, value)
