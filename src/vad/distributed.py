"""Data-parallel training across processes started by torchrun: process group, device, batch shards.

`torchrun --nproc_per_node=N vad pretrain ...` (or `vad train`) starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK set. Each joins one process group (NCCL on CUDA, gloo on CPU) and trains on
cuda:LOCAL_RANK (or the CPU). `batch_size` stays the *global* batch, so params, run keys and results do
not depend on the number of processes (raise it to keep more GPUs busy): every global batch of the
epoch's shuffled order, the same on every rank, is split into contiguous per-rank shards, and each rank
scales its loss by its share, so the averaged gradient is the gradient of the global batch's mean loss.
A run on N processes therefore follows the single-process run with the same params: up to float
rounding for a network without BatchNorm, and with SyncBatchNorm on GPUs; on the CPU BatchNorm uses
per-rank statistics (see `vad.training.Runtime.prepare`).
Without torchrun (or with WORLD_SIZE=1) everything here is a no-op.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vad.errors import ConfigError

__all__ = ["Distributed", "SINGLE", "torchrun_env", "distributed_session"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # where collectives run: this rank's GPU, or the CPU (gloo)

    @property
    def enabled(self) -> bool:
        """More than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    def shard(self, indices: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's clips of one global batch, and their share of the batch's loss.

        The batch is cut into `world_size` contiguous shards (sizes differ by at most one). A batch with
        fewer clips than processes (the last of an epoch) is given whole to every rank, each with weight
        1/world_size: every rank then computes the same gradient, whose average is again the batch's (with
        SyncBatchNorm the batch statistics are those of the batch too; only the running variance's n/(n-1)
        correction sees world_size copies).

        Returns:
            (indices of this rank, weight): the weights of all ranks sum to 1; the loss a rank
            back-propagates is its shard's mean loss times weight * world_size (DDP averages gradients).
        """
        m = len(indices)
        if self.world_size == 1:
            return indices, 1.0
        if m < self.world_size:
            return indices, 1.0 / self.world_size
        lo, hi = self.rank * m // self.world_size, (self.rank + 1) * m // self.world_size
        return indices[lo:hi], (hi - lo) / m

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Sum (or max) of `tensor` over the ranks, returned on `tensor`'s device."""
        if not self.enabled:
            return tensor
        moved = tensor.to(self.device, copy=True)
        dist.all_reduce(moved, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return moved.to(tensor.device)

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Average `.grad` over the ranks, for parameters that DDP does not handle (the cluster centers)."""
        if not self.enabled:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.world_size
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
        if self.enabled:
            for buffer in module.buffers():
                dist.broadcast(buffer.data, src=0)

    def barrier(self) -> None:
        """Wait for every rank (rank 0 writing a checkpoint, say)."""
        if self.enabled:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()


SINGLE = Distributed()


def torchrun_env() -> tuple[int, int, int] | None:
    """(RANK, WORLD_SIZE, LOCAL_RANK) as set by torchrun, or None outside it."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ConfigError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers, got {os.environ.get('RANK')!r}/"
                          f"{os.environ.get('WORLD_SIZE')!r}/{os.environ.get('LOCAL_RANK')!r}; start "
                          f"multi-process training with torchrun") from None
    return rank, world, local


def _rank_device(spec: str, local_rank: int) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda":
        if torch.cuda.device_count() <= local_rank:
            raise ConfigError(f"torchrun started local rank {local_rank}, but only {torch.cuda.device_count()} "
                              f"CUDA device(s) are visible; lower --nproc_per_node")
        return torch.device("cuda", local_rank)
    raise ConfigError(f"device '{spec}' cannot be shared by several torchrun processes; set device to auto, "
                      f"cuda (one GPU per process: cuda:LOCAL_RANK) or cpu in params.yaml")


@contextmanager
def distributed_session(device_spec: str) -> Iterator[Distributed]:
    """Join the torchrun process group, if any, for a training stage.

    Yields `SINGLE` outside torchrun. Under torchrun the process group is initialised on first use (NCCL
    on cuda:LOCAL_RANK, gloo on the CPU) and kept for the life of the process, so that several stages run
    in one process reuse it: destroying and re-creating it against torchrun's store is not reliable. It is
    destroyed at exit.
    """
    env = torchrun_env()
    if env is None or env[1] == 1:
        yield SINGLE
        return
    rank, world, local = env
    device = _rank_device(device_spec, local)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        atexit.register(_destroy)
        log.info("distributed: rank %d of %d on %s (%s)", rank, world, device, dist.get_backend())
    elif dist.get_world_size() != world:
        raise RuntimeError(f"a process group of {dist.get_world_size()} processes exists, but WORLD_SIZE={world}")
    expected = "nccl" if device.type == "cuda" else "gloo"
    if expected not in str(dist.get_backend()):
        raise ConfigError(f"this process group uses {dist.get_backend()}, but device {device} needs {expected}; "
                          f"keep the same device for every stage run in one torchrun process")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    yield Distributed(rank=rank, world_size=world, local_rank=local, device=device)


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
