"""Component `calibrate`: the alarm threshold from the held-out tail of each training video and other normal footage."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def calibrate(params: dict, frames: Input[Dataset], model: Input[Model], calibration: Output[Artifact],
              metrics: Output[Metrics], normal_footage_uri: str = ""):
    """Run vad.stages.calibrate with the trained model; `calibration` is calibration.json (vad.calibration).

    `normal_footage_uri`: normal videos the model never trained on, named as a dataset is (a folder, s3://,
    http(s):// archive or dvc://); empty: the hold-out only (`vad calibrate --normal` on the command line).
    """
    import tempfile
    from pathlib import Path

    from vad.config import parse_params
    from vad.data.sources import resolve_source
    from vad.errors import DataLayoutError, VadError
    from vad.stages.calibrate import run

    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    if not (Path(model.path) / "checkpoint.pt").is_file():
        raise DataLayoutError(f"input model {model.path} is not a model (no checkpoint.pt); "
                              "connect the model output of the train task")
    with tempfile.TemporaryDirectory(prefix="vad-normal-") as cache:
        try:
            normal = [resolve_source(normal_footage_uri, Path(cache))] if normal_footage_uri else []
        except VadError as error:  # its message speaks of a dataset: say which input it was
            raise type(error)(f"normal_footage_uri: {error}") from None
        result = run(parse_params(params), Path(frames.path), Path(model.path), Path(calibration.path),
                     normal=normal)
    calibration.metadata.update(result.metrics)
    if normal_footage_uri:
        calibration.metadata["normal_footage_uri"] = normal_footage_uri
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
