"""Stage `score`: score every test frame that ends a full clip; write scores.csv.

`run` scores the test videos of a frame store; `run_videos` scores video files directly, decoding in a
background thread while the network works, without a frame store.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from vad.atomic import atomic_write_text
from vad.checkpoint import CHECKPOINT
from vad.config import Params
from vad.data.base import Split
from vad.data.clips import to_model_input
from vad.data.decode import iter_frames, prefetch
from vad.data.store import FrameStore, VideoEntry
from vad.errors import ConfigError, DataError
from vad.metrics import anomaly_from_regularity
from vad.models import Trained, load_trained
from vad.scoring import SCORE_COLUMNS, clip_scores
from vad.stages import StageResult
from vad.training import Runtime, resolve_runtime, select_device

__all__ = ["run", "run_videos", "score_store", "score_frames", "load_model", "check_videos", "HEADER"]

log = logging.getLogger(__name__)

HEADER = ("video", "frame", "scored", "anomaly", *SCORE_COLUMNS)


# Batches read ahead of the network by the background thread (each holds batch + T - 1 frames or so).
READ_AHEAD = 3


def _collect(model: torch.nn.Module, batches: Iterable[torch.Tensor], use_clusters: bool, device: torch.device,
             amp_dtype: torch.dtype | None) -> dict[str, np.ndarray]:
    """Raw scores of every clip of `batches` (model input on `device`), in order; autocast with `amp_dtype`."""
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in SCORE_COLUMNS}
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    for batch in batches:
        with autocast:
            scores = clip_scores(model, batch, use_clusters)
        for name, values in scores.items():
            parts[name].append(values)  # left on the device: a copy per batch would stall the GPU each time
    if not parts["fused"]:
        return {name: np.empty(0) for name in SCORE_COLUMNS}
    return {name: torch.cat(values).double().cpu().numpy() for name, values in parts.items()}


def _clips(windows: Iterable[tuple[torch.Tensor, torch.Tensor]], clip_len: int,
           device: torch.device) -> Iterator[torch.Tensor]:
    """Model input on `device` from (uint8 frames (F, H, W, C), clip starts (B,)) windows.

    The frames go to the device as uint8 (4x less than floats; asynchronously from pinned memory) and
    are cut into clips there: a window of B clips of consecutive frames holds about B frames, not B x T.
    """
    steps = torch.arange(clip_len, device=device)
    for frames, starts in windows:
        chunk = frames.to(device, non_blocking=frames.is_pinned())
        yield to_model_input(chunk[starts.to(device)[:, None] + steps])


def _store_windows(store: FrameStore, videos: list[VideoEntry], clip_len: int, batch_size: int,
                   pin: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of `batch_size` consecutive clips of `videos`, in order; a batch may span videos.

    Each comes as the frames its clips cover, read from the memory-mapped store into one (pinned) buffer,
    and where each clip starts in it.
    """
    arrays = [store.frames(video) for video in videos]
    height, width = store.image_size
    pieces: list[tuple[int, int, int]] = []  # (video, first clip, clips)

    def window() -> tuple[torch.Tensor, torch.Tensor]:
        total = sum(count + clip_len - 1 for _, _, count in pieces)
        frames = torch.empty((total, height, width, store.channels), dtype=torch.uint8, pin_memory=pin)
        view, starts, at = frames.numpy(), [], 0
        for v, first, count in pieces:
            view[at : at + count + clip_len - 1] = arrays[v][first : first + count + clip_len - 1]
            starts.append(np.arange(at, at + count))
            at += count + clip_len - 1
        pieces.clear()
        return frames, torch.from_numpy(np.concatenate(starts))

    filled = 0
    for v, video in enumerate(videos):
        first, clips = 0, video.frames - clip_len + 1
        while first < clips:
            count = min(batch_size - filled, clips - first)
            pieces.append((v, first, count))
            first, filled = first + count, filled + count
            if filled == batch_size:
                yield window()
                filled = 0
    if pieces:
        yield window()


def score_store(model: torch.nn.Module, store: FrameStore, videos: list[VideoEntry], clip_len: int,
                batch_size: int, use_clusters: bool, device: torch.device,
                amp_dtype: torch.dtype | None = None, progress: bool = False) -> dict[str, np.ndarray]:
    """Raw scores of every clip of `videos` of the store, in order (clip i of a video ends at frame i+T-1).

    Batches run across video boundaries. A background thread reads the next batches' frames from the
    memory-mapped store (into pinned memory on a GPU) while the network scores the current one.
    `amp_dtype` runs the network under autocast (bf16 on GPUs, from `perf.amp`); the scores are float32.
    `progress` shows a bar of clips scored.
    """
    windows = prefetch(_store_windows(store, videos, clip_len, batch_size, pin=device.type == "cuda"), READ_AHEAD)
    batches: Iterable[torch.Tensor] = _clips(windows, clip_len, device)
    if progress:
        batches = _counted(batches, sum(max(0, video.frames - clip_len + 1) for video in videos))
    return _collect(model, batches, use_clusters, device, amp_dtype)


def _counted(batches: Iterable[torch.Tensor], total: int) -> Iterator[torch.Tensor]:
    """`batches`, advancing a progress bar (clips, clips/s) by each batch's size."""
    from tqdm import tqdm

    with tqdm(total=total, desc="score", unit="clip", leave=False) as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))


def _write_video(writer, video: VideoEntry, raw: dict[str, np.ndarray], clip_len: int) -> None:
    anomaly = anomaly_from_regularity(raw["fused"])
    for frame in range(video.frames):
        if frame < clip_len - 1:  # no full clip ends here: reported as unscored, never filled in
            writer.writerow((video.id, frame, 0, "", "", "", ""))
            continue
        i = frame - clip_len + 1
        writer.writerow((video.id, frame, 1, _format(anomaly[i]), *(_format(raw[c][i]) for c in SCORE_COLUMNS)))


def _format(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.8g}"


def load_model(params: Params, model_dir: Path) -> tuple[Trained, Runtime]:
    """The trained network as its checkpoint describes it, in eval mode on the params' device."""
    device = select_device(params.device)
    runtime = resolve_runtime(device, params.perf)  # bf16 autocast and channels_last on GPUs, as in training
    trained = load_trained(model_dir / CHECKPOINT, device)
    if runtime.channels_last:
        trained.model.to(memory_format=torch.channels_last)
    return trained, runtime


def score_frames(model: torch.nn.Module, frames: Iterator[np.ndarray], clip_len: int, batch_size: int,
                 use_clusters: bool, device: torch.device, amp_dtype: torch.dtype | None = None
                 ) -> tuple[int, dict[str, np.ndarray]]:
    """Raw scores of every clip of a stream of uint8 (H, W, C) frames; returns (frames seen, scores).

    Frames are taken `batch_size + clip_len - 1` at a time (consecutive chunks share clip_len - 1 frames),
    copied to the device as uint8 and cut into clips there.
    """
    seen = 0
    pin = device.type == "cuda"

    def windows() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        nonlocal seen
        pending: list[np.ndarray] = []

        def window() -> tuple[torch.Tensor, torch.Tensor]:
            frames = torch.from_numpy(np.stack(pending))
            return (frames.pin_memory() if pin else frames), torch.arange(len(pending) - clip_len + 1)

        for frame in frames:
            pending.append(frame)
            seen += 1
            if len(pending) == batch_size + clip_len - 1:
                yield window()
                pending = pending[batch_size:]
        if len(pending) >= clip_len:  # the last, shorter chunk
            yield window()

    scores = _collect(model, _clips(windows(), clip_len, device), use_clusters, device, amp_dtype)
    return seen, scores


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
    writer.writerow(HEADER)
    started, scored = time.perf_counter(), 0
    for video, stem in zip(videos, stems, strict=True):
        frames = prefetch(iter_frames(Path(video), geometry.image_size, geometry.channels), 2 * batch)
        count, raw = score_frames(model, frames, clip_len, batch, trained.model_params.kmeans, runtime.device,
                                  runtime.amp_dtype)
        if count < clip_len:
            raise DataError(f"video {video} has {count} frames, fewer than the clip length {clip_len}; it cannot "
                            f"be scored")
        entry = VideoEntry(id=stem, split=Split.TEST.value, frames=count, path="", labels=None, source=str(video))
        _write_video(writer, entry, raw, clip_len)
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
    writer.writerow(HEADER)
    started = time.perf_counter()
    videos = store.split(Split.TEST)
    scores = score_store(model, store, videos, clip_len, params.score.batch_size, trained.model_params.kmeans, device,
                         runtime.amp_dtype, progress=progress)
    first = 0
    for video in videos:
        count = video.frames - clip_len + 1
        _write_video(writer, video, {name: values[first : first + count] for name, values in scores.items()},
                     clip_len)
        first += count
    scored = first
    seconds = time.perf_counter() - started
    atomic_write_text(out_path, buffer.getvalue())
    log.info("scored %d clips of %d test videos (%.1f frames/s) into %s", scored,
             len(videos), scored / max(seconds, 1e-9), out_path)
    return StageResult(outputs={"scores": out_path}, metrics={"score_frames_per_s": scored / max(seconds, 1e-9)})
