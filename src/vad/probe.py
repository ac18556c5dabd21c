"""Short timed steps on this machine, the costs `vad.planning` plans with.

A probe builds the network at one geometry and times a few warm training steps of batch 8 on real clips of
the footage (random windows when tiled, as training cuts them), the alternating step with its cluster loss
and centre update, and the no-gradient forward pass that scoring and k-means run. Seconds, not FLOPs: the
machine's real speed is what the budget is spent at, whatever else runs on it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import torch

from vad.config import Params
from vad.data.clips import ClipSource
from vad.models import build_model
from vad.models.losses import autoencoder_losses
from vad.planning import BATCH, Geometry, StepCosts
from vad.training import crop_clips, resolve_runtime

__all__ = ["measure", "choose_threads", "cores"]

log = logging.getLogger(__name__)

_MIN_TIMED_S = 1.0  # time steps until this much has passed (and at least _MIN_STEPS steps)
_MIN_STEPS, _MAX_STEPS = 3, 8


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _timed(step: Callable[[], None], clips: int, clock: Callable[[], float]) -> float:
    """Seconds per clip of `step`: the mean step after one warm-up step (allocator, oneDNN's kernels).

    The mean, not the median: the slow steps recur in training too. On Ped2 the median of a probe said 23.6
    clips/s where the epochs ran at 16-18, the mean 17 (docs/fit.md).
    """
    step()
    began, steps = clock(), 0
    while steps < _MIN_STEPS or (clock() - began < _MIN_TIMED_S and steps < _MAX_STEPS):
        step()
        steps += 1
    return (clock() - began) / (steps * clips)


def measure(params: Params, geometry: Geometry, clips: ClipSource, device: torch.device, *,
            ceiling: float = float("inf"), clock: Callable[[], float] = time.perf_counter) -> StepCosts:
    """The step costs at `geometry` of the network `params` describe, on clips of the frame store `clips`.

    `ceiling`: seconds per clip above which the geometry cannot fit the budget anyway. When the first step
    alone is more than twice that (warm-up included), the probe stops there and returns that step's cost for
    all three: enough to rule the geometry out, without paying for a slow network's full probe.
    """
    data = params.data.model_copy(update={"image_size": (geometry.side, geometry.side),
                                          "tile": None if geometry.tile is None else (geometry.tile, geometry.tile)})
    model_params = params.model.model_copy(update={"width": geometry.width})
    model = build_model(model_params, data).to(device)
    runtime = resolve_runtime(device, params.perf)
    net = runtime.prepare(model, ignore=["kmeans.centers"])  # channels_last, autocast: as training runs it
    generator = torch.Generator().manual_seed(params.seed)
    batch = clips.batch(torch.randint(0, len(clips), (BATCH,), generator=generator))
    window = data.window
    if tuple(window) != tuple(batch.shape[-2:]):
        corners = torch.stack([torch.randint(0, side - size + 1, (BATCH,), generator=generator)
                               for side, size in zip(batch.shape[-2:], window, strict=True)], dim=1)
        batch = crop_clips(batch, corners, window)
    ae = runtime.adam(model.autoencoder_parameters(), lr=1e-4)
    centers = runtime.adam([model.kmeans.centers], lr=1e-5)

    def pretrain_step() -> None:
        losses = autoencoder_losses(net(batch), model_params.w_grad, model_params.gradient_on)
        ae.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        ae.step()

    def train_step() -> None:
        outputs = net(batch)
        losses = autoencoder_losses(outputs, model_params.w_grad, model_params.gradient_on)
        total = sum(losses.values()) + params.train.lambda_r * model.kmeans(outputs.r).mean()
        ae.zero_grad(set_to_none=True)
        total.backward()
        ae.step()
        cluster = model.kmeans(outputs.r.detach()).mean()
        centers.zero_grad(set_to_none=True)
        cluster.backward()
        centers.step()

    def forward() -> None:
        with torch.no_grad():
            net(batch)

    model.train()
    began = clock()
    pretrain_step()
    first = (clock() - began) / BATCH
    if first > 2 * ceiling:
        log.info("probe %s: %.2f clips/s at the first step, too slow for the budget", geometry.describe(), 1 / first)
        return StepCosts(pretrain_clip=first, train_clip=first, forward_window=first / 3)
    costs = StepCosts(pretrain_clip=_timed(pretrain_step, BATCH, clock), train_clip=_timed(train_step, BATCH, clock),
                      forward_window=_timed(forward, BATCH, clock))
    log.info("probe %s: %.1f clips/s pretraining, %.1f alternating, %.0f windows/s forward", geometry.describe(),
             1 / costs.pretrain_clip, 1 / costs.train_clip, 1 / costs.forward_window)
    return costs


def choose_threads(params: Params, geometry: Geometry, clips: ClipSource, device: torch.device) -> int | None:
    """The faster of one thread per core and one thread, for CPU training (None on a GPU: no choice to make).

    On cores another job also uses, torch's default of a thread per core can be many times slower than one
    thread (issue 31: 1.6 against 47 clips/s), because its threads wait on each other at every operator.
    """
    n = cores()
    if device.type != "cpu" or n == 1:
        return None
    rates: dict[int, float] = {}
    for threads in (n, 1, n):  # n twice: the first probe of a process also pays its one-off warm-up
        torch.set_num_threads(threads)
        rates[threads] = min(rates.get(threads, float("inf")), measure(params, geometry, clips, device).pretrain_clip)
    best = min(rates, key=rates.get)
    torch.set_num_threads(best)
    log.info("threads: %s s per clip at %s; using %d", {k: f"{v:.4f}" for k, v in rates.items()},
             ", ".join(f"{k} thread(s)" for k in rates), best)
    return best
