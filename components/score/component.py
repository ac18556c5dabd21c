"""Component `score`: score every test frame that ends a full clip into scores.csv (GPU)."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def score(params: dict, frames: Input[Dataset], model: Input[Model], scores: Output[Dataset],
          metrics: Output[Metrics]):
    """Run vad.stages.score with the trained model; `scores` is the scores.csv file (format in DESIGN.md)."""
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import DataLayoutError
    from vad.stages.score import run

    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    if not (Path(model.path) / "checkpoint.pt").is_file():
        raise DataLayoutError(f"input model {model.path} is not a model (no checkpoint.pt); "
                              "connect the model output of the train task")
    result = run(parse_params(params), Path(frames.path), Path(model.path), Path(scores.path))
    scores.metadata.update(frames.metadata)
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
