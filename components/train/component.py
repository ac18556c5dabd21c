"""Component `train`: alternating training of the autoencoders and the cluster centers (GPU)."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def train(params: dict, frames: Input[Dataset], init: Input[Model], model: Output[Model], metrics: Output[Metrics]):
    """Run vad.stages.train from the initialised model; `model` is the folder holding checkpoint.pt.

    The stage checkpoints into `model` every epoch, so a retried task that finds the checkpoint resumes from it.
    """
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import DataLayoutError
    from vad.stages.train import run

    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    if not (Path(init.path) / "checkpoint.pt").is_file():
        raise DataLayoutError(f"input init {init.path} is not a model (no checkpoint.pt); "
                              "connect the model output of the init_clusters task")
    result = run(parse_params(params), Path(frames.path), Path(init.path), Path(model.path))
    model.metadata.update(frames.metadata)
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
