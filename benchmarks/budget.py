"""Fit a training schedule into a time budget, from costs measured on the device by short probe runs."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Costs:
    """Seconds measured on this device (see `gpu_check.calibrate`)."""

    pretrain_clip: float  # one clip of a pretraining step, after the warm-up epoch
    train_clip: float  # one clip of an alternating-training step, after the warm-up epoch
    epoch: float  # each epoch besides its steps (the checkpoint)
    stage: float  # each training stage besides its epochs (start-up, frames to the device, first-epoch warm-up)
    init_clip: float  # init_clusters, per clip it samples
    init_clips: int  # the clips init_clusters samples: at most this many, and at most one epoch's

    def init(self, clips_per_epoch: int) -> float:
        """init_clusters, for epochs of `clips_per_epoch` clips."""
        return self.init_clip * min(self.init_clips, clips_per_epoch)

    def seconds(self, pretrain_epochs: int, train_epochs: int, clips_per_epoch: int) -> float:
        """Both training stages and init_clusters, on `clips_per_epoch` clips per epoch."""
        return (2 * self.stage + self.init(clips_per_epoch)
                + pretrain_epochs * (clips_per_epoch * self.pretrain_clip + self.epoch)
                + train_epochs * (clips_per_epoch * self.train_clip + self.epoch))


@dataclass(frozen=True)
class Plan:
    """Epochs of each stage and clips per epoch; `fraction` is their share of the full schedule's clip-steps."""

    pretrain_epochs: int
    train_epochs: int
    clips_per_epoch: int
    fraction: float


def plan(costs: Costs, seconds: float, *, pretrain_epochs: int, train_epochs: int, clips: int,
         batch_size: int) -> Plan:
    """The largest share of the schedule (`pretrain_epochs` + `train_epochs` over `clips` clips) that fits.

    Both stages lose epochs in the same proportion (whole epochs, rounded down); when even one epoch of
    each does not fit, epochs are cut to fewer clips (at least one batch: the smallest run there is).
    """
    fixed = 2 * costs.stage + costs.init(clips)
    full = costs.seconds(pretrain_epochs, train_epochs, clips) - fixed
    share = min(1.0, max(0.0, (seconds - fixed) / full))
    pre = max(1, math.floor(pretrain_epochs * share + 1e-9))
    alt = max(1, math.floor(train_epochs * share + 1e-9))
    per_epoch = clips
    if costs.seconds(pre, alt, clips) > seconds:
        room = seconds - 2 * costs.stage - (pre + alt) * costs.epoch
        per_clip = pre * costs.pretrain_clip + alt * costs.train_clip
        per_epoch = math.floor(room / (per_clip + costs.init_clip))  # init_clusters samples every clip
        if per_epoch > costs.init_clips:  # ... up to its cap
            per_epoch = math.floor((room - costs.init_clip * costs.init_clips) / per_clip)
        per_epoch = min(clips, max(batch_size, per_epoch))
    return Plan(pre, alt, per_epoch, (pre + alt) * per_epoch / ((pretrain_epochs + train_epochs) * clips))


def train_epochs_left(costs: Costs, seconds: float, planned: Plan) -> int:
    """The alternating epochs of `planned` that fit in `seconds` (at least 1).

    Called once pretraining and init_clusters are done, when their real time is known.
    """
    epoch = planned.clips_per_epoch * costs.train_clip + costs.epoch
    return min(planned.train_epochs, max(1, math.floor((seconds - costs.stage) / epoch)))


def scale_milestones(milestones: list[int], full_epochs: int, epochs: int) -> list[int]:
    """Learning-rate milestones at the same share of a schedule cut from `full_epochs` to `epochs`."""
    return sorted({max(1, round(m * epochs / full_epochs)) for m in milestones})
