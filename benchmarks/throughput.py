"""Training and scoring throughput of the network on random clips (no data loading).

    python benchmarks/throughput.py --size 64 --channels 1 --width 8 --batch 8
Prints clips/s for a training step (forward, backward, Adam) and frames/s for scoring (forward only), the
FLOPs per clip (torch's flop counter), the achieved TFLOP/s (and its share of the GPU's bf16 peak) and
peak memory, and appends one JSON line to docs/benchmarks.jsonl. `--amp bf16 --channels-last` measure
the GPU fast path.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
from common import compute_figures, emit, flops_per_clip, machine, peak_gpu_mb, peak_host_mb

from vad.config import DataParams, ModelParams
from vad.models import build_model
from vad.models.losses import autoencoder_losses
from vad.scoring import clip_scores


def timed(fn, warmup: int, repeats: int, sync) -> float:
    """Mean seconds per call of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    sync()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--score-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--amp", choices=("off", "bf16"), default="off")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    data = DataParams(image_size=args.size, channels=args.channels)
    model = build_model(ModelParams(width=args.width), data).to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    clips = torch.rand(args.batch, 5, args.channels, args.size, args.size, device=device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.amp == "bf16" else nullcontext())
    forward_flops = flops_per_clip(model, clips[:1])
    train_flops = flops_per_clip(model, clips[:1], backward=True)

    def train_step() -> None:
        with autocast:
            out = model(clips)
        loss = sum(autoencoder_losses(out, 1.0).values()) + 0.1 * model.kmeans(out.r.float()).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_s = timed(train_step, 2, args.repeats, sync)
    model.eval()
    batch = torch.rand(args.score_batch, 5, args.channels, args.size, args.size, device=device)

    def score_step() -> None:
        with autocast:
            clip_scores(model, batch)

    score_s = timed(score_step, 1, max(args.repeats // 2, 2), sync)
    gpu = str(machine().get("gpu", ""))
    train_rate, score_rate = args.batch / train_s, args.score_batch / score_s
    emit({"benchmark": "throughput", **vars(args), "gflop_per_clip_forward": forward_flops / 1e9,
          "gflop_per_clip_train_step": train_flops / 1e9,
          "train_clips_per_s": train_rate, **{f"train_{k}": v for k, v in compute_figures(
              train_flops, train_rate, gpu).items()},
          "score_frames_per_s": score_rate, **{f"score_{k}": v for k, v in compute_figures(
              forward_flops, score_rate, gpu).items()},
          "peak_host_mb": round(peak_host_mb(), 1), "peak_gpu_mb": peak_gpu_mb()})


if __name__ == "__main__":
    main()
