"""Latent sampling for the k-means initialisation."""

import torch

from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.models import build_model
from vad.stages.init_clusters import sample_latents


def _sample(params, frame_store, max_vectors=None):
    torch.manual_seed(0)
    model = build_model(params.model, params.data)
    clips = ClipSource.from_split(FrameStore.open(frame_store), "train", params.data.clip_len)
    return sample_latents(model, clips, 16, 8, torch.Generator().manual_seed(1), max_vectors)


def test_latents_are_subsampled_on_the_device_before_the_copy(params, frame_store):
    everything = _sample(params, frame_store)
    assert len(everything) == 16 * 4 * 4  # 16 clips, a 4x4 latent grid at 32x32
    assert torch.equal(_sample(params, frame_store, max_vectors=10_000), everything)  # under the cap: all of them
    some = _sample(params, frame_store, max_vectors=20)
    assert 20 <= len(some) <= 22  # each of the 2 batches keeps its share, rounded up
    # a subset of the same vectors: the same clips and batches, fewer positions kept
    assert (some[:, None, :] == everything[None, :, :]).all(dim=2).any(dim=1).all()
