"""Whether a tiled network's error shows its tile borders, on held-out normal clips: no test label.

    python benchmarks/tile_seams.py --frames runs/ped2-cpu/frames --model runs/ped2-cpu/train

Normal clips: every clip inside the frames held out at the end of each training video (`detect.holdout_share`,
never trained on; what `vad calibrate` scores). Scored with abutting tiles and with overlapping ones
(`data.tile_overlap`): the mean prediction error, and the seam ratio, the mean error on the two pixel rows and
columns on either side of each inner tile border over the mean error of the frame (1: no seam). The criterion of
run 12 in docs/ped2.md.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from common import trained_model_on_frames
from pseudo_anomalies import held_out_clips

from vad.data.base import Split
from vad.data.clips import holdout_frames


def seam_ratio(error: torch.Tensor, tile: tuple[int, int]) -> float:
    """Mean of a (H, W) error map on the rows and columns at the inner tile borders over its mean."""
    height, width = error.shape
    rows = [r for border in range(tile[0], height, tile[0]) for r in (border - 1, border)]
    cols = [c for border in range(tile[1], width, tile[1]) for c in (border - 1, border)]
    seam = torch.cat([error[rows].flatten(), error[:, cols].flatten()])
    return float(seam.mean() / error.mean())


def main() -> None:
    args, trained, store = trained_model_on_frames(__doc__)
    model, data = trained.model, trained.data_params
    if data.tile is None or not trained.holdout_share:
        raise SystemExit(f"{args.model}: needs a tiled network (data.tile) trained with a hold-out")
    held_out = []
    for video in store.split(Split.TRAIN):
        frames = np.asarray(store.frames(video))
        held_out.append(frames[len(frames) - holdout_frames(len(frames), trained.holdout_share):])
    figures: dict[str, float] = {}
    for overlap in (False, True):
        model.tile_overlap = overlap
        total, clips = 0.0, 0
        for frames in held_out:
            for batch in held_out_clips(frames, data.clip_len, 1, batch_size=8):
                out = model(batch)
                error = (out.prediction - out.target).pow(2).mean(1)
                total, clips = total + error.sum(0), clips + len(error)
        mean_map = total / clips
        name = "overlap" if overlap else "abutting"
        figures[f"{name}_prediction_error"] = float(mean_map.mean())
        figures[f"{name}_seam_ratio"] = seam_ratio(mean_map, data.tile)
        print(f"{name:<9} {clips} held-out clips: prediction error {figures[f'{name}_prediction_error']:.6f}, "
              f"seam ratio {figures[f'{name}_seam_ratio']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
