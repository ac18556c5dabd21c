"""Per-clip anomaly scores (Eq. 13-14), shared by `vad score` and the MLflow model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from vad.models.two_stream_ae import TwoStreamAE

__all__ = ["clip_scores", "stream_scores", "SCORE_COLUMNS"]

SCORE_COLUMNS = ("fused", "prediction_error", "cluster_distance")


@torch.no_grad()
def clip_scores(model: TwoStreamAE, clips: torch.Tensor, use_clusters: bool = True,
                maps: bool = False) -> dict[str, torch.Tensor]:
    """Raw scores of each clip: (B, T, C, H, W) -> dict of (B,) tensors.

    `prediction_error` = mean_p e(p), with e(p) the squared error of the predicted last frame at pixel p
    (mean over channels); `cluster_distance` = mean_p D_u(p), D(r) nearest-upsampled to the image size
    (NaN without clustering); `fused` = s = 1 / mean_p(e(p) * D_u(p)), high for normal clips.
    With `maps`, also `map`: the pixel-level anomaly map e(p) * D_u(p) (e(p) without clustering), (B, H, W),
    whose mean is 1 / fused.
    """
    outputs = model(clips)
    with torch.autocast(clips.device.type, enabled=False):  # under autocast, only the network runs in bf16
        return _scores(model, outputs, use_clusters, maps)


def _scores(model: TwoStreamAE, outputs, use_clusters: bool, maps: bool = False) -> dict[str, torch.Tensor]:
    error = (outputs.target.float() - outputs.prediction.float()).pow(2).mean(dim=1)
    if use_clusters:
        distance = model.kmeans(outputs.r.float())
        upsampled = F.interpolate(distance[:, None], size=error.shape[-2:], mode="nearest")[:, 0]
        pixels = error * upsampled
        cluster = upsampled.mean(dim=(1, 2))
    else:
        pixels, cluster = error, torch.full_like(error[:, 0, 0], float("nan"))
    scores = {"fused": 1.0 / pixels.mean(dim=(1, 2)).clamp_min(1e-12), "prediction_error": error.mean(dim=(1, 2)),
              "cluster_distance": cluster}
    return {**scores, "map": pixels} if maps else scores


def stream_scores(model: TwoStreamAE, frames: Iterable[np.ndarray | None], clip_len: int, batch_size: int,
                  use_clusters: bool, device: torch.device, amp_dtype: torch.dtype | None = None,
                  maps: bool = False) -> Iterator[tuple[int, dict]]:
    """(frame number, raw scores) for every frame that ends a full clip, as soon as its batch is scored.

    Causal: frame t's scores come from frames t-T+1..t. `frames` are uint8 (H, W, C); a None (a live
    source's reconnect, `vad.data.live.GAP`) ends the current run of consecutive frames: the T-1 frames
    after it end no clip. With `batch_size` 1 every frame is scored as it arrives (live sources); files
    use larger batches. With `maps`, each dict also holds `map`, the frame's (H, W) float32 anomaly map.
    """
    from vad.data.clips import to_model_input

    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    pending: list[np.ndarray] = []
    first = 0  # number of the frame pending[0]

    def flush() -> Iterator[tuple[int, dict[str, float]]]:
        chunk = torch.from_numpy(np.stack(pending)).to(device)
        starts = torch.arange(len(pending) - clip_len + 1, device=device)
        with autocast:
            scores = clip_scores(model, to_model_input(chunk[starts[:, None] + torch.arange(clip_len, device=device)]),
                                 use_clusters, maps)
        pixels = scores.pop("map").cpu().numpy() if maps else None
        values = {name: column.double().cpu().numpy() for name, column in scores.items()}
        for i in range(len(starts)):
            record = {name: float(column[i]) for name, column in values.items()}
            yield first + i + clip_len - 1, record if pixels is None else {**record, "map": pixels[i]}

    number = 0
    for frame in frames:
        if frame is None:
            if len(pending) >= clip_len:
                yield from flush()
            pending, first = [], number
            continue
        pending.append(frame)
        number += 1
        if len(pending) == batch_size + clip_len - 1:
            yield from flush()
            pending, first = pending[batch_size:], first + batch_size
    if len(pending) >= clip_len:
        yield from flush()
