"""`vad detect` speed: frames/s on a video file, and per-frame latency on a live source paced in real time.

    python benchmarks/detect_latency.py [--size 64] [--channels 1] [--width 8] [--fps 25] [--seconds 20]

The network is built at the given geometry with random weights (the cost does not depend on the weights:
`--width 8` is the demo model's network, `--width 32` the paper's). Footage: moving blobs on a 240x360
background, as BGR frames.
- File: the frames written to an mp4 and run through `vad detect` (`vad.stages.detect.run`: decoding in a
  background thread, batches of `score.batch_size` clips, rows and events written), frames/s of wall time.
- Live: the frames served as an HTTP MJPEG stream on 127.0.0.1 paced at `--fps` (`vad.data.mjpeg`) and read by
  the functions `vad detect` runs on a live source (`live_frames`, then `stream_scores` frame by frame).
  Latency of frame i = the moment its score exists - the moment the server sent it: transport, JPEG
  decoding, resizing and scoring. Real time means every frame scored at the stream's rate with p99 under
  100 ms; a scorer slower than the stream falls behind, and its latency grows without bound.
Appends one JSON line to docs/benchmarks.jsonl.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import emit, peak_host_mb

from vad.checkpoint import CHECKPOINT, save_checkpoint
from vad.config import parse_params
from vad.data.live import live_frames
from vad.data.mjpeg import MjpegServer
from vad.models import build_model
from vad.scoring import stream_scores
from vad.stages import detect


def footage(frames: int, seed: int = 0) -> list[np.ndarray]:
    """Three blobs crossing a textured 240x360 background, BGR uint8."""
    rng = np.random.default_rng(seed)
    background = rng.integers(60, 120, (240, 360, 3), dtype=np.uint8)
    ys, xs = np.mgrid[:240, :360]
    out = []
    for t in range(frames):
        frame = background.copy()
        for k, speed in enumerate((2, 3, 5)):
            cy, cx = 60 + 60 * k, (speed * t + 90 * k) % 360
            frame[(ys - cy) ** 2 + (xs - cx) ** 2 < 15**2] = (200, 180, 160)
        out.append(frame)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the live run")
    parser.add_argument("--file-frames", type=int, default=500)
    args = parser.parse_args()
    torch.manual_seed(0)
    params = parse_params({"device": "cpu", "data": {"image_size": [args.size, args.size], "channels": args.channels},
                           "model": {"width": args.width}, "detect": {"fps": args.fps}})
    model = build_model(params.model, params.data).eval()
    torch.nn.init.normal_(model.kmeans.centers, std=0.05)
    work = Path(tempfile.mkdtemp(prefix="detect-latency-"))
    save_checkpoint(work / "model" / CHECKPOINT, {"config": {"model": params.model.model_dump(mode="json"),
                                                             "data": params.data.model_dump(mode="json")},
                                                  "model": model.state_dict()})
    frames = footage(max(args.file_frames, int(args.fps * args.seconds)))

    import cv2

    video = work / "footage.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (360, 240))
    for frame in frames[: args.file_frames]:
        writer.write(frame)
    writer.release()
    began = time.perf_counter()
    result = detect.run(params, [str(video)], work / "model", work / "out", threshold=1.0)
    file_fps = result.metrics["frames"] / (time.perf_counter() - began)

    count = int(args.fps * args.seconds)
    server = MjpegServer(frames[:count], fps=args.fps, connections=1)
    scored: dict[int, float] = {}
    try:
        stream = live_frames(server.url, params.data.image_size, params.data.channels,
                             stop=lambda: len(server.sent) >= count and len(scored) >= count - params.data.clip_len + 1)
        for number, _ in stream_scores(model, stream, params.data.clip_len, 1, True, torch.device("cpu")):
            scored[number] = time.monotonic()
            if number >= count - 1:
                break
    finally:
        server.close()
    latency = np.array([scored[i] - server.sent[i] for i in sorted(scored)]) * 1000
    emit({"benchmark": "detect_latency", "size": args.size, "channels": args.channels, "width": args.width,
          "file_frames": int(result.metrics["frames"]), "file_frames_per_s": round(file_fps, 1),
          "live_fps": args.fps, "live_frames_scored": int(latency.size),
          "live_latency_p50_ms": round(float(np.percentile(latency, 50)), 1),
          "live_latency_p99_ms": round(float(np.percentile(latency, 99)), 1),
          "live_latency_max_ms": round(float(latency.max()), 1),
          "real_time": bool(np.percentile(latency, 99) < 100), "peak_host_mb": round(peak_host_mb(), 1)})


if __name__ == "__main__":
    main()
