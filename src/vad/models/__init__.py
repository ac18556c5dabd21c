"""The network. `build_model` is the only place where params touch it."""

from __future__ import annotations

from vad.config import DataParams, ModelParams
from vad.models.two_stream_ae import TwoStreamAE

__all__ = ["build_model", "TwoStreamAE"]


def build_model(model: ModelParams, data: DataParams) -> TwoStreamAE:
    """Build the two-stream AE for the frame geometry in `data` and the switches in `model`."""
    return TwoStreamAE(channels=data.channels, clip_len=data.clip_len, image_size=data.image_size,
                       width=model.width, appearance=model.appearance, motion=model.motion,
                       attention=model.attention, clusters=model.clusters, alpha=model.alpha)
