"""Stage `train`: alternate, batch by batch, between the autoencoders and the cluster centers (Sec. 4.2)."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from vad.atomic import atomic_write_text
from vad.checkpoint import CHECKPOINT, load_checkpoint, run_key, save_checkpoint
from vad.config import Params
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.errors import DataLayoutError
from vad.models import build_model, load_weights
from vad.models.losses import autoencoder_losses
from vad.scoring import normal_error_map
from vad.stages import StageResult
from vad.stages.pretrain import model_config
from vad.training import device_name, fit, match_param_layouts, open_runtime, persistent, seed_everything

if TYPE_CHECKING:  # a type only: tracking does not change what the stage computes (no DVC dep)
    from vad.pipeline_run import PipelineRun

__all__ = ["run", "continue_adam", "store_normal_error", "NORMAL_MAP_CLIPS"]

log = logging.getLogger(__name__)


def continue_adam(optimizer: torch.optim.Optimizer, init: dict, init_path: Path, lr: float) -> None:
    """Load pretraining's Adam state (moments, step count) from the init checkpoint, at learning rate `lr`.

    A fresh Adam's first steps move every weight by about lr whatever its gradient's history: on Ped2 the
    appearance loss rises 40% in the first alternating epoch without any cluster term (docs/ped2.md, run 9).

    Raises:
        DataLayoutError: the init checkpoint carries no optimizer state (written before this switch).
    """
    if "pretrain_adam" not in init:
        raise DataLayoutError(f"{init_path} carries no pretraining optimizer state, which train.continue_adam "
                              f"needs (written before the switch); re-run `vad init-clusters` to add it")
    optimizer.load_state_dict(copy.deepcopy(init["pretrain_adam"]))  # torch would share its tensors with `init`
    match_param_layouts(optimizer)
    for group in optimizer.param_groups:
        group["lr"] = lr
        group.pop("initial_lr", None)  # the scheduler's milestones count from `lr`


# Training clips the normal error map averages at most: the default sample of k-means (init_clusters.sample_clips)
NORMAL_MAP_CLIPS = 2000


def store_normal_error(model: torch.nn.Module, clips: ClipSource, checkpoint: Path, params: Params) -> None:
    """Add the trained network's mean error map on its training clips to `checkpoint` (`detect.map: relative`).

    With another alarm map, remove it: the checkpoint holds it exactly when the params ask for it. At most
    NORMAL_MAP_CLIPS clips, evenly spaced, in batches of `train.batch_size`.
    """
    state = load_checkpoint(checkpoint)
    if params.detect.map == "relative":
        state["normal_error"] = normal_error_map(model.eval(), clips, NORMAL_MAP_CLIPS, params.train.batch_size)
    elif state.pop("normal_error", None) is None:
        return
    save_checkpoint(checkpoint, state)


def run(params: Params, frames_dir: Path, init_dir: Path, out_dir: Path, *, progress: bool = False,
        tracking: PipelineRun | None = None, should_stop: Callable[[dict[str, float]], bool] | None = None,
        ) -> StageResult:
    """Train from the initialised model in `init_dir`; write `out_dir/checkpoint.pt` (the final model).

    Under `torchrun --nproc_per_node=N` the N processes train one model data-parallel (see vad.distributed)
    and rank 0 alone writes the outputs. `tracking`: the pipeline's MLflow run, which gets each epoch's losses.
    `should_stop`: asked after each epoch whether to end here (a time budget, see `vad.training.fit`).
    """
    seed_everything(params.seed)
    with open_runtime(params.device, params.perf) as runtime:
        device = runtime.device
        store = FrameStore.open(frames_dir)
        # the tail of each video held out for calibration (detect.holdout_share) is never trained on
        clips = ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, device,
                                      holdout_share=params.detect.holdout_share)
        init_path = init_dir / CHECKPOINT
        init = load_checkpoint(init_path)
        model = build_model(params.model, params.data).to(device)
        load_weights(model, init["model"], init_path)
        # The centers have their own optimizer and loss (step 2 below): DDP leaves them alone and their
        # gradient is averaged over the processes by hand, so every rank keeps the same centers.
        centers = model.kmeans.centers
        forward = runtime.prepare(model, ignore=["kmeans.centers"])
        tp = params.train
        ae_optimizer = runtime.adam(model.autoencoder_parameters(), lr=tp.lr)
        if tp.continue_adam:
            continue_adam(ae_optimizer, init, init_path, tp.lr)
        center_optimizer = runtime.adam([centers], lr=tp.center_lr)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(ae_optimizer, tp.lr_milestones, tp.lr_gamma)
        clustering = params.model.kmeans

        def step(batch: torch.Tensor, loss_scale: float) -> dict[str, torch.Tensor]:
            # (1) centers frozen: update the autoencoders on L_a + L_m + lambda_r * L_cluster.
            outputs = forward(batch)
            losses = autoencoder_losses(outputs, params.model.w_grad, params.model.gradient_on)
            if clustering:
                losses["cluster"] = model.kmeans(outputs.r).mean()
            total = sum(losses.values()) if not clustering else (
                sum(v for k, v in losses.items() if k != "cluster") + tp.lambda_r * losses["cluster"])
            ae_optimizer.zero_grad(set_to_none=True)
            (total * loss_scale).backward()
            ae_optimizer.step()
            record = {"loss": total.detach(), **{f"loss_{k}": v.detach() for k, v in losses.items()}}
            if clustering:
                # (2) autoencoders frozen: update the centers on L_cluster of this batch's representation.
                cluster_loss = model.kmeans(outputs.r.detach()).mean()
                center_optimizer.zero_grad(set_to_none=True)
                (cluster_loss * loss_scale).backward()
                runtime.dist.average_gradients([centers])
                center_optimizer.step()
            return record

        # perf and the number of processes are not in the key: they change float rounding, not the run.
        key = run_key("train", model_config(params), tp.model_dump(), params.seed,
                      (frames_dir / "manifest.json").read_text(),
                      hashlib.sha256(init_path.read_bytes()).hexdigest(), params.detect.holdout_share)
        history = fit(model, clips, step, epochs=tp.epochs, batch_size=tp.batch_size, seed=params.seed,
                      checkpoint_path=out_dir / CHECKPOINT, key=key,
                      optimizers={"ae": ae_optimizer, "centers": center_optimizer}, schedulers={"ae": scheduler},
                      extra={"config": model_config(params), "device": device_name(device)}, name="train",
                      progress=progress, dist=runtime.dist, max_clips=tp.max_clips_per_epoch,
                      on_epoch=tracking and (lambda record: tracking.log_epoch("train", record)),
                      crop=params.data.tile, should_stop=should_stop)
        if runtime.is_main:
            store_normal_error(model, clips, out_dir / CHECKPOINT, params)
            atomic_write_text(out_dir / "history.json", json.dumps(persistent(history), indent=1) + "\n")
        runtime.dist.barrier()
    last = history[-1]
    metrics = {"train_loss": last["loss"], "train_clips_per_s": last["clips_per_s"]}
    if clustering:
        metrics["train_cluster_loss"] = last["loss_cluster"]
    return StageResult(outputs={"checkpoint": out_dir / CHECKPOINT}, metrics=metrics, history=history)
