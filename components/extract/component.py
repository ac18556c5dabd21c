"""Component `extract`: resolve the params from the pipeline parameters, fetch the dataset, write the frame store."""

from typing import NamedTuple

from components._image import VAD_CPU_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output


@dsl.component(base_image=VAD_CPU_IMAGE, install_kfp_package=False, packages_to_install=[])
def extract(dataset_uri: str, dataset_format: str, preset: str, model_name: str, presets: dict, workers: int,
            skip_corrupt: bool, frames: Output[Dataset],
            metrics: Output[Metrics]) -> NamedTuple("Outputs", [("params", dict)]):
    """Validate preset/format/model name into a params document, then run vad.stages.extract on `dataset_uri`.

    `preset` is a name in `presets` or a params document as JSON; `dataset_format` overrides data.format and a
    non-empty `model_name` overrides register.model_name. Returns the validated document for every later task.
    """
    import tempfile
    from pathlib import Path

    from vad.config import resolve_preset
    from vad.data.sources import resolve_source
    from vad.data.store import fingerprint
    from vad.stages.extract import run

    params = resolve_preset(preset, presets, dataset_format=dataset_format, model_name=model_name)
    with tempfile.TemporaryDirectory(prefix="vad-source-") as cache:
        result = run(params.data, resolve_source(dataset_uri, Path(cache)), Path(frames.path), workers=workers,
                     skip_corrupt=skip_corrupt)
    frames.metadata.update(dataset_uri=dataset_uri, dataset=params.data.dataset,
                           data_fingerprint=fingerprint(frames.path))
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    # exclude_none: protobuf Structs cannot carry None; the defaults come back when the document is parsed
    return (params.model_dump(mode="json", by_alias=True, exclude_none=True),)
