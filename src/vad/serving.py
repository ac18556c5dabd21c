"""The MLflow pyfunc model: `predict(clips)` with clips uint8 (N, T, H, W, C) returns each clip's raw scores."""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow.pyfunc
import numpy as np

# predict() checks its input itself; MLflow's type-hint validation does not know 5-D uint8 arrays.
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")

__all__ = ["ClipScorer"]


class ClipScorer(mlflow.pyfunc.PythonModel):
    """Loads `checkpoint.pt` (artifact `checkpoint`) and scores batches of clips.

    Output columns: `fused` (s = 1 / mean_p(e * D_u), high = normal), `prediction_error`, `cluster_distance`
    (NaN when the model was trained without k-means). Per-video normalisation is left to the caller, as it
    needs the whole video.
    """

    batch_size = 64

    def load_context(self, context) -> None:
        """Rebuild the network from the checkpoint's config."""
        import torch

        from vad.models import load_trained

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        trained = load_trained(Path(context.artifacts["checkpoint"]), self.device)
        self.model, self.model_params, self.data_params = trained.model, trained.model_params, trained.data_params

    def predict(self, context, model_input, params=None):
        """Score clips: uint8 array (N, T, H, W, C) -> DataFrame with one row of raw scores per clip."""
        import pandas as pd
        import torch

        from vad.data.clips import to_model_input
        from vad.scoring import SCORE_COLUMNS, clip_scores

        clips = np.asarray(model_input)
        data = self.data_params
        expected = (data.clip_len, *data.image_size, data.channels)
        if clips.ndim != 5 or clips.shape[1:] != expected:
            raise ValueError(f"expected clips of shape (N, {', '.join(map(str, expected))}) uint8, got {clips.shape}")
        parts = {name: [] for name in SCORE_COLUMNS}
        for first in range(0, len(clips), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(clips[first : first + self.batch_size], dtype=np.uint8))
            scores = clip_scores(self.model, to_model_input(batch.to(self.device)), self.model_params.kmeans)
            for name, values in scores.items():
                parts[name].append(values.cpu().double().numpy())
        return pd.DataFrame({name: np.concatenate(values) if values else np.zeros(0)
                             for name, values in parts.items()})
