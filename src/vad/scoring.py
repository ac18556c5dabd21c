"""Per-clip anomaly scores (Eq. 13-14), shared by `vad score` and the MLflow model."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vad.models.two_stream_ae import TwoStreamAE

__all__ = ["clip_scores", "SCORE_COLUMNS"]

SCORE_COLUMNS = ("fused", "prediction_error", "cluster_distance")


@torch.no_grad()
def clip_scores(model: TwoStreamAE, clips: torch.Tensor, use_clusters: bool = True) -> dict[str, torch.Tensor]:
    """Raw scores of each clip: (B, T, C, H, W) -> dict of (B,) tensors.

    `prediction_error` = mean_p e(p), with e(p) the squared error of the predicted last frame at pixel p
    (mean over channels); `cluster_distance` = mean_p D_u(p), D(r) nearest-upsampled to the image size
    (NaN without clustering); `fused` = s = 1 / mean_p(e(p) * D_u(p)), high for normal clips.
    """
    outputs = model(clips)
    with torch.autocast(clips.device.type, enabled=False):  # under autocast, only the network runs in bf16
        return _scores(model, outputs, use_clusters)


def _scores(model: TwoStreamAE, outputs, use_clusters: bool) -> dict[str, torch.Tensor]:
    error = (outputs.target.float() - outputs.prediction.float()).pow(2).mean(dim=1)
    if use_clusters:
        distance = model.kmeans(outputs.r.float())
        upsampled = F.interpolate(distance[:, None], size=error.shape[-2:], mode="nearest")[:, 0]
        fused = (error * upsampled).mean(dim=(1, 2))
        cluster = upsampled.mean(dim=(1, 2))
    else:
        fused, cluster = error.mean(dim=(1, 2)), torch.full_like(error[:, 0, 0], float("nan"))
    return {"fused": 1.0 / fused.clamp_min(1e-12), "prediction_error": error.mean(dim=(1, 2)),
            "cluster_distance": cluster}
