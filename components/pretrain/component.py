"""Component `pretrain`: both autoencoders on L_a + L_m (GPU)."""

from components._image import VAD_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=VAD_IMAGE, install_kfp_package=False, packages_to_install=[])
def pretrain(params: dict, frames: Input[Dataset], model: Output[Model], metrics: Output[Metrics], gpus: int = 1):
    """Run vad.stages.pretrain on the frame store; `model` is the folder holding checkpoint.pt.

    With `gpus` above 1 the stage runs data-parallel on that many processes (torchrun, one GPU each);
    `pretrain.batch_size` is the global batch.
    """
    from pathlib import Path

    from vad.config import parse_params
    from vad.errors import ConfigError, DataLayoutError

    if gpus < 1:
        raise ConfigError(f"gpus must be at least 1, got {gpus}; set it to the GPUs of the pretrain task")
    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    parsed = parse_params(params)  # here, so that bad params fail with the key named before any process starts
    if gpus > 1:
        from vad.launch import run_stage

        results = run_stage("pretrain", parsed, {"frames": frames.path, "out": model.path}, gpus)
    else:
        from vad.stages.pretrain import run

        results = run(parsed, Path(frames.path), Path(model.path)).metrics
    model.metadata.update(frames.metadata)  # dataset_uri and data_fingerprint: the model points back to its data
    for name, value in results.items():
        metrics.log_metric(name, value)
