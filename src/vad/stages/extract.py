"""Stage `extract`: decode a dataset in any supported layout into the frame store, in parallel.

Each video is decoded frame by frame into its .npy (memory stays at one frame per worker); videos run in
`workers` processes. A re-run reuses (hard-links) the arrays of videos whose source file and settings have
not changed. The store is built in a temporary folder and swapped in at the end, so a failure leaves the
previous store untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from vad.atomic import atomic_dir, atomic_write_text, disk_full
from vad.config import DataParams
from vad.data import index_dataset
from vad.data.base import Split, VideoRecord
from vad.data.decode import frame_count_hint, iter_frames
from vad.data.store import NpyAppender, VideoEntry, write_manifest
from vad.errors import CorruptMediaError, DataError
from vad.stages import StageResult
from vad.workers import die_with_parent

__all__ = ["run", "CACHE_FILE"]

log = logging.getLogger(__name__)

CACHE_FILE = ".extract-cache.json"  # source signatures of the arrays, for skipping unchanged videos


def _signature(record: VideoRecord, params: DataParams) -> str:
    """What the video's array depends on: the geometry and the bytes of its source files, in order.

    Content, not paths or mtimes: the store (which DVC hashes) is then the same in every clone of the data.
    """
    digest = hashlib.sha256()
    for path in record.frame_paths or (record.source,):
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        digest.update(b"\0")  # file boundary: two files never hash as their concatenation
    return json.dumps([list(params.image_size), params.channels, digest.hexdigest()])


def _decode_video(record: VideoRecord, path: Path, size: tuple[int, int], channels: int,
                  decode_threads: int = 0) -> int:
    """Decode one video into `path`; returns its frame count. Runs in a worker process."""
    import cv2

    cv2.setNumThreads(1)  # one video per process: no nested thread pools
    writer = NpyAppender(path, (*size, channels))
    try:
        for frame in iter_frames(record.source, size, channels, record.frame_paths, decode_threads):
            writer.append(frame)
    finally:
        frames = writer.close()
    return frames


def run(params: DataParams, source: Path, out_dir: Path, *, workers: int | None = None,
        skip_corrupt: bool = False, progress: bool = False) -> StageResult:
    """Index `source` (layout `params.format`, or detected) and write the frame store to `out_dir`.

    Args:
        params: Frame geometry, layout and dataset name.
        source: Local dataset folder.
        out_dir: Frame store folder to write (replaced atomically).
        workers: Decoding processes; default all cores.
        skip_corrupt: Skip (and report) videos that cannot be decoded instead of failing.
        progress: Show a progress bar.
    """
    source, out_dir = Path(source), Path(out_dir)
    _, records = index_dataset(source, params.format)
    if not any(record.split is Split.TRAIN for record in records):
        raise DataError(f"{source}: no training video found; the method needs normal videos to train on")
    workers = max(1, min(workers or os.cpu_count() or 1, len(records)))
    previous = _read_cache(out_dir)
    signatures = {r.video_id: _signature(r, params) for r in records}
    started = time.perf_counter()
    counts: dict[str, int] = {}
    skipped: list[str] = []
    with atomic_dir(out_dir) as tmp:
        (tmp / "frames").mkdir()
        (tmp / "labels").mkdir()
        todo = []
        for record in records:
            old = previous.get(record.video_id)
            if old and old["signature"] == signatures[record.video_id]:
                os.link(out_dir / "frames" / f"{record.video_id}.npy", tmp / "frames" / f"{record.video_id}.npy")
                counts[record.video_id] = old["frames"]
            else:
                todo.append(record)
        if len(records) - len(todo):
            log.info("reusing %d unchanged videos", len(records) - len(todo))
        _check_space(todo, params, tmp, out_dir)
        _decode_all(todo, tmp, params, workers, skip_corrupt, counts, skipped, progress)
        entries = _write_labels(records, counts, tmp, source, params)
        write_manifest(tmp, params.dataset, params.image_size, params.channels, entries)
        cache = {e.id: {"signature": signatures[e.id], "frames": e.frames} for e in entries}
        atomic_write_text(tmp / CACHE_FILE, json.dumps(cache) + "\n")
    seconds = time.perf_counter() - started
    decoded = sum(counts[r.video_id] for r in todo if r.video_id in counts)
    total = sum(e.frames for e in entries)
    abnormal = sum(int(np.load(out_dir / e.labels).sum()) for e in entries if e.labels)
    log.info("extracted %d videos, %d frames (%d decoded, %.0f frames/s, %d workers) into %s", len(entries), total,
             decoded, decoded / max(seconds, 1e-9), workers, out_dir)
    if skipped:
        log.warning("skipped %d corrupt videos: %s", len(skipped), ", ".join(skipped))
    return StageResult(outputs={"frames": out_dir},
                       metrics={"videos": len(entries), "frames": total, "abnormal_frames": abnormal,
                                "skipped_videos": len(skipped), "frames_per_s": decoded / max(seconds, 1e-9)})


def _check_space(todo: list[VideoRecord], params: DataParams, tmp: Path, out_dir: Path) -> None:
    """Refuse before decoding when the new arrays cannot fit (reused videos are hard links: no space)."""
    frame_bytes = params.image_size[0] * params.image_size[1] * params.channels
    needed = sum(frame_count_hint(r.source, r.frame_paths) * (frame_bytes + 1) for r in todo)  # + a label byte
    if needed > shutil.disk_usage(tmp).free:
        raise disk_full(out_dir, needed=needed)


def _decode_all(todo: list[VideoRecord], tmp: Path, params: DataParams, workers: int, skip_corrupt: bool,
                counts: dict[str, int], skipped: list[str], progress: bool) -> None:
    """Decode `todo` into tmp/frames, filling `counts`; corrupt videos go to `skipped` if allowed."""
    started = time.perf_counter()

    def finish(record: VideoRecord, outcome) -> None:
        if isinstance(outcome, CorruptMediaError) and skip_corrupt:
            skipped.append(record.video_id)
            (tmp / "frames" / f"{record.video_id}.npy").unlink(missing_ok=True)
            log.warning("skipping %s: %s", record.video_id, outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            counts[record.video_id] = outcome
        if bar:
            bar.set_postfix(frames_per_s=f"{sum(counts.values()) / (time.perf_counter() - started):.0f}")
            bar.update()

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="video", desc="extract")
    paths = {r.video_id: tmp / "frames" / f"{r.video_id}.npy" for r in todo}
    # Each worker's decoder gets its share of the cores; FFmpeg's default (a thread per core in every
    # decoder) oversubscribes the machine as soon as there are two workers.
    threads = max(1, (os.cpu_count() or 1) // workers)
    if workers == 1 or len(todo) <= 1:
        for record in todo:
            try:
                outcome = _decode_video(record, paths[record.video_id], params.image_size, params.channels,
                                        threads)
            except CorruptMediaError as error:
                outcome = error
            finish(record, outcome)
    else:
        # Largest sources first, so no worker is left alone with a long video at the end.
        ordered = sorted(todo, key=lambda r: -sum(p.stat().st_size for p in (r.frame_paths or (r.source,))))
        with ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_decode_video, r, paths[r.video_id], params.image_size, params.channels,
                                   threads): r for r in ordered}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    error = future.exception()
                    try:
                        finish(futures[future], error if error is not None else future.result())
                    except BaseException:
                        for other in pending:
                            other.cancel()
                        raise
    if bar:
        bar.close()


def _write_labels(records: list[VideoRecord], counts: dict[str, int], tmp: Path, source: Path,
                  params: DataParams) -> list[VideoEntry]:
    entries = []
    for record in records:
        if record.video_id not in counts:  # skipped as corrupt
            continue
        frames = counts[record.video_id]
        if frames < params.clip_len:
            raise DataError(f"video {record.source} has {frames} frames, fewer than the clip length "
                            f"{params.clip_len}; remove it from the dataset or lower data.clip_len")
        labels = record.labels(frames)
        if labels is not None:
            np.save(tmp / "labels" / f"{record.video_id}.npy", labels)
        entries.append(VideoEntry(
            id=record.video_id, split=record.split.value, frames=frames, path=f"frames/{record.video_id}.npy",
            labels=None if labels is None else f"labels/{record.video_id}.npy",
            source=str(record.source.relative_to(source) if record.source.is_relative_to(source) else record.source),
        ))
    return entries


def _read_cache(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}


