"""What the network sees and where its score comes from, as pictures: one row per chosen frame.

    python benchmarks/ped2_maps.py --frames runs/ped2-cpu/frames --model runs/ped2-cpu/train \
        --video 01 --at 30 --at 120 --out runs/ped2-cpu/maps-01.png

Columns: f0 (the clip's first frame), f4 (the target), the prediction f0_hat + d_hat, the appearance error
(f0_hat - f0)^2, the motion error (d_hat - d)^2, the prediction error e, the upsampled cluster distance D_u
and the fused map e * D_u (the score is the inverse of its mean). Each map has its own colour scale; the
row title gives the frame, its label and the map means.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vad.checkpoint import CHECKPOINT
from vad.data.clips import to_model_input
from vad.data.store import FrameStore
from vad.models import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--at", type=int, action="append", required=True, help="frame the clip ends at")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    trained = load_trained(args.model / CHECKPOINT)
    model, data = trained.model, trained.data_params
    store = FrameStore.open(args.frames)
    video = next(v for v in store.split("test") + store.split("train") if v.id == args.video)
    frames, labels = store.frames(video), store.labels(video)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    titles = ["f0", "f4", "f0_hat + d_hat", "appearance err", "motion err", "prediction err e", "D_u", "e * D_u"]
    figure = Figure(figsize=(2 * len(titles), 2.2 * len(args.at)), dpi=100)
    FigureCanvasAgg(figure)
    for row, end in enumerate(args.at):
        clip = to_model_input(torch.from_numpy(np.array(frames[end - data.clip_len + 1 : end + 1]))[None])
        with torch.no_grad():
            out = model(clip)
            distance = model.kmeans(out.r)
        e = (out.prediction - out.target).pow(2).mean(1)[0]
        d_u = F.interpolate(distance[:, None], size=e.shape, mode="nearest")[0, 0]
        maps = [out.f0[0].mean(0), out.target[0].mean(0), out.prediction[0].mean(0),
                (out.f0_hat - out.f0).pow(2).mean(1)[0] if out.f0_hat is not None else torch.zeros_like(e),
                (out.d_hat - out.d).pow(2).mean(1)[0] if out.d_hat is not None else torch.zeros_like(e),
                e, d_u, e * d_u]
        for col, (title, image) in enumerate(zip(titles, maps, strict=True)):
            axis = figure.add_subplot(len(args.at), len(titles), row * len(titles) + col + 1)
            axis.imshow(image.numpy(), cmap="gray" if col < 3 else "inferno")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=8)
        label = "?" if labels is None else ("abnormal" if labels[end] else "normal")
        figure.axes[row * len(titles)].set_ylabel(
            f"frame {end} {label}\ne {e.mean():.5f}\nD {d_u.mean():.3f}", fontsize=7)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
