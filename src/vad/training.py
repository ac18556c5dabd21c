"""The epoch loop shared by `pretrain` and `train`: shuffling, resumable checkpoints, per-epoch logs.

`Runtime` holds where and how a training stage runs: the device, the torchrun process group
(`vad.distributed`) and the speed switches of `params.perf` (bf16 autocast, channels_last, fused Adam,
torch.compile, cudnn.benchmark). `open_runtime` sets it up for the duration of a stage.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vad.allocator import keep_freed_memory
from vad.checkpoint import load_checkpoint, save_checkpoint
from vad.config import Amp, PerfParams
from vad.data.clips import ClipSource
from vad.distributed import SINGLE, Distributed, distributed_session
from vad.errors import ConfigError

__all__ = ["select_device", "seed_everything", "device_name", "fit", "Runtime", "resolve_runtime", "open_runtime",
           "match_param_layouts"]

log = logging.getLogger(__name__)

# step(batch, loss_scale) -> detached float losses of the batch (0-dim tensors, on any device). The step
# back-propagates its total loss times `loss_scale` (1 in one process; see `Distributed.shard`).
StepFn = Callable[[torch.Tensor, float], dict[str, torch.Tensor]]
# Per-epoch figures that depend on the machine and its load, not on data, code and params: returned and logged,
# never written into a checkpoint or history.json, so that DVC hashes the same outputs on every machine.
TIMING_KEYS = frozenset({"clips_per_s", "seconds", "data_wait_share"})


def persistent(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """`history` without its timing figures: what checkpoints and history.json keep."""
    return [{k: v for k, v in record.items() if k not in TIMING_KEYS} for record in history]


def select_device(spec: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def device_name(device: torch.device) -> str:
    """'cpu' or the GPU's name, for run metadata."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _bf16_native(device: torch.device) -> bool:
    with torch.cuda.device(device):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def _to_float32(value: Any) -> Any:
    """Outputs of an autocast forward (tensors, dataclasses and containers of them) cast to float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _to_float32(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_float32(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Runtime:
    """Where and how a training stage runs.

    Attributes:
        device: This process's device.
        dist: Its place among torchrun's processes (`SINGLE` without torchrun).
        amp_dtype: Autocast dtype of the forward pass (torch.bfloat16), or None for float32.
        channels_last: Convert the network to NHWC memory format.
        fused_adam: Use torch.optim.Adam(fused=True).
        compile: torch.compile the network.
    """

    device: torch.device
    dist: Distributed = SINGLE
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    fused_adam: bool = False
    compile: bool = False

    @property
    def is_main(self) -> bool:
        """The process that logs and writes files (the only one without torchrun)."""
        return self.dist.is_main

    def describe(self) -> str:
        """One line for the log: device, processes and switches."""
        parts = [f"{device_name(self.device)} ({self.device})" if self.device.type == "cuda" else str(self.device)]
        if self.dist.enabled:
            parts.append(f"{self.dist.world_size} processes (DDP)")
        parts.append("bf16 autocast" if self.amp_dtype == torch.bfloat16 else "float32")
        parts += [name for name, on in (("channels_last", self.channels_last), ("fused Adam", self.fused_adam),
                                        ("torch.compile", self.compile)) if on]
        return ", ".join(parts)

    def prepare(self, model: torch.nn.Module, *, ignore: Sequence[str] = ()) -> Callable[[torch.Tensor], Any]:
        """Make `model` (already on `device`) ready to train; return the forward function to call.

        `model` itself keeps its identity and parameter names (checkpoints hold its `state_dict`), and is
        what the optimizers take. The returned function runs the DDP-wrapped, compiled network under
        autocast and hands back float32 outputs, so that losses are computed in float32.

        Args:
            model: The network.
            ignore: Names of parameters DDP leaves alone (updated by another optimizer from a loss that
                does not go through this forward: the cluster centers); average their gradients with
                `dist.average_gradients`.
        """
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        net: torch.nn.Module = model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            if self.device.type == "cuda":
                # Batch statistics over the global batch, as in one process. SyncBatchNorm only runs on
                # GPUs; on the CPU (gloo) each rank normalises with its own shard's statistics.
                converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
                assert converted is model  # BatchNorm children are replaced in place, parameters kept
            if ignore:
                DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, list(ignore))
            net = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda"
                                          else None)
        if self.compile:
            net = torch.compile(net)
        amp, device_type = self.amp_dtype, self.device.type

        def forward(batch: torch.Tensor) -> Any:
            if amp is None:
                return net(batch)
            with torch.autocast(device_type, dtype=amp):
                outputs = net(batch)
            return _to_float32(outputs)

        return forward

    def adam(self, parameters: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Adam:
        """torch.optim.Adam, fused when `fused_adam`."""
        if self.fused_adam:
            return torch.optim.Adam(parameters, lr=lr, fused=True)
        return torch.optim.Adam(parameters, lr=lr)


def resolve_runtime(device: torch.device, perf: PerfParams, dist: Distributed = SINGLE) -> Runtime:
    """Turn the `perf` switches into settings for `device` (`auto`: on for CUDA only)."""
    cuda = device.type == "cuda"
    if perf.threads is not None and torch.get_num_threads() != perf.threads:
        torch.set_num_threads(perf.threads)
    if perf.amp == Amp.AUTO:
        amp_dtype = torch.bfloat16 if cuda and _bf16_native(device) else None
    elif perf.amp == Amp.BF16:
        if cuda and not _bf16_native(device):
            raise ConfigError(f"perf.amp is bf16, but {device_name(device)} has no native bfloat16 (it needs "
                              f"compute capability 8.0 or newer); set perf.amp to auto or off in params.yaml")
        amp_dtype = torch.bfloat16
    else:
        amp_dtype = None

    def switch(value: str | bool) -> bool:
        return cuda if value == "auto" else bool(value)

    return Runtime(device=device, dist=dist, amp_dtype=amp_dtype, channels_last=switch(perf.channels_last),
                   fused_adam=switch(perf.fused_adam), compile=perf.compile)


@contextmanager
def open_runtime(device_spec: str, perf: PerfParams) -> Iterator[Runtime]:
    """Set up a training stage: join torchrun's process group if any, pick the device, resolve `perf`."""
    keep_freed_memory()
    with distributed_session(device_spec) as dist:
        device = dist.device if dist.enabled else select_device(device_spec)
        runtime = resolve_runtime(device, perf, dist)
        if device.type == "cuda":
            # Fixed input shapes: let cuDNN time its algorithms once and keep the fastest.
            torch.backends.cudnn.benchmark = True
        if runtime.is_main:
            log.info("training on %s", runtime.describe())
        yield runtime


def match_param_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give loaded Adam moments their parameters' memory layout."""
    # Resumed moments keep the memory layout they were saved with; a run resumed with another
    # perf.channels_last would hand fused/foreach kernels a parameter and its moments in different layouts.
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


class _DataClock:
    """Time spent getting each batch vs running each step, without a synchronisation per step.

    On the CPU the work is synchronous and wall-clock times say it all. On a GPU, CUDA events are recorded
    in the stream before the batch is built, once it is ready, and after the step; the interval before
    "ready" covers the device's gather and conversion plus any time the device sat idle while the host
    prepared the batch: the time the step waited for its data. Events are read once, at the end of the epoch.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[Any] = []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def totals(self) -> tuple[float, float]:
        """Seconds (data, step) over the epoch; marks come in threes: before data, data ready, step done."""
        if self.cuda and self.marks:
            self.marks[-1].synchronize()
        elapsed = ((lambda a, b: a.elapsed_time(b) / 1e3) if self.cuda else (lambda a, b: b - a))
        triples = [self.marks[i : i + 3] for i in range(0, len(self.marks), 3)]
        return (sum(elapsed(a, b) for a, b, _ in triples), sum(elapsed(b, c) for _, b, c in triples))


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    # The order depends only on (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def _epoch_corners(n: int, frame: tuple[int, int], crop: tuple[int, int], seed: int, epoch: int) -> torch.Tensor:
    # Like the order: a function of (seed, epoch) and the clip's number, the same resumed, sharded or not.
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 2**40)
    return torch.stack([torch.randint(0, side - size + 1, (n,), generator=generator)
                        for side, size in zip(frame, crop, strict=True)], dim=1)


def crop_clips(batch: torch.Tensor, corners: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clip i of (B, T, C, H, W) `batch` cut to the `size` window whose top-left corner is `corners[i]`."""
    (h, w), rows = size, corners.tolist()
    return torch.stack([clip[..., top : top + h, left : left + w]
                        for clip, (top, left) in zip(batch, rows, strict=True)])


def fit(model: torch.nn.Module, clips: ClipSource, step: StepFn, *, epochs: int, batch_size: int, seed: int,
        checkpoint_path: Path, key: str, optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
        name: str = "train", progress: bool = False, dist: Distributed = SINGLE,
        max_clips: int | None = None, on_epoch: Callable[[dict[str, float]], None] | None = None,
        crop: tuple[int, int] | None = None,
        should_stop: Callable[[dict[str, float]], bool] | None = None) -> list[dict[str, float]]:
    """Run `epochs` epochs of `step` over shuffled batches, checkpointing atomically after each epoch.

    An unfinished checkpoint at `checkpoint_path` written with the same `key` is resumed from its last epoch.
    A finished one, or one with another key (other params or inputs), is ignored and overwritten: re-running
    a stage that completed recomputes it, as DVC expects (its code may have changed).

    Under torchrun (`dist`), `batch_size` is the global batch: each rank runs `step` on its shard of it
    (`Distributed.shard`), the logged losses are those of the whole batch, and rank 0 alone writes the
    checkpoint while the others wait. Every rank returns the same history.

    `max_clips` caps the clips of each epoch (the first ones of its shuffled order), for time-boxed runs.
    `on_epoch` is called on rank 0 with each epoch's record once its checkpoint is written (live tracking).
    `crop` (h, w): each clip of an epoch is cut to a random h x w window of its frames (`data.tile`).
    `should_stop` is asked after each epoch's checkpoint (with its record) whether to end the stage there: a
    time budget (`vad.fit`). A stage stopped early leaves its checkpoint unfinished, so a re-run continues it.

    Returns:
        One dict per epoch: mean of each loss, clips/s, seconds, and `data_wait_share`: the share of
        step time spent waiting for the batch (see `_DataClock`; summed over ranks under torchrun). The
        timings are absent from epochs resumed from the checkpoint, which keeps losses only (`persistent`).
    """
    if batch_size < dist.world_size:
        raise ConfigError(f"{name}.batch_size {batch_size} is the global batch, split over {dist.world_size} "
                          f"processes; set it to at least {dist.world_size} in params.yaml or start fewer")
    per_epoch = min(len(clips), max_clips or len(clips))
    if batch_size > per_epoch and dist.is_main:
        # Clamped, not refused: a small dataset is a legitimate start; the user is told what it means.
        log.warning("%s.batch_size %d is larger than the %d clips of an epoch: each epoch is one batch of %d "
                    "clips; lower %s.batch_size or add data", name, batch_size, per_epoch, per_epoch, name)
    schedulers = schedulers or {}
    history: list[dict[str, float]] = []
    start = 0
    if checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path)
        if state.get("key") == key and int(state["epoch"]) < epochs:
            model.load_state_dict(state["model"])
            for label, optimizer in optimizers.items():
                optimizer.load_state_dict(state["optimizers"][label])
                match_param_layouts(optimizer)
            for label, scheduler in schedulers.items():
                scheduler.load_state_dict(state["schedulers"][label])
            history, start = list(state["history"]), int(state["epoch"])
            if dist.is_main:
                log.info("%s: resuming from epoch %d/%d (%s)", name, start, epochs, checkpoint_path)
        elif dist.is_main:
            log.info("%s: starting afresh over %s (finished, or written for other params or inputs)", name,
                     checkpoint_path)
    model.train()
    for epoch in range(start, epochs):
        # On the frames' device: slicing it costs no host-to-device copy per batch.
        order = _epoch_order(len(clips), seed, epoch)[:max_clips].to(clips.index_device)
        labels: list[str] = []
        values: list[torch.Tensor] = []  # per batch, kept on the device: no synchronisation per step
        weights: list[float] = []
        clock = _DataClock(clips.device)
        began = time.perf_counter()
        shards = [dist.shard(order[first : first + batch_size]) for first in range(0, len(order), batch_size)]
        batches = clips.iter_batches([indices for indices, _ in shards])  # host-held frames: read ahead
        frame = clips.frame_size
        cropping = crop is not None and tuple(crop) != frame
        corners = _epoch_corners(len(clips), frame, crop, seed, epoch) if cropping else None
        steps = [(weight, indices.cpu() if cropping else None) for indices, weight in shards]
        if progress and dist.is_main:
            from tqdm import tqdm

            steps = tqdm(steps, desc=f"{name} {epoch + 1}/{epochs}", leave=False, unit="batch")
        for weight, indices in steps:
            clock.mark()
            batch = next(batches)
            if corners is not None:
                batch = crop_clips(batch, corners[indices], crop)
            clock.mark()
            losses = step(batch, weight * dist.world_size)
            clock.mark()
            labels = labels or list(losses)
            values.append(torch.stack([losses[k].detach().float() for k in labels]))
            weights.append(weight)
        batches.close()  # stops the loader processes of host-held frames now, not at garbage collection
        for scheduler in schedulers.values():
            scheduler.step()
        # Each rank's losses weighted by its share of the batch: summed over ranks, the whole batch's mean.
        sums = dist.all_reduce((torch.stack(values).cpu().double()
                                * torch.tensor(weights, dtype=torch.float64)[:, None]).sum(0))
        seconds = float(dist.all_reduce(torch.tensor([time.perf_counter() - began], dtype=torch.float64), "max"))
        data_s, step_s = dist.all_reduce(torch.tensor(clock.totals(), dtype=torch.float64)).tolist()
        batches_run = len(values)
        record = {"epoch": epoch + 1, **{k: float(v) / batches_run for k, v in zip(labels, sums, strict=True)},
                  "clips_per_s": len(order) / seconds, "seconds": seconds,
                  "data_wait_share": data_s / max(data_s + step_s, 1e-12)}
        history.append(record)
        # Per-rank BatchNorm (CPU) leaves each rank with its own running statistics: keep rank 0's.
        dist.broadcast_buffers(model)
        if dist.is_main:
            save_checkpoint(checkpoint_path, {
                "key": key, "epoch": epoch + 1, "history": persistent(history),
                # contiguous: channels_last weights are stored in the usual (NCHW) layout
                "model": {k: v.contiguous() for k, v in model.state_dict().items()},
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in schedulers.items()}, **(extra or {}),
            })
            losses_text = "  ".join(f"{k}={v:.5f}" for k, v in record.items()
                                    if k not in {"epoch", "clips_per_s", "seconds", "data_wait_share"})
            log.info("%s epoch %d/%d  %s  %.1f clips/s (%.0f%% waiting for data)", name, epoch + 1, epochs,
                     losses_text, record["clips_per_s"], 100 * record["data_wait_share"])
            if on_epoch is not None:
                on_epoch(record)
        dist.barrier()
        if should_stop is not None and epoch + 1 < epochs:
            stop = dist.all_reduce(torch.tensor([float(should_stop(record))], dtype=torch.float64), "max")
            if float(stop) > 0:
                if dist.is_main:
                    log.warning("%s: stopping after epoch %d of %d to hold the time budget", name, epoch + 1,
                                epochs)
                break
    return history
