"""Stage `pretrain`: train both autoencoders on L_a + L_m (Sec. 4.2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from vad.checkpoint import CHECKPOINT, run_key
from vad.config import Params
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore, atomic_write_text
from vad.models import build_model
from vad.models.losses import autoencoder_losses
from vad.stages import StageResult
from vad.training import fit, seed_everything, select_device

__all__ = ["run"]

log = logging.getLogger(__name__)


def model_config(params: Params) -> dict:
    """What a later reader needs to rebuild the network: the `model` and `data` sections."""
    return {"model": params.model.model_dump(mode="json"), "data": params.data.model_dump(mode="json")}


def run(params: Params, frames_dir: Path, out_dir: Path, *, progress: bool = False) -> StageResult:
    """Pretrain on the training clips of `frames_dir`; write `out_dir/checkpoint.pt` and `history.json`."""
    seed_everything(params.seed)
    device = select_device(params.device)
    store = FrameStore.open(frames_dir)
    clips = ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, device)
    model = build_model(params.model, params.data).to(device)
    optimizer = torch.optim.Adam(model.autoencoder_parameters(), lr=params.pretrain.lr)

    def step(batch: torch.Tensor) -> dict[str, float]:
        losses = autoencoder_losses(model(batch), params.model.w_grad)
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return {"loss": total.item(), **{f"loss_{k}": v.item() for k, v in losses.items()}}

    key = run_key("pretrain", model_config(params), params.pretrain.model_dump(), params.seed,
                  (frames_dir / "manifest.json").read_text())
    history = fit(model, clips, step, epochs=params.pretrain.epochs, batch_size=params.pretrain.batch_size,
                  seed=params.seed, checkpoint_path=out_dir / CHECKPOINT, key=key,
                  optimizers={"ae": optimizer}, extra={"config": model_config(params)},
                  name="pretrain", progress=progress)
    atomic_write_text(out_dir / "history.json", json.dumps(history, indent=1) + "\n")
    last = history[-1]
    return StageResult(outputs={"checkpoint": out_dir / CHECKPOINT},
                       metrics={"pretrain_loss": last["loss"], "pretrain_clips_per_s": last["clips_per_s"]})
