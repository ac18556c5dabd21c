"""Stage `extract`: decode a dataset in any supported layout into the frame store."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from vad.config import DataParams
from vad.data import READERS
from vad.data.base import Split
from vad.data.decode import iter_frames
from vad.data.store import VideoEntry, atomic_dir, write_manifest
from vad.errors import DataError
from vad.stages import StageResult

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(params: DataParams, source: Path, out_dir: Path, *, progress: bool = False) -> StageResult:
    """Index `source` with the reader of `params.format` and write the frame store to `out_dir`.

    The store is built in a temporary folder and swapped in at the end: a failure leaves `out_dir` as it was.
    """
    records = READERS[params.format](Path(source))
    if not any(record.split is Split.TRAIN for record in records):
        raise DataError(f"{source}: no training video found; the method needs normal videos in train/")
    started, total = time.perf_counter(), 0
    entries: list[VideoEntry] = []
    with atomic_dir(out_dir) as tmp:
        (tmp / "frames").mkdir()
        (tmp / "labels").mkdir()
        for number, record in enumerate(records, start=1):
            frames = np.stack(list(iter_frames(record.source, params.image_size, params.channels,
                                               record.frame_paths)))
            if len(frames) < params.clip_len:
                raise DataError(
                    f"video {record.source} has {len(frames)} frames, fewer than the clip length "
                    f"{params.clip_len}; remove it from the dataset or lower data.clip_len"
                )
            labels = record.labels(len(frames))
            np.save(tmp / "frames" / f"{record.video_id}.npy", frames)
            if labels is not None:
                np.save(tmp / "labels" / f"{record.video_id}.npy", labels)
            entries.append(VideoEntry(
                id=record.video_id, split=record.split.value, frames=len(frames),
                path=f"frames/{record.video_id}.npy",
                labels=None if labels is None else f"labels/{record.video_id}.npy",
                source=str(record.source.relative_to(source) if record.source.is_relative_to(source)
                           else record.source),
            ))
            total += len(frames)
            if progress:
                log.info("[%d/%d] %s: %d frames", number, len(records), record.video_id, len(frames))
        write_manifest(tmp, params.dataset, params.image_size, params.channels, entries)
    seconds = time.perf_counter() - started
    abnormal = sum(int(np.load(Path(out_dir) / e.labels).sum()) for e in entries if e.labels)
    log.info("extracted %d videos, %d frames (%.0f frames/s) into %s", len(entries), total,
             total / max(seconds, 1e-9), out_dir)
    return StageResult(
        outputs={"frames": Path(out_dir)},
        metrics={"videos": len(entries), "frames": total, "abnormal_frames": abnormal,
                 "frames_per_s": total / max(seconds, 1e-9)},
    )
