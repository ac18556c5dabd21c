"""Scoring throughput: end to end (frame store in, scores out) next to model-forward-only, same batch.

    python benchmarks/score_throughput.py --frames data/frames [--width 8] [--batch 64]
    python benchmarks/score_throughput.py --source ../shared/data/ped2 --size 64 --channels 1
End to end = the test videos' uint8 frames read from the store (in a background thread) and moved to the
device, clips gathered, converted, scored (fused, prediction error, cluster distance) and the scores
copied back, as `vad score` does; forward only = the network and the score arithmetic on the same
batches, already built. Prints both rates, their ratio, achieved TFLOP/s and peak memory; with `--source`
a layout of video files, also the rate of `vad score --video` (decoding in a background thread included).
Appends one JSON line to docs/benchmarks.jsonl.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import compute_figures, emit, flops_per_clip, forward_only_frames_per_s, machine, peak_gpu_mb, peak_host_mb

from vad.config import DataParams, ModelParams
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.decode import iter_frames, prefetch
from vad.data.store import FrameStore
from vad.models import build_model
from vad.scoring import score_frames, score_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, help="an existing frame store")
    parser.add_argument("--source", type=Path, help="or a dataset to extract first")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--amp", choices=("off", "bf16"), default="off")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs of each rate")
    parser.add_argument("--videos", type=int, help="score only the first N test videos (slow CPUs)")
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
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    amp = torch.bfloat16 if args.amp == "bf16" else None
    videos = store.split(Split.TEST)[: args.videos]
    score_store(model, store, videos[:1], data.clip_len, args.batch, True, device, amp)  # warm-up
    clips = ClipSource(store, videos, data.clip_len, device)  # for the forward-only batches
    end_to_end = forward = 0.0
    for _ in range(args.repeat):
        sync()
        started = time.perf_counter()
        score_store(model, store, videos, data.clip_len, args.batch, True, device, amp)
        end_to_end = max(end_to_end, len(clips) / (time.perf_counter() - started))
        batches = [clips.batch(torch.arange(i, min(i + args.batch, len(clips))))
                   for i in range(0, len(clips), args.batch)]
        forward = max(forward, forward_only_frames_per_s(model, batches, True, amp))
        del batches
    from_video = None
    sources = [args.source / v.source for v in videos] if args.source else []
    if sources and all(path.is_file() for path in sources):  # a layout of video files: time decode + score too
        started = time.perf_counter()
        for path in sources:
            frames = prefetch(iter_frames(path, data.image_size, data.channels), 2 * args.batch)
            score_frames(model, frames, data.clip_len, args.batch, True, device, amp)
        sync()
        from_video = round(len(clips) / (time.perf_counter() - started), 1)
    gpu = str(machine().get("gpu", ""))
    emit({"benchmark": "score_throughput", "size": list(store.image_size), "channels": store.channels,
          "width": args.width, "batch": args.batch, "amp": args.amp, "channels_last": args.channels_last,
          "device": args.device, "clips": len(clips), "repeat": args.repeat,
          "end_to_end_frames_per_s": round(end_to_end, 1), "forward_only_frames_per_s": round(forward, 1),
          "share": round(end_to_end / forward, 3), "from_video_files_frames_per_s": from_video,
          **compute_figures(flops_per_clip(model, clips.batch(torch.arange(1))), end_to_end, gpu),
          "peak_host_mb": round(peak_host_mb(), 1), "peak_gpu_mb": peak_gpu_mb()})


if __name__ == "__main__":
    main()
