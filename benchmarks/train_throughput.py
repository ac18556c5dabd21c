"""Training throughput of the real `pretrain` stage: clips/s, data wait, TFLOP/s and peak memory.

    python benchmarks/train_throughput.py --source ../shared/data/ped2 --size 64 --channels 1 --width 8
    python benchmarks/train_throughput.py --frames data/frames --preset configs/ped2.yaml --epochs 3
Unlike throughput.py (random clips already on the device), this runs `vad.stages.pretrain` on a frame
store: clips built from the uint8 frames (on the GPU when they fit, else staged through pinned memory),
the params' perf switches, per-epoch checkpoints. The figures are those of the last epoch (the first
includes warm-up). Appends one JSON line to docs/benchmarks.jsonl.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from common import compute_figures, emit, flops_per_clip, machine, override_preset, peak_gpu_mb, peak_host_mb

from vad.config import load_params
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.models import build_model
from vad.stages import pretrain

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, help="an existing frame store")
    parser.add_argument("--source", type=Path, help="or a dataset to extract first")
    parser.add_argument("--preset", type=Path, default=ROOT / "configs" / "ped2.yaml")
    parser.add_argument("--size", type=int, help="override the preset's image size")
    parser.add_argument("--channels", type=int, help="override the preset's channels")
    parser.add_argument("--width", type=int, help="override the preset's network width")
    parser.add_argument("--batch", type=int, help="override pretrain.batch_size")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-clips", type=int, help="cap the clips of each epoch (slow CPUs)")
    parser.add_argument("--host-staged", action="store_true",
                        help="read batches from the memory-mapped store with loader processes, as for data that "
                             "does not fit in GPU memory (default: frames held on the device)")
    args = parser.parse_args()
    if args.host_staged:
        original = ClipSource.__init__

        def staged(self, *positional, resident=None, **options):
            original(self, *positional, resident=False, **options)

        ClipSource.__init__ = staged
    params = override_preset(load_params(args.preset), size=args.size, channels=args.channels, width=args.width)
    params = params.model_copy(update={
        "pretrain": params.pretrain.model_copy(update={"epochs": args.epochs, "max_clips_per_epoch": args.max_clips,
                                                       "batch_size": args.batch or params.pretrain.batch_size})})
    work = Path(tempfile.mkdtemp(prefix="train_throughput."))
    if args.frames is None:
        from vad.stages import extract

        args.frames = work / "frames"
        extract.run(params.data, args.source, args.frames)
    store = FrameStore.open(args.frames)
    params = params.model_copy(update={"data": params.data.model_copy(
        update={"image_size": store.image_size, "channels": store.channels})})
    last = pretrain.run(params, args.frames, work / "pretrain").history[-1]  # timings: history.json has none
    device = torch.device("cuda" if torch.cuda.is_available() and params.device != "cpu" else "cpu")
    model = build_model(params.model, params.data).to(device)
    clip = ClipSource.from_split(store, "train", params.data.clip_len, device).batch(torch.arange(1))
    train_flops = flops_per_clip(model, clip, backward=True)
    emit({"benchmark": "train_throughput", "stage": "pretrain", "host_staged": args.host_staged,
          "size": list(store.image_size),
          "channels": store.channels, "width": params.model.width, "batch": params.pretrain.batch_size,
          "epochs": args.epochs, "clips_per_epoch": args.max_clips, "perf": params.perf.model_dump(mode="json"),
          "train_clips_per_s": round(last["clips_per_s"], 2), "data_wait_share": round(last["data_wait_share"], 4),
          "gflop_per_clip_train_step": round(train_flops / 1e9, 3),
          **compute_figures(train_flops, last["clips_per_s"], str(machine().get("gpu", ""))),
          "peak_host_mb": round(peak_host_mb(), 1), "peak_gpu_mb": peak_gpu_mb()})


if __name__ == "__main__":
    main()
