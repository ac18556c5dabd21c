"""Component `pretrain`: both autoencoders on L_a + L_m (GPU)."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def pretrain(params: dict, frames: Input[Dataset], model: Output[Model], metrics: Output[Metrics]):
    """Run vad.stages.pretrain on the frame store; `model` is the folder holding checkpoint.pt."""
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import DataLayoutError
    from vad.stages.pretrain import run

    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    result = run(parse_params(params), Path(frames.path), Path(model.path))
    model.metadata.update(frames.metadata)  # dataset_uri and data_fingerprint: the model points back to its data
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
