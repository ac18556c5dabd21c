"""Stage `init_clusters`: k-means++ on latent vectors of the frozen pretrained network (Sec. 4.2)."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from vad.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from vad.config import Params
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.errors import ConfigError
from vad.models import build_model, load_weights
from vad.stages import StageResult
from vad.stages.pretrain import model_config
from vad.training import seed_everything, select_device

__all__ = ["run", "sample_latents"]

log = logging.getLogger(__name__)


@torch.no_grad()
def sample_latents(model: torch.nn.Module, clips: ClipSource, n_clips: int, batch_size: int,
                   generator: torch.Generator, max_vectors: int | None = None, progress: bool = False) -> torch.Tensor:
    """Latent vectors r (N, D) of a random sample of clips, as the network sees them in training.

    BatchNorm uses batch statistics, as during training; a copy of the model keeps the running
    statistics of the original untouched. With `max_vectors`, each batch's vectors are subsampled on the
    device in proportion before the copy to the host (N is then about `max_vectors`): at 256x256 the
    clips hold millions of vectors of which k-means uses a few hundred thousand. `progress` shows a bar.
    """
    probe = copy.deepcopy(model).train()
    chosen = torch.randperm(len(clips), generator=generator)[:n_clips]
    vectors = []
    keep_share = 1.0
    starts: Iterable[int] = range(0, len(chosen), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="init_clusters: sampling latents", unit="batch", leave=False)
    for first in starts:
        indices = chosen[first : first + batch_size]
        r = probe(clips.batch(indices)).r
        flat = r.permute(0, 2, 3, 1).reshape(-1, r.shape[1])
        if max_vectors is not None and first == 0:
            keep_share = min(1.0, max_vectors / (len(chosen) * (len(flat) // len(indices))))
        keep = min(len(flat), math.ceil(keep_share * len(flat)))
        if keep < len(flat):
            flat = flat[torch.randperm(len(flat), generator=generator)[:keep].to(flat.device)]
        vectors.append(flat.float().cpu())
    return torch.cat(vectors)


def run(params: Params, frames_dir: Path, pretrain_dir: Path, out_dir: Path, *, progress: bool = False) -> StageResult:
    """Initialise the cluster centers of the pretrained model; write `out_dir/checkpoint.pt`."""
    from sklearn.cluster import KMeans

    seed_everything(params.seed)
    device = select_device(params.device)
    state = load_checkpoint(pretrain_dir / CHECKPOINT)
    model = build_model(params.model, params.data).to(device)
    load_weights(model, state["model"], pretrain_dir / CHECKPOINT)
    metrics: dict[str, float] = {}
    if params.model.kmeans:
        store = FrameStore.open(frames_dir)
        clips = ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, device,
                                      holdout_share=params.detect.holdout_share)  # calibration's, unseen
        generator = torch.Generator().manual_seed(params.seed)
        vectors = sample_latents(model, clips, params.init_clusters.sample_clips,
                                 params.init_clusters.batch_size, generator, params.init_clusters.max_vectors,
                                 progress=progress)
        if len(vectors) > params.init_clusters.max_vectors:
            vectors = vectors[torch.randperm(len(vectors), generator=generator)[: params.init_clusters.max_vectors]]
        if len(vectors) < params.model.clusters:
            raise ConfigError(f"only {len(vectors)} latent vectors for model.clusters={params.model.clusters}; "
                              f"raise init_clusters.sample_clips or lower model.clusters")
        log.info("k-means++: %d centers from %d vectors of %d dimensions", params.model.clusters, len(vectors),
                 vectors.shape[1])
        kmeans = KMeans(params.model.clusters, init="k-means++", n_init=1, random_state=params.seed)
        kmeans.fit(vectors.numpy().astype(np.float64))
        with torch.no_grad():
            model.kmeans.centers.copy_(torch.from_numpy(kmeans.cluster_centers_).float())
            distance = model.kmeans(torch.from_numpy(vectors.numpy()).T[None, :, :, None].to(device)).mean()
        metrics = {"kmeans_inertia": float(kmeans.inertia_), "init_cluster_distance": float(distance)}
        log.info("k-means++ done: inertia %.5g, mean D(r) %.5f", metrics["kmeans_inertia"],
                 metrics["init_cluster_distance"])
    else:
        log.info("model.kmeans is off: centers left unset")
    out = {"model": model.state_dict(), "config": model_config(params)}
    if "ae" in state.get("optimizers", {}):  # for train.continue_adam: pretraining's Adam, passed through
        out["pretrain_adam"] = state["optimizers"]["ae"]
    save_checkpoint(out_dir / CHECKPOINT, out)
    return StageResult(outputs={"checkpoint": out_dir / CHECKPOINT}, metrics=metrics)
