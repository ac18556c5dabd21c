"""The scoring engine: raw anomaly scores of clips (Eq. 13), for every command that scores.

`clip_scores` scores a batch of clips; `score_store` every clip of a frame store's videos and `score_frames`
every clip of a stream of frames, in batches with the next ones read ahead (`vad score`, `vad calibrate`,
benchmarks); `stream_scores` yields each frame's scores as soon as its clip is complete (`vad detect`, the
served model). The scores.csv format they feed is `vad.scores_csv`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from vad.allocator import MMAP_THRESHOLD
from vad.data.clips import ClipSource, to_model_input
from vad.data.decode import prefetch
from vad.data.store import FrameStore, VideoEntry
from vad.models.two_stream_ae import TwoStreamAE
from vad.scores_csv import RAW_SCORES

__all__ = [
    "clip_scores", "window_max", "stream_scores", "score_clips", "score_frames", "score_store", "RAW_SCORES",
    "READ_AHEAD", "cpu_chunk", "normal_error_map",
]



@torch.no_grad()
def clip_scores(model: TwoStreamAE, clips: torch.Tensor, use_clusters: bool = True,
                maps: bool = False) -> dict[str, torch.Tensor]:
    """Raw scores of each clip: (B, T, C, H, W) -> dict of (B,) tensors.

    `prediction_error` = mean_p e(p), with e(p) the squared error of the predicted last frame at pixel p
    (mean over channels); `cluster_distance` = mean_p D_u(p), D(r) nearest-upsampled to the image size
    (NaN without clustering); `fused` = s = 1 / mean_p(e(p) * D_u(p)), high for normal clips;
    `fused_window` and `prediction_window`: the largest mean of e * D_u and of e over a window of 2x2 latent
    cells (`window_max`), high for abnormal clips. With `maps`, also `map`: the pixel-level anomaly map
    e(p) * D_u(p) (e(p) without clustering), (B, H, W), whose mean is 1 / fused, and `error_map`: e(p).
    """
    chunk = cpu_chunk(model, tuple(clips.shape[-2:])) if clips.device.type == "cpu" else len(clips)
    if len(clips) > chunk:
        parts = [clip_scores(model, clips[i:i + chunk], use_clusters, maps) for i in range(0, len(clips), chunk)]
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    outputs = model(clips)
    with torch.autocast(clips.device.type, enabled=False):  # under autocast, only the network runs in bf16
        return _scores(model, outputs, use_clusters, maps)


def cpu_chunk(model: TwoStreamAE, size: tuple[int, int]) -> int:
    """Clips per forward pass on the CPU for frames of `size`: any batch is scored in chunks of this many.

    The widest full-resolution activation (2 x width float32 channels per clip) of a chunk stays within half
    of glibc's largest mmap threshold (`vad.allocator`), so the heap reuses its buffers; larger ones are
    mapped afresh and zero-filled by the kernel at every pass (Ped2 at 256x256: 2.2x the frames/s of a batch
    of 64, docs/benchmarks.md). 64 clips at 64x64 and width 8, 4 at 256x256 (1 with overlapping 128x128 tiles).
    The scores do not depend on it.
    """
    return max(1, MMAP_THRESHOLD // 2 // (2 * model.width * model.pixels_per_frame(size) * 4))


def _scores(model: TwoStreamAE, outputs, use_clusters: bool, maps: bool = False) -> dict[str, torch.Tensor]:
    error = (outputs.target.float() - outputs.prediction.float()).pow(2).mean(dim=1)
    if use_clusters:
        distance = model.kmeans(outputs.r.float())
        upsampled = F.interpolate(distance[:, None], size=error.shape[-2:], mode="nearest")[:, 0]
        pixels = error * upsampled
        cluster = upsampled.mean(dim=(1, 2))
    else:
        pixels, cluster = error, torch.full_like(error[:, 0, 0], float("nan"))
    grid = tuple(outputs.r.shape[-2:])
    scores = {"fused": 1.0 / pixels.mean(dim=(1, 2)).clamp_min(1e-12), "prediction_error": error.mean(dim=(1, 2)),
              "cluster_distance": cluster, "fused_window": window_max(pixels, grid),
              "prediction_window": window_max(error, grid)}
    if model.normal_error is None:
        scores["relative"] = scores["relative_window"] = torch.full_like(cluster, float("nan"))
    else:
        relative = error / model.normal_error.to(error.device)
        scores["relative"], scores["relative_window"] = relative.mean(dim=(1, 2)), window_max(relative, grid)
    return {**scores, "map": pixels, "error_map": error} if maps else scores


@torch.no_grad()
def normal_error_map(model: TwoStreamAE, clips: ClipSource, max_clips: int, batch_size: int) -> torch.Tensor:
    """The mean prediction-error map e(p) (H, W, float32 on the CPU) of `model` over normal `clips`.

    At most `max_clips` clips, evenly spaced over `clips`, each scored as `vad score` scores (eval mode, whole
    frames, tiles as the model is set); the `relative` scores measure a frame's error against it.
    """
    chosen = torch.linspace(0, len(clips) - 1, min(max_clips, len(clips))).round().long().unique()
    total = None
    for batch in clips.iter_batches([chosen[first:first + batch_size] for first in range(0, len(chosen), batch_size)]):
        summed = clip_scores(model, batch, use_clusters=False, maps=True)["error_map"].double().sum(dim=0)
        total = summed if total is None else total + summed
    return (total / len(chosen)).float().cpu()


def window_max(pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) map -> (B,): its largest mean over a window of 2x2 cells of `grid`, moved one cell at a time.

    The cells are those of the latent grid (h, w) (one representation r, one cluster distance each); a
    2x2-cell window wholly holds any object of one cell's size wherever it lies, which a single cell does not.
    """
    (height, width), (rows, cols) = pixels.shape[-2:], grid
    cell = (height // rows, width // cols)
    kernel = (cell[0] * min(2, rows), cell[1] * min(2, cols))
    return F.avg_pool2d(pixels[:, None], kernel, stride=cell).amax(dim=(1, 2, 3))


def stream_scores(model: TwoStreamAE, frames: Iterable[np.ndarray | None], clip_len: int, batch_size: int,
                  use_clusters: bool, device: torch.device, amp_dtype: torch.dtype | None = None,
                  maps: bool = False) -> Iterator[tuple[int, dict]]:
    """(frame number, raw scores) for every frame that ends a full clip, as soon as its batch is scored.

    Causal: frame t's scores come from frames t-T+1..t. `frames` are uint8 (H, W, C); a None (a live
    source's reconnect, `vad.data.live.GAP`) ends the current run of consecutive frames: the T-1 frames
    after it end no clip. With `batch_size` 1 every frame is scored as it arrives (live sources); files
    use larger batches. With `maps`, each dict also holds `map` and `error_map`, the frame's (H, W) float32
    anomaly maps (`clip_scores`).
    """
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    pending: list[np.ndarray] = []
    first = 0  # number of the frame pending[0]

    def flush() -> Iterator[tuple[int, dict[str, float]]]:
        chunk = torch.from_numpy(np.stack(pending)).to(device)
        starts = torch.arange(len(pending) - clip_len + 1, device=device)
        with autocast:
            scores = clip_scores(model, to_model_input(chunk[starts[:, None] + torch.arange(clip_len, device=device)]),
                                 use_clusters, maps)
        pixels = {name: scores.pop(name).cpu().numpy() for name in ("map", "error_map")} if maps else {}
        values = {name: column.double().cpu().numpy() for name, column in scores.items()}
        for i in range(len(starts)):
            record = {name: float(column[i]) for name, column in values.items()}
            yield first + i + clip_len - 1, {**record, **{name: array[i] for name, array in pixels.items()}}

    number = 0
    for frame in frames:
        if frame is None:
            if len(pending) >= clip_len:
                yield from flush()
            pending, first = [], number
            continue
        pending.append(frame)
        number += 1
        if len(pending) == batch_size + clip_len - 1:
            yield from flush()
            pending, first = pending[batch_size:], first + batch_size
    if len(pending) >= clip_len:
        yield from flush()


# Batches read ahead of the network by the background thread (each holds batch + T - 1 frames or so).
READ_AHEAD = 3


def _collect(model: torch.nn.Module, batches: Iterable[torch.Tensor], use_clusters: bool, device: torch.device,
             amp_dtype: torch.dtype | None) -> dict[str, np.ndarray]:
    """Raw scores of every clip of `batches` (model input on `device`), in order; autocast with `amp_dtype`."""
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in RAW_SCORES}
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    for batch in batches:
        with autocast:
            scores = clip_scores(model, batch, use_clusters)
        for name, values in scores.items():
            parts[name].append(values)  # left on the device: a copy per batch would stall the GPU each time
    if not parts["fused"]:
        return {name: np.empty(0) for name in RAW_SCORES}
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


def score_clips(model: torch.nn.Module, clips: ClipSource, batch_size: int, use_clusters: bool,
                device: torch.device, amp_dtype: torch.dtype | None = None) -> dict[str, np.ndarray]:
    """Raw scores of every clip of a `ClipSource` (e.g. the held-out tail `vad calibrate` scores), in order."""
    batches = clips.iter_batches([torch.arange(first, min(first + batch_size, len(clips)))
                                  for first in range(0, len(clips), batch_size)])
    return _collect(model, batches, use_clusters, device, amp_dtype)
