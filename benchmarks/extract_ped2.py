"""Extraction speed and memory on the real UCSD Ped2 videos (../shared/data/ped2 by default).

    python benchmarks/extract_ped2.py [--source ../shared/data/ped2] [--size 256] [--channels 3]
Prints: `vad extract` frames/s with all cores; a bare decode-and-resize loop in one process (the
single-core limit); their ratio per worker; and the peak memory of extracting one video vs the same video
concatenated four times. Appends one JSON line to docs/benchmarks.jsonl.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
from common import emit

ROOT = Path(__file__).resolve().parents[1]


def bare_loop(videos: list[Path], size: int, channels: int) -> tuple[int, float]:
    """Decode + area-resize every frame on one core: the per-core ceiling.

    One thread for OpenCV and one for FFmpeg's decoder: left at its default, the decoder starts a thread
    per core and the "single-core" loop quietly uses ~1.3 cores.
    """
    cv2.setNumThreads(1)
    frames, started = 0, time.perf_counter()
    for path in videos:
        capture = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if channels == 1:
                image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            frames += 1
        capture.release()
    return frames, time.perf_counter() - started


def peak_rss_mb(source: Path, size: int, channels: int) -> float:
    """Peak RSS (MB) of a fresh process extracting `source` with one worker."""
    code = ("import resource, sys, tempfile; from pathlib import Path; from vad.config import DataParams; "
            "from vad.stages import extract; "
            f"extract.run(DataParams(image_size={size}, channels={channels}), Path(sys.argv[1]), "
            "Path(tempfile.mkdtemp()) / 'store', workers=1); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(source)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def one_video_dataset(video: Path, repeat: int, root: Path) -> Path:
    """A `videos` dataset whose only (train) video is `video` played `repeat` times, losslessly re-encoded."""
    (root / "train").mkdir(parents=True)
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(root / "train" / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    for _ in range(repeat):
        for image in frames:
            writer.write(image)
    writer.release()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "ped2")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5, help="best of N runs for both rates (VM noise)")
    args = parser.parse_args()
    from vad.config import DataParams
    from vad.stages import extract

    videos = sorted(p for p in args.source.glob("*/*") if p.suffix.lower() in {".mp4", ".avi"})
    workers = os.cpu_count() or 1
    extract_fps = bare_fps = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):  # interleaved, so both see the same machine weather
            started = time.perf_counter()
            result = extract.run(DataParams(image_size=args.size, channels=args.channels), args.source,
                                 Path(tmp) / "store", workers=workers)
            extract_fps = max(extract_fps, result.metrics["frames"] / (time.perf_counter() - started))
            shutil.rmtree(Path(tmp) / "store")  # the next run starts from nothing, not from a reusable store
            bare_frames, bare_s = bare_loop(videos, args.size, args.channels)
            bare_fps = max(bare_fps, bare_frames / bare_s)
        single = peak_rss_mb(one_video_dataset(videos[0], 1, Path(tmp) / "x1"), args.size, args.channels)
        quadruple = peak_rss_mb(one_video_dataset(videos[0], 4, Path(tmp) / "x4"), args.size, args.channels)
    emit({"benchmark": "extract_ped2", "workers": workers, "repeat": args.repeat,
              "size": args.size, "channels": args.channels, "frames": result.metrics["frames"],
              "extract_frames_per_s": round(extract_fps, 1), "bare_loop_frames_per_s": round(bare_fps, 1),
              "ratio_per_worker": round(extract_fps / workers / bare_fps, 3),
              "peak_rss_mb_1x": round(single, 1), "peak_rss_mb_4x": round(quadruple, 1)})


if __name__ == "__main__":
    main()
