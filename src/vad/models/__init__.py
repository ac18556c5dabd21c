"""The network. `build_model` is the only place where params touch it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vad.config import DataParams, ModelParams
from vad.errors import ConfigError
from vad.models.two_stream_ae import TwoStreamAE

__all__ = ["build_model", "load_weights", "load_trained", "Trained", "TwoStreamAE"]

_DISTANCES = ("squared", "euclidean")


def build_model(model: ModelParams, data: DataParams) -> TwoStreamAE:
    """Build the two-stream AE for the frame geometry in `data` and the switches in `model`."""
    return TwoStreamAE(channels=data.channels, clip_len=data.clip_len, image_size=data.image_size,
                       width=model.width, appearance=model.appearance, motion=model.motion,
                       attention=model.attention, clusters=model.clusters, alpha=model.alpha,
                       motion_decoder=model.motion_decoder, tile=data.tile,
                       cluster_distance=model.cluster_distance, cluster_reduction=model.cluster_reduction,
                       tile_overlap=data.tile_overlap)


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path | str) -> None:
    """Load a checkpoint's weights; a network of other geometry or switches is a ConfigError naming both."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[1:2] or [str(error)]
        raise ConfigError(
            f"{source} holds a network built with other model/data params ({first[0].strip()[:200]}); use the "
            "params it was trained with (checkpoints from before 2026-12-02 need model.motion_decoder: wide)"
        ) from None


@dataclass(frozen=True)
class Trained:
    """A network rebuilt from its checkpoint, with the geometry and switches it was trained with."""

    model: TwoStreamAE
    model_params: ModelParams
    data_params: DataParams
    holdout_share: float | None = None  # of each training video, never trained on (None: before the hold-out)

    def score_with(self, cluster_distance: str | None) -> str:
        """Score with the cluster map `cluster_distance` (`score.cluster_distance`); return the one in use.

        `model` or None keeps the distance the network was trained with; the map holds no weight, so any
        trained network scores with either.
        """
        if cluster_distance not in (None, "model", *_DISTANCES):
            raise ConfigError(f"score.cluster_distance must be model, squared or euclidean, got {cluster_distance!r}")
        if cluster_distance in _DISTANCES:
            self.model.kmeans.distance = cluster_distance
        return self.model.kmeans.distance

    def require_map(self, alarm_map: str, source: Path | str) -> None:
        """Refuse an alarm map the network cannot compute: `relative` needs its mean error map on normal footage.

        Raises:
            ConfigError: `alarm_map` is "relative" and the checkpoint (`source`) carries no such map.
        """
        if alarm_map == "relative" and self.model.normal_error is None:
            raise ConfigError(f"the model in {source} carries no mean error map on normal footage, which the alarm "
                              f"map 'relative' needs; re-run `vad train` with detect.map: relative (it resumes at "
                              f"its last epoch and only adds the map), or set detect.map to prediction or fused")


def load_trained(path: Path, device: str | torch.device = "cpu") -> Trained:
    """Rebuild the network of a checkpoint from the config it carries (not from the current params.yaml).

    A checkpoint of `vad train` with `detect.map: relative` also carries the network's mean error map on its
    training footage (`normal_error`), which the `relative` scores divide by.
    """
    from vad.checkpoint import load_checkpoint

    state = load_checkpoint(path, device)
    config = state.get("config")
    if not isinstance(config, dict) or not {"model", "data"} <= set(config):
        raise ConfigError(f"checkpoint {path} carries no model config (not written by a vad stage); "
                          "re-run the stage that writes it")
    # Checkpoints from before the motion decoder became a switch (2026-12-02) were built with the wide one.
    model_params = ModelParams.model_validate({"motion_decoder": "wide", **config["model"]})
    data_params = DataParams.model_validate(config["data"])
    model = build_model(model_params, data_params).to(device)
    load_weights(model, state["model"], path)
    if state.get("normal_error") is not None:
        model.set_normal_error(state["normal_error"].to(device))
    return Trained(model.eval(), model_params, data_params, config.get("holdout_share"))
