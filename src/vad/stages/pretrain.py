"""Stage `pretrain`: train both autoencoders on L_a + L_m (Sec. 4.2)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from vad.atomic import atomic_write_text
from vad.checkpoint import CHECKPOINT, run_key
from vad.config import Params
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.models import build_model
from vad.models.losses import autoencoder_losses
from vad.stages import StageResult
from vad.training import fit, open_runtime, persistent, seed_everything

if TYPE_CHECKING:  # a type only: tracking does not change what the stage computes (no DVC dep)
    from vad.pipeline_run import PipelineRun

__all__ = ["run"]

log = logging.getLogger(__name__)


def model_config(params: Params) -> dict:
    """What a later reader needs: the `model` and `data` sections, and the share of footage held out."""
    return {"model": params.model.model_dump(mode="json"), "data": params.data.model_dump(mode="json"),
            "holdout_share": params.detect.holdout_share}


def run(params: Params, frames_dir: Path, out_dir: Path, *, progress: bool = False,
        tracking: PipelineRun | None = None, should_stop: Callable[[dict[str, float]], bool] | None = None,
        ) -> StageResult:
    """Pretrain on the training clips of `frames_dir`; write `out_dir/checkpoint.pt` and `history.json`.

    Under `torchrun --nproc_per_node=N` the N processes train one model data-parallel (see vad.distributed)
    and rank 0 alone writes the outputs. `tracking`: the pipeline's MLflow run, which gets each epoch's losses.
    `should_stop`: asked after each epoch whether to end here (a time budget, see `vad.training.fit`).
    """
    seed_everything(params.seed)
    with open_runtime(params.device, params.perf) as runtime:
        store = FrameStore.open(frames_dir)
        # the tail of each video held out for calibration (detect.holdout_share) is never trained on
        clips = ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, runtime.device,
                                      holdout_share=params.detect.holdout_share)
        model = build_model(params.model, params.data).to(runtime.device)
        # The centers get no gradient here: DDP must not wait for one.
        forward = runtime.prepare(model, ignore=["kmeans.centers"])
        optimizer = runtime.adam(model.autoencoder_parameters(), lr=params.pretrain.lr)

        def step(batch: torch.Tensor, loss_scale: float) -> dict[str, torch.Tensor]:
            losses = autoencoder_losses(forward(batch), params.model.w_grad, params.model.gradient_on)
            total = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            (total * loss_scale).backward()
            optimizer.step()
            return {"loss": total.detach(), **{f"loss_{k}": v.detach() for k, v in losses.items()}}

        # perf and the number of processes are not in the key: they change float rounding, not the run.
        key = run_key("pretrain", model_config(params), params.pretrain.model_dump(), params.seed,
                      (frames_dir / "manifest.json").read_text(), params.detect.holdout_share)
        history = fit(model, clips, step, epochs=params.pretrain.epochs, batch_size=params.pretrain.batch_size,
                      seed=params.seed, checkpoint_path=out_dir / CHECKPOINT, key=key,
                      optimizers={"ae": optimizer}, extra={"config": model_config(params)},
                      name="pretrain", progress=progress, dist=runtime.dist,
                      max_clips=params.pretrain.max_clips_per_epoch,
                      on_epoch=tracking and (lambda record: tracking.log_epoch("pretrain", record)),
                      crop=params.data.tile, should_stop=should_stop)
        if runtime.is_main:
            atomic_write_text(out_dir / "history.json", json.dumps(persistent(history), indent=1) + "\n")
        runtime.dist.barrier()
    last = history[-1]
    return StageResult(outputs={"checkpoint": out_dir / CHECKPOINT},
                       metrics={"pretrain_loss": last["loss"], "pretrain_clips_per_s": last["clips_per_s"]},
                       history=history)
