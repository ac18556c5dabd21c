"""How well each stream of a trained model fits clips, next to predictors that learn nothing.

    python benchmarks/ped2_fit.py --frames runs/ped2-cpu/frames --model runs/ped2-cpu/train

Mean squared error per pixel (values in [0, 1]) over the training clips and over the test clips, these split
by their label (for the report only: nothing here picks a setting from test labels):
  appearance  f0_hat against f0 (the spatial stream), next to the median training frame against f0
  motion      d_hat against d = f4 - f0 (the motion stream), next to d_hat = 0 (no motion) and
              d_hat = f3 - f0 (f4 predicted by f3: both are inputs of the network)
  prediction  f0_hat + d_hat against f4 (what the score uses)
"""

from __future__ import annotations

import json

import numpy as np
import torch
from common import trained_model_on_frames

from vad.data.base import Split
from vad.data.clips import ClipSource

COLUMNS = ("appearance", "median_frame", "motion", "motion_zero", "motion_last", "prediction")


@torch.no_grad()
def clip_errors(model: torch.nn.Module, clips: ClipSource, median: torch.Tensor,
                batch_size: int = 64) -> dict[str, np.ndarray]:
    """Per-clip mean squared error of each column of COLUMNS (NaN for an absent stream)."""
    rows: dict[str, list[np.ndarray]] = {k: [] for k in COLUMNS}
    for first in range(0, len(clips), batch_size):
        batch = clips.batch(torch.arange(first, min(first + batch_size, len(clips))))
        out = model(batch)

        def mse(a, b):
            return (a - b).pow(2).flatten(1).mean(1).numpy()

        nan = np.full(len(batch), np.nan)
        rows["appearance"].append(mse(out.f0_hat, out.f0) if out.f0_hat is not None else nan)
        rows["median_frame"].append(mse(median.expand_as(out.f0), out.f0))
        rows["motion"].append(mse(out.d_hat, out.d) if out.d_hat is not None else nan)
        rows["motion_zero"].append(mse(torch.zeros_like(out.d), out.d))
        rows["motion_last"].append(mse(batch[:, -2] - batch[:, 0], out.d))
        rows["prediction"].append(mse(out.prediction, out.target))
    return {k: np.concatenate(v) for k, v in rows.items()}


def main() -> None:
    args, trained, store = trained_model_on_frames(__doc__)
    model, data = trained.model, trained.data_params
    train = np.concatenate([np.asarray(store.frames(video)) for video in store.split(Split.TRAIN)])
    # (H, W, C) uint8 -> (C, H, W) in [0, 1], as the network sees a frame
    median = torch.from_numpy(np.median(train, axis=0)).permute(2, 0, 1).float() / 255
    table: dict[str, dict[str, float]] = {}
    table["train"] = {k: float(np.mean(v)) for k, v in clip_errors(model, ClipSource.from_split(
        store, Split.TRAIN, data.clip_len), median).items()}
    test = store.split(Split.TEST)
    errors = clip_errors(model, ClipSource(store, test, data.clip_len), median)
    # The clip ending at frame t carries frame t's label.
    labels = np.concatenate([store.labels(video)[data.clip_len - 1:] for video in test])
    for name, mask in (("test normal", labels == 0), ("test abnormal", labels == 1)):
        table[name] = {k: float(np.mean(v[mask])) for k, v in errors.items()}
    print(f"{'clips':<14}" + "".join(f"{k:>13}" for k in COLUMNS))
    for name, row in table.items():
        print(f"{name:<14}" + "".join(f"{row[k]:>13.5f}" for k in COLUMNS))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
