"""Where a trained model comes from: a folder holding checkpoint.pt, or an MLflow model URI.

    with model_folder("models:/vad-synthetic@champion") as folder:   # or "models/train", "runs:/<id>/model"
        trained = load_trained(folder / CHECKPOINT)

The checkpoint carries the network's geometry and switches (`vad.models.load_trained`), so nothing else is
needed to rebuild it. A registered model is the pyfunc model `vad register` logs: its checkpoint is the
artifact `artifacts/checkpoint.pt` (with `artifacts/calibration.json`, the alarm threshold's calibration),
downloaded into a temporary folder that the block removes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vad.checkpoint import CHECKPOINT
from vad.errors import DataLayoutError, TrackingError

__all__ = ["model_folder", "is_mlflow_uri", "MLFLOW_SCHEMES"]

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
_EXAMPLE = "a folder holding checkpoint.pt (the --out of `vad train`) or an MLflow URI such as " \
           "models:/vad-synthetic@champion"


def is_mlflow_uri(reference: str) -> bool:
    """True for `models:/...`, `runs:/...` and `mlflow-artifacts:/...`."""
    return reference.startswith(MLFLOW_SCHEMES)


@contextmanager
def model_folder(reference: str | Path, tracking_uri: str | None = None) -> Iterator[Path]:
    """A folder holding the checkpoint of `reference`: the folder itself, or a download of the MLflow model.

    Raises:
        DataLayoutError: no checkpoint at the path.
        TrackingError: the MLflow URI does not resolve, or the server does not answer.
    """
    text = str(reference)
    if not is_mlflow_uri(text):
        folder = Path(text)
        if folder.is_file() and folder.name == CHECKPOINT:
            folder = folder.parent
        if not (folder / CHECKPOINT).is_file():
            raise DataLayoutError(f"model {text} has no {CHECKPOINT}; pass {_EXAMPLE}")
        yield folder
        return
    from vad.tracking import MlflowTracker

    tracker = MlflowTracker(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="vad-model-") as tmp:
        try:
            with tracker.calls():
                folder = Path(tracker.mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{text.rstrip('/')}/artifacts", dst_path=tmp))
        except TrackingError as error:
            raise TrackingError(f"model URI {text} does not resolve at {tracker.uri}: {error}; list the registered "
                                f"models in the MLflow UI, or pass {_EXAMPLE}") from None
        if not (folder / CHECKPOINT).is_file():
            raise TrackingError(f"model URI {text} holds no artifacts/{CHECKPOINT}: not a model logged by `vad "
                                f"register`; pass {_EXAMPLE}")
        yield folder
