"""Stage `score`: score every test frame that ends a full clip; write scores.csv."""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import numpy as np
import torch

from vad.checkpoint import CHECKPOINT, load_checkpoint
from vad.config import Params
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore, atomic_write_text
from vad.metrics import anomaly_from_regularity
from vad.models import build_model
from vad.scoring import SCORE_COLUMNS, clip_scores
from vad.stages import StageResult
from vad.training import select_device

__all__ = ["run", "score_video", "HEADER"]

log = logging.getLogger(__name__)

HEADER = ("video", "frame", "scored", "anomaly", *SCORE_COLUMNS)


def score_video(model: torch.nn.Module, clips: ClipSource, batch_size: int,
                use_clusters: bool) -> dict[str, np.ndarray]:
    """Raw scores of every clip of one video, in order: clip i ends at frame i + T - 1."""
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in SCORE_COLUMNS}
    for first in range(0, len(clips), batch_size):
        indices = torch.arange(first, min(first + batch_size, len(clips)))
        for name, values in clip_scores(model, clips.batch(indices), use_clusters).items():
            parts[name].append(values.cpu())
    return {name: torch.cat(values).double().numpy() for name, values in parts.items()}


def _format(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.8g}"


def run(params: Params, frames_dir: Path, model_dir: Path, out_path: Path) -> StageResult:
    """Score the test videos of `frames_dir` with the model in `model_dir`; write `out_path` (scores.csv)."""
    device = select_device(params.device)
    store = FrameStore.open(frames_dir)
    model = build_model(params.model, params.data).to(device)
    model.load_state_dict(load_checkpoint(model_dir / CHECKPOINT, device)["model"])
    model.eval()
    clip_len = params.data.clip_len
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    started, scored = time.perf_counter(), 0
    for video in store.split(Split.TEST):
        clips = ClipSource(store, [video], clip_len, device)
        raw = score_video(model, clips, params.score.batch_size, params.model.kmeans)
        anomaly = anomaly_from_regularity(raw["fused"])
        for frame in range(video.frames):
            if frame < clip_len - 1:  # no full clip ends here: reported as unscored, never filled in
                writer.writerow((video.id, frame, 0, "", "", "", ""))
                continue
            i = frame - clip_len + 1
            writer.writerow((video.id, frame, 1, _format(anomaly[i]), *(_format(raw[c][i]) for c in SCORE_COLUMNS)))
        scored += len(clips)
    seconds = time.perf_counter() - started
    atomic_write_text(out_path, buffer.getvalue())
    log.info("scored %d clips of %d test videos (%.1f frames/s) into %s", scored,
             len(store.split(Split.TEST)), scored / max(seconds, 1e-9), out_path)
    return StageResult(outputs={"scores": out_path}, metrics={"score_frames_per_s": scored / max(seconds, 1e-9)})
