"""The MLflow pyfunc model: frame sequences in, each clip's raw scores and alarm out.

Request (`mlflow models serve`, `/invocations`, `{"inputs": ...}`): uint8 RGB (or grayscale) frames as an
array (N, L, H, W, C), N sequences of L >= T consecutive frames each. Every clip of a sequence (frames
t-T+1..t for t = T-1..L-1) is scored, so a request of clips (L = T) gets one row per clip, and a request of
one long sequence (N = 1) gets a row per frame from frame T-1 on: the model windows the frames itself.
Frames of another size or colour mode are resized and converted to what the model saw.

Response, one row per clip: `sequence`, `frame` (the clip's last frame, within its sequence), `fused`
(s = 1 / mean_p(e * D_u), high = normal), `prediction_error`, `cluster_distance` (NaN without k-means),
`fused_window`, `prediction_window`, for a network trained with `detect.map: relative` `relative` and
`relative_window` (`vad.scores_csv`), `anomaly_score` (the alarm score the model was
calibrated on, `vad.calibration.alarm_score`; uncalibrated: a = 1 / fused; high = abnormal) and, for a
calibrated model, `is_anomaly` (the alarm score above the threshold). Optional request params
`false_alarms_per_hour` and `fps` choose another threshold from the calibration (0: the budget and frame rate
it was made for). Per-video normalisation (Eq. 14) is left to the caller, as it needs the whole video.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow.pyfunc
import numpy as np

# predict() checks its input itself; MLflow's type-hint validation does not know 5-D uint8 arrays.
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")
# `sequence` and `frame` are integers by design: a response never has a missing one.
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")

__all__ = ["ClipScorer", "conform", "REQUEST_PARAMS"]

REQUEST_PARAMS = {"false_alarms_per_hour": 0.0, "fps": 0.0}  # 0: the calibration's own


def conform(frames: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """uint8 frames (..., H, W, C) of any size, RGB or grayscale, as (..., *size, channels)."""
    import cv2

    if frames.shape[-3:] == (*size, channels):
        return frames
    lead, (height, width), flat = frames.shape[:-3], size, frames.reshape(-1, *frames.shape[-3:])
    out = np.empty((len(flat), height, width, channels), np.uint8)
    for i, frame in enumerate(flat):
        if frame.shape[-1] == 3 and channels == 1:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[:, :, None]
        elif frame.shape[-1] == 1 and channels == 3:
            frame = np.repeat(frame, 3, axis=2)
        if frame.shape[:2] != (height, width):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA).reshape(height, width, -1)
        out[i] = frame
    return out.reshape(*lead, height, width, channels)


class ClipScorer(mlflow.pyfunc.PythonModel):
    """Loads `checkpoint.pt` (artifact `checkpoint`) and, if present, `calibration.json` (`calibration`)."""

    batch_size = 64

    def load_context(self, context) -> None:
        """Rebuild the network from the checkpoint's config; read the calibration."""
        import torch

        from vad.calibration import Calibration
        from vad.models import load_trained

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        trained = load_trained(Path(context.artifacts["checkpoint"]), self.device)
        self.model, self.model_params, self.data_params = trained.model, trained.model_params, trained.data_params
        calibration = context.artifacts.get("calibration")
        self.calibration = Calibration.load(Path(calibration)) if calibration else None
        if self.calibration is not None:  # its threshold holds for scores with its cluster map
            trained.score_with(self.calibration.cluster_distance)
            trained.require_map(self.calibration.map, context.artifacts["checkpoint"])

    def predict(self, context, model_input, params=None):
        """Score every clip of every sequence: uint8 (N, L, H, W, C) -> DataFrame, one row per clip."""
        import pandas as pd
        import torch

        from vad.calibration import alarm_score
        from vad.scoring import RAW_SCORES, stream_scores

        data = self.data_params
        sequences = np.asarray(model_input)
        if sequences.ndim != 5 or sequences.shape[1] < data.clip_len or sequences.shape[-1] not in (1, 3):
            raise ValueError(f"expected uint8 frames (N, L, H, W, C) with L >= {data.clip_len} frames per sequence "
                             f"and C = 1 or 3, got shape {sequences.shape}")
        sequences = conform(np.ascontiguousarray(sequences, dtype=np.uint8), data.image_size, data.channels)
        # the relative scores only where the network carries the normal error map they divide by
        columns = [c for c in RAW_SCORES if self.model.normal_error is not None or not c.startswith("relative")]
        rows = []
        for index, frames in enumerate(sequences):
            with torch.no_grad():
                for frame, values in stream_scores(self.model, iter(frames), data.clip_len, self.batch_size,
                                                   self.model_params.kmeans, self.device):
                    rows.append({"sequence": index, "frame": frame, **{c: values[c] for c in columns}})
        table = pd.DataFrame(rows, columns=["sequence", "frame", *columns])
        table["anomaly_score"] = self.calibration.score(table) if self.calibration else alarm_score(table)
        if self.calibration is not None:
            table["is_anomaly"] = table["anomaly_score"] > self.threshold(params or {})
        return table

    def threshold(self, params: dict) -> float:
        """The calibrated threshold, for the request's budget and frame rate where it gives them."""
        budget = float(params.get("false_alarms_per_hour") or 0) or self.calibration.false_alarms_per_hour
        fps = float(params.get("fps") or 0) or self.calibration.fps
        return self.calibration.threshold_for(budget, fps)

