"""How well a trained model's scores separate held-out normal clips from pseudo-anomalies: no test label.

    python benchmarks/pseudo_anomalies.py --frames runs/ped2-cpu/frames --model runs/ped2-cpu/train
    python benchmarks/pseudo_anomalies.py --frames data/unseen-frames --model models/train --unseen

Normal: every clip (stride 1) inside the frames held out at the end of each training video (the model's
`detect.holdout_share`, never trained on; what `vad calibrate` scores), or with `--unseen` every clip of each
training video of `--frames`, footage the model never saw (the synthetic demo: fresh normal videos of its scene,
`benchmarks/unseen_synthetic.py`). Pseudo-anomalies: clips cut from the same
held-out frames at stride 3 (f_t, f_t+3, ..., f_t+12), in which everything moves three times as fast. For each
score of benchmarks/ped2_fusion.py (the fused score with the squared or the unsquared cluster map, the prediction
error alone), the AUC of telling the two apart by the raw score, all videos pooled. The label-free criterion of
run 6 in docs/ped2.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import torch
from common import trained_model_on_frames
from ped2_fusion import VARIANTS, variant_scores
from sklearn.metrics import roc_auc_score

from vad.data.base import Split
from vad.data.clips import holdout_frames, to_model_input

STRIDE = 3


def held_out_clips(frames: np.ndarray, clip_len: int, stride: int, batch_size: int = 32) -> Iterator[torch.Tensor]:
    """Every clip of `frames` (uint8 (F, H, W, C)) whose frames are `stride` apart, as model input batches."""
    span = (clip_len - 1) * stride
    starts = np.arange(len(frames) - span)
    for first in range(0, len(starts), batch_size):
        index = starts[first:first + batch_size, None] + stride * np.arange(clip_len)
        yield to_model_input(torch.from_numpy(frames[index]))


def main() -> None:
    args, trained, store = trained_model_on_frames(__doc__, unseen=True)
    if not args.unseen and not trained.holdout_share:
        raise SystemExit(f"{args.model}: trained without a hold-out (detect.holdout_share): no unseen normal clips")
    clip_len = trained.data_params.clip_len
    scores = {1: {k: [] for k in VARIANTS}, STRIDE: {k: [] for k in VARIANTS}}
    for video in store.split(Split.TRAIN):
        frames = np.asarray(store.frames(video))
        held_out = frames if args.unseen else frames[len(frames) - holdout_frames(len(frames), trained.holdout_share):]
        for stride, rows in scores.items():
            for name, values in variant_scores(trained.model, held_out_clips(held_out, clip_len, stride)).items():
                rows[name].append(values)
    normal = {k: np.concatenate(v) for k, v in scores[1].items()}
    pseudo = {k: np.concatenate(v) for k, v in scores[STRIDE].items()}
    if not len(normal["squared"]) or not len(pseudo["squared"]):
        raise SystemExit(f"the held-out frames are too few for clips at stride {STRIDE} ({(clip_len - 1) * STRIDE + 1} "
                         "frames a clip): a longer hold-out is needed")
    labels = np.r_[np.zeros(len(normal["squared"])), np.ones(len(pseudo["squared"]))]
    figures = {"normal_clips": len(normal["squared"]), "pseudo_clips": len(pseudo["squared"])}
    print(f"{figures['normal_clips']} held-out normal clips, {figures['pseudo_clips']} at stride {STRIDE}")
    for name in VARIANTS:
        figures[name] = round(float(roc_auc_score(labels, np.r_[normal[name], pseudo[name]])), 4)
        print(f"{name:<11} pseudo-anomaly AUC {figures[name]:.4f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
