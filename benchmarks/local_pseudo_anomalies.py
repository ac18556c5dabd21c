"""Which alarm score catches local pseudo-anomalies at the calibrated threshold: no test label (docs/detect.md).

    python benchmarks/local_pseudo_anomalies.py --frames runs/ped2-cpu/frames --model runs/ped2-cpu/train
    python benchmarks/local_pseudo_anomalies.py --frames runs/unseen/frames --model models/train --unseen

Normal: the clips held out at the end of each training video (with `--unseen`, every clip of footage the model
never saw; `benchmarks/unseen_synthetic.py`) that have room for a stride-3 clip. Local pseudo-anomaly: the same
clip with one square window (a quarter of the frame's side) replaced, in frames 1..T-1, by that window of the
stride-3 clip from the same first frame (f_t, f_t+3, ...): something moves three times as fast there only. The
window is where the last frames of the two clips differ most. For each alarm score (`vad.calibration.alarm_score`:
map fused or prediction, pooled by mean or window), the recall of pseudo-anomalies at the threshold `vad.calibration`
picks on the normal clips for 1, 60 and 600 false alarms per hour at 10 frames/s, and the AUC.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from common import trained_model_on_frames
from sklearn.metrics import roc_auc_score

from vad.calibration import ALARM_MAPS, POOLINGS, alarm_score, calibrate
from vad.data.base import Split
from vad.data.clips import holdout_frames, to_model_input
from vad.scoring import clip_scores

STRIDE = 3
BUDGETS = (1.0, 60.0, 600.0)
SCORES = [(m, p) for m in ALARM_MAPS for p in POOLINGS]


def local_pseudo_clips(frames: np.ndarray, starts: np.ndarray, clip_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(normal clips, local pseudo-anomalies) starting at `starts`, uint8 (B, T, H, W, C) each."""
    clip = frames[starts[:, None] + np.arange(clip_len)]
    fast = frames[starts[:, None] + STRIDE * np.arange(clip_len)]
    height, width = frames.shape[1:3]
    side = (height // 4, width // 4)
    moved = np.abs(fast[:, -1].astype(np.int32) - clip[:, -1].astype(np.int32)).sum(-1).astype(np.float64)
    boxes = F.avg_pool2d(torch.from_numpy(moved)[:, None], side, stride=1)[:, 0]
    pseudo = clip.copy()
    for i, box in enumerate(boxes):
        y, x = np.unravel_index(int(box.argmax()), tuple(box.shape))
        pseudo[i, 1:, y:y + side[0], x:x + side[1]] = fast[i, 1:, y:y + side[0], x:x + side[1]]
    return clip, pseudo


def main() -> None:
    args, trained, store = trained_model_on_frames(__doc__, unseen=True)
    model, clip_len, kmeans = trained.model.eval(), trained.data_params.clip_len, trained.model_params.kmeans
    scores: dict[str, list[dict[str, np.ndarray]]] = {"normal": [], "pseudo": []}
    for video in store.split(Split.TRAIN):
        frames = np.asarray(store.frames(video))
        if not args.unseen:
            frames = frames[len(frames) - holdout_frames(len(frames), trained.holdout_share):]
        starts = np.arange(len(frames) - (clip_len - 1) * STRIDE)
        for first in range(0, len(starts), 16):
            for name, clips in zip(scores, local_pseudo_clips(frames, starts[first:first + 16], clip_len),
                                   strict=True):
                raw = clip_scores(model, to_model_input(torch.from_numpy(clips)), kmeans)
                scores[name].append({k: v.double().numpy() for k, v in raw.items()})
    if not scores["normal"]:
        raise SystemExit(f"the held-out frames are too few for clips at stride {STRIDE}: a longer hold-out is needed")
    raw = {part: {k: np.concatenate([b[k] for b in batches]) for k in batches[0]} for part, batches in scores.items()}
    figures: dict[str, object] = {f"{part}_clips": len(raw[part]["fused"]) for part in raw}
    print(f"{figures['normal_clips']} normal clips, {figures['pseudo_clips']} local pseudo-anomalies")
    for map_, pooling in SCORES:
        normal, pseudo = (alarm_score(raw[part], map_, pooling) for part in ("normal", "pseudo"))
        if np.isnan(normal).all():  # the relative map of a network without a normal error map
            print(f"{map_:>10} {pooling:<6} not computed: the model carries no normal error map")
            continue
        auc = roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(pseudo))], np.r_[normal, pseudo])
        recall = {b: float(np.mean(pseudo > calibrate(normal, b, 10.0).threshold)) for b in BUDGETS}
        figures[f"{map_}_{pooling}"] = {"auc": round(float(auc), 4), **{f"recall_{b:g}_per_hour": round(r, 3)
                                                                          for b, r in recall.items()}}
        recalls = "  ".join(f"{b:g}/h recall {r:.3f}" for b, r in recall.items())
        print(f"{map_:>10} {pooling:<6} AUC {auc:.4f}  {recalls}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
