"""Scoring throughput: end to end (frame store in, scores out) next to model-forward-only, same batch.

    python benchmarks/score_throughput.py --frames data/frames [--width 8] [--batch 64]
    python benchmarks/score_throughput.py --source ../shared/data/ped2 --size 64 --channels 1
End to end = clips gathered from the uint8 frame store, converted, scored (fused, prediction error,
cluster distance) and copied back, as `vad score` does; forward only = the same batches already built.
Appends one JSON line to docs/benchmarks.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from vad.config import DataParams, ModelParams
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.models import build_model
from vad.scoring import clip_scores
from vad.stages.score import score_clips

sys.path.insert(0, str(Path(__file__).parent))
from throughput import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, help="an existing frame store")
    parser.add_argument("--source", type=Path, help="or a dataset to extract first")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.frames is None:
        from vad.stages import extract

        args.frames = Path(tempfile.mkdtemp()) / "frames"
        extract.run(DataParams(image_size=args.size, channels=args.channels), args.source, args.frames)
    store = FrameStore.open(args.frames)
    data = DataParams(image_size=store.image_size, channels=store.channels)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model = build_model(ModelParams(width=args.width), data).to(device).eval()
    clips = ClipSource(store, store.split(Split.TEST), data.clip_len, device)
    score_clips(model, ClipSource(store, store.split(Split.TEST)[:1], data.clip_len, device), args.batch, True)
    sync()
    started = time.perf_counter()
    score_clips(model, clips, args.batch, True)
    sync()
    end_to_end = len(clips) / (time.perf_counter() - started)
    batches = [clips.batch(torch.arange(i, min(i + args.batch, len(clips)))) for i in range(0, len(clips), args.batch)]
    sync()
    started = time.perf_counter()
    for batch in batches:
        clip_scores(model, batch)
    sync()
    forward = len(clips) / (time.perf_counter() - started)
    record = {"benchmark": "score_throughput", "date": date.today().isoformat(), **machine(),
              "size": list(store.image_size), "channels": store.channels, "width": args.width, "batch": args.batch,
              "clips": len(clips), "end_to_end_frames_per_s": round(end_to_end, 1),
              "forward_only_frames_per_s": round(forward, 1), "share": round(end_to_end / forward, 3)}
    for key, value in record.items():
        print(f"{key:>26}: {value}")
    with (Path(__file__).resolve().parents[1] / "docs" / "benchmarks.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
