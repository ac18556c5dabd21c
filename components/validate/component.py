"""Component `validate`: Great Expectations over the frame store before any GPU time is spent."""

from components._image import VAD_CPU_IMAGE
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output


@dsl.component(base_image=VAD_CPU_IMAGE, install_kfp_package=False, packages_to_install=[])
def validate(params: dict, frames: Input[Dataset], report: Output[Artifact]):
    """Run vad.stages.validate on `frames`; `report` is the JSON validation report (written on failure too)."""
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import DataLayoutError
    from vad.stages.validate import run

    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    result = run(parse_params(params).data, Path(frames.path), Path(report.path))
    report.metadata.update(result.metrics)
