"""Training and scoring throughput of the network on random clips (no data loading).

    python benchmarks/throughput.py --size 64 --channels 1 --width 8 --batch 8
Prints clips/s for a training step (forward, backward, Adam) and frames/s for scoring (forward only),
the FLOPs per clip, and appends one JSON line to docs/benchmarks.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vad.config import DataParams, ModelParams
from vad.models import build_model
from vad.models.losses import autoencoder_losses
from vad.scoring import clip_scores


def machine() -> dict[str, str | int]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "gpu": gpu, "torch": torch.__version__}


def timed(fn, warmup: int, repeats: int, sync) -> float:
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
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    data = DataParams(image_size=args.size, channels=args.channels)
    model = build_model(ModelParams(width=args.width), data).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    clips = torch.rand(args.batch, 5, args.channels, args.size, args.size, device=device)

    def train_step() -> None:
        out = model(clips)
        loss = sum(autoencoder_losses(out, 1.0).values()) + 0.1 * model.kmeans(out.r).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        model(clips[:1])
    train_s = timed(train_step, 2, args.repeats, sync)
    model.eval()
    score_clips = torch.rand(args.score_batch, 5, args.channels, args.size, args.size, device=device)
    score_s = timed(lambda: clip_scores(model, score_clips), 1, max(args.repeats // 2, 2), sync)
    record = {"benchmark": "throughput", "date": date.today().isoformat(), **machine(), **vars(args),
              "gflop_per_clip_forward": counter.get_total_flops() / 1e9,
              "train_clips_per_s": args.batch / train_s, "score_frames_per_s": args.score_batch / score_s}
    for key, value in record.items():
        print(f"{key:>24}: {value:.4g}" if isinstance(value, float) else f"{key:>24}: {value}")
    out = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
