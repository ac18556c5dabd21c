"""Frame-level AUCs of variants of Eq. 13 on one trained model (a diagnostic: it reads the test labels).

    python benchmarks/ped2_fusion.py --frames runs/ped2-cpu/frames --model runs/ped2-cpu/train

Each variant is a raw anomaly score per clip, turned into frame scores as `vad evaluate` does (Eq. 14 per
video on its reciprocal, the regularity), then micro and macro AUC:
  squared     mean_p e(p) D_u(p), D = sum_k w_k d_k^2 (the paper's Eq. 10; the product's `fused`)
  euclidean   the same with D = sum_k w_k d_k (the authors' code, arch/module/cluster.py)
  prediction  mean_p e(p) (no cluster term)
with d_k = ||r - c_k||, w = softmax(-alpha d). Nothing here chooses a setting (docs/ped2.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from common import trained_model_on_frames

from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.metrics import VideoScores, evaluate

VARIANTS = ("squared", "euclidean", "prediction")


def source_batches(clips: ClipSource, batch_size: int = 32) -> Iterator[torch.Tensor]:
    """Every clip of `clips`, in order, in batches (B, T, C, H, W)."""
    for first in range(0, len(clips), batch_size):
        yield clips.batch(torch.arange(first, min(first + batch_size, len(clips))))


@torch.no_grad()
def variant_scores(model: torch.nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, np.ndarray]:
    """Per-clip raw anomaly score (high = abnormal) of each of VARIANTS."""
    rows: dict[str, list[np.ndarray]] = {k: [] for k in VARIANTS}
    for batch in batches:
        out = model(batch)
        error = (out.target - out.prediction).pow(2).mean(dim=1)
        distance = model.kmeans._distances(out.r)  # (B, h, w, K)
        weights = torch.softmax(-model.kmeans.alpha * distance, dim=-1)
        for name, power in (("squared", 2), ("euclidean", 1)):
            cluster = (weights * distance.pow(power)).sum(-1)
            upsampled = F.interpolate(cluster[:, None], size=error.shape[-2:], mode="nearest")[:, 0]
            rows[name].append((error * upsampled).mean(dim=(1, 2)).numpy())
        rows["prediction"].append(error.mean(dim=(1, 2)).numpy())
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in rows.items()}


def main() -> None:
    args, trained, store = trained_model_on_frames(__doc__)
    clip_len = trained.data_params.clip_len
    figures = {}
    per_video = {video.id: variant_scores(trained.model, source_batches(ClipSource(store, [video], clip_len)))
                 for video in store.split(Split.TEST)}
    for name in VARIANTS:
        videos = []
        for video in store.split(Split.TEST):
            labels = store.labels(video)
            raw = np.full(len(labels), np.nan)
            raw[clip_len - 1:] = per_video[video.id][name]
            scored = ~np.isnan(raw)
            regularity = np.where(scored, 1.0 / np.where(scored, raw, 1.0), np.nan)
            low, high = np.nanmin(regularity), np.nanmax(regularity)
            anomaly = 1.0 - (regularity - low) / (high - low)  # Eq. 14
            videos.append(VideoScores(video.id, labels, scored, np.nan_to_num(anomaly), None, None))
        metrics = evaluate(videos).metrics
        figures[name] = {"auc_micro": round(metrics["auc_micro"], 4), "auc_macro": round(metrics["auc_macro"], 4)}
        print(f"{name:<11} micro AUC {figures[name]['auc_micro']:.4f}  macro {figures[name]['auc_macro']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
