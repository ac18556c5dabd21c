"""What a fixed threshold can find: each labelled interval's peak of a frame statistic over the normal frames' peak.

    python benchmarks/detect_margins.py --frames data/frames --model models/train

For each test video's labelled interval and each per-frame statistic of the pixel maps (e: the squared error of
the predicted last frame; D_u: the cluster distance upsampled; e * D_u: the map whose mean is the product's raw
score, 1 / fused, with the model's own distance), the highest value inside the interval divided by the highest on
any normal frame of the test set. Above 1, some threshold overlaps the interval with no event on normal footage;
below 1, none can. `mean` is the mean over the frame; `max8` the largest mean over 8x8 windows at stride 4 (the
image score of anomalib: the maximum of the map). A diagnostic with test labels: it chooses nothing.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from common import trained_model_on_frames
from ped2_fusion import source_batches

from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.plots import abnormal_intervals

WINDOW, STRIDE = 8, 4


@torch.no_grad()
def frame_statistics(model: torch.nn.Module, batches) -> dict[str, np.ndarray]:
    """Per clip: mean and 8x8-window maximum of e, D_u and e * D_u."""
    rows: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        out = model(batch)
        error = (out.target - out.prediction).pow(2).mean(dim=1)
        distance = F.interpolate(model.kmeans(out.r)[:, None], size=error.shape[-2:], mode="nearest")[:, 0]
        for name, pixels in (("e*D_u", error * distance), ("e", error), ("D_u", distance)):
            window = F.avg_pool2d(pixels[:, None], WINDOW, STRIDE).amax(dim=(1, 2, 3))
            rows.setdefault(f"{name} mean", []).append(pixels.mean(dim=(1, 2)).numpy())
            rows.setdefault(f"{name} max8", []).append(window.numpy())
    return {name: np.concatenate(parts) for name, parts in rows.items()}


def main() -> None:
    args, trained, store = trained_model_on_frames(__doc__)
    clip_len = trained.data_params.clip_len
    peaks: dict[str, list[float]] = {}
    normal_peak: dict[str, float] = {}
    intervals: list[str] = []
    for video in store.split(Split.TEST):
        if video.labels is None:
            continue
        labels = store.labels(video)[clip_len - 1:]  # the frames that end a clip, in clip order
        stats = frame_statistics(trained.model, source_batches(ClipSource(store, [video], clip_len)))
        for name, values in stats.items():
            if (labels == 0).any():
                normal_peak[name] = max(normal_peak.get(name, -np.inf), float(values[labels == 0].max()))
            for start, end in abnormal_intervals(labels):
                peaks.setdefault(name, []).append(float(values[start:end + 1].max()))
        intervals += [f"{video.id}:{start + clip_len - 1}-{end + clip_len - 1}"
                      for start, end in abnormal_intervals(labels)]
    figures = {"intervals": intervals,
               "ratios": {name: [round(p / normal_peak[name], 4) for p in values] for name, values in peaks.items()}}
    print("interval peak / normal peak, per labelled interval: " + " ".join(intervals))
    for name, ratios in figures["ratios"].items():
        found = sum(r > 1 for r in ratios)
        print(f"{name:<11} " + " ".join(f"{r:.2f}" for r in ratios) + f"   ({found} of {len(ratios)} above 1)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
