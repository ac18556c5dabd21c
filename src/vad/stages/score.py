"""Stage `score`: score every test frame that ends a full clip; write scores.csv.

`run` scores the test videos of a frame store; `run_videos` scores video files directly, decoding in a
background thread while the network works, without a frame store.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import torch

from vad.allocator import keep_freed_memory
from vad.atomic import atomic_write_text
from vad.checkpoint import CHECKPOINT
from vad.config import Params
from vad.data.base import Split
from vad.data.decode import iter_frames, prefetch
from vad.data.store import FrameStore
from vad.errors import ConfigError, DataError
from vad.models import Trained, load_trained
from vad.scores_csv import COLUMNS, video_rows
from vad.scoring import score_frames, score_store
from vad.stages import StageResult
from vad.training import Runtime, resolve_runtime, select_device

__all__ = ["run", "run_videos", "load_model", "check_videos"]

log = logging.getLogger(__name__)

def load_model(params: Params, model_dir: Path, cluster_distance: str | None = None) -> tuple[Trained, Runtime]:
    """The trained network as its checkpoint describes it, in eval mode on the params' device.

    It scores with the cluster map `cluster_distance` if given (a calibration's), else `score.cluster_distance`.
    """
    keep_freed_memory()
    device = select_device(params.device)
    runtime = resolve_runtime(device, params.perf)  # bf16 autocast and channels_last on GPUs, as in training
    trained = load_trained(model_dir / CHECKPOINT, device)
    trained.score_with(cluster_distance or params.score.cluster_distance)
    if runtime.channels_last:
        trained.model.to(memory_format=torch.channels_last)
    return trained, runtime


def check_videos(videos: list[Path]) -> None:
    """Raise DataError naming the video files that do not exist."""
    missing = [str(video) for video in videos if not Path(video).is_file()]
    if missing:
        raise DataError(f"video file(s) not found: {', '.join(missing)}; pass existing files to --video, or a "
                        f"frame store to --frames")


def run_videos(params: Params, videos: list[Path], model_dir: Path, out_path: Path) -> StageResult:
    """Score video files with the model in `model_dir`; write `out_path` (scores.csv, ids = file stems).

    Decoding runs in a background thread, overlapping the network. Frame folders need `vad extract` first.

    Raises:
        DataError: a video is shorter than a clip, or two videos share a file name.
        CorruptMediaError: a video cannot be decoded.
    """
    check_videos(videos)
    stems = [Path(video).stem for video in videos]
    if len(set(stems)) != len(stems):
        raise DataError(f"videos {', '.join(map(str, videos))} share file names; scores.csv keys rows by file "
                        f"name, so rename them or score them in separate runs")
    trained, runtime = load_model(params, model_dir)
    model, geometry = trained.model, trained.data_params  # footage is resized to what the model saw
    clip_len, batch = geometry.clip_len, params.score.batch_size
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    started, scored = time.perf_counter(), 0
    for video, stem in zip(videos, stems, strict=True):
        frames = prefetch(iter_frames(Path(video), geometry.image_size, geometry.channels), 2 * batch)
        count, raw = score_frames(model, frames, clip_len, batch, trained.model_params.kmeans, runtime.device,
                                  runtime.amp_dtype)
        if count < clip_len:
            raise DataError(f"video {video} has {count} frames, fewer than the clip length {clip_len}; it cannot "
                            f"be scored")
        writer.writerows(video_rows(stem, count, raw, clip_len))
        scored += count - clip_len + 1
    seconds = time.perf_counter() - started
    atomic_write_text(out_path, buffer.getvalue())
    log.info("scored %d clips of %d videos, decoding included (%.1f frames/s) into %s", scored, len(videos),
             scored / max(seconds, 1e-9), out_path)
    return StageResult(outputs={"scores": out_path}, metrics={"score_frames_per_s": scored / max(seconds, 1e-9)})


def run(params: Params, frames_dir: Path, model_dir: Path, out_path: Path, *, progress: bool = False) -> StageResult:
    """Score the test videos of `frames_dir` with the model in `model_dir`; write `out_path` (scores.csv)."""
    store = FrameStore.open(frames_dir)  # first: a missing store is the likelier mistake
    trained, runtime = load_model(params, model_dir)
    model, device, clip_len = trained.model, runtime.device, trained.data_params.clip_len
    geometry = (tuple(trained.data_params.image_size), trained.data_params.channels)
    if (tuple(store.image_size), store.channels) != geometry:
        raise ConfigError(f"frame store {frames_dir} holds {store.image_size[0]}x{store.image_size[1]} frames with "
                          f"{store.channels} channel(s); the model in {model_dir} was trained on "
                          f"{geometry[0][0]}x{geometry[0][1]} with {geometry[1]}: extract with that data.image_size "
                          f"and data.channels, or score the videos with --video")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    started = time.perf_counter()
    videos = store.split(Split.TEST)
    scores = score_store(model, store, videos, clip_len, params.score.batch_size, trained.model_params.kmeans, device,
                         runtime.amp_dtype, progress=progress)
    first = 0
    for video in videos:
        count = video.frames - clip_len + 1
        writer.writerows(video_rows(video.id, video.frames,
                                    {name: values[first : first + count] for name, values in scores.items()}, clip_len))
        first += count
    scored = first
    seconds = time.perf_counter() - started
    atomic_write_text(out_path, buffer.getvalue())
    log.info("scored %d clips of %d test videos (%.1f frames/s) into %s", scored,
             len(videos), scored / max(seconds, 1e-9), out_path)
    return StageResult(outputs={"scores": out_path}, metrics={"score_frames_per_s": scored / max(seconds, 1e-9)})
