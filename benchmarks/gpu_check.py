"""Ped2 on one GPU within a time budget: extract, pretrain, init clusters, train, score, evaluate.

Run through benchmarks/gpu_check.sh. The paper's Ped2 schedule (configs/ped2.yaml: 256x256 RGB, 50
pretraining + 100 alternating epochs) is scaled down, and the script says so, when the costs measured by
short probe runs on the device say it would not fit the budget (benchmarks/budget.py); the alternating
epochs are planned again once pretraining is done. The model evaluated is the last one (no test label is
used). On a GPU scoring runs twice, cold (cuDNN still choosing algorithms) and warm: the rate reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from budget import Costs, plan, scale_milestones, train_epochs_left
from common import (
    JSONL,
    compute_figures,
    flops_per_clip,
    forward_only_frames_per_s,
    machine,
    override_preset,
    peak_gpu_mb,
    peak_host_mb,
)

from vad.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from vad.config import load_params
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.metrics import VideoScores, evaluate  # noqa: E402
from vad.models import build_model, load_trained
from vad.scores_csv import read_scores  # noqa: E402
from vad.stages import extract, init_clusters, pretrain, score, train
from vad.training import device_name, resolve_runtime, select_device

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("gpu_check")


def forward_rate(params, checkpoint: Path, store: FrameStore, device: torch.device, max_batches: int = 16) -> float:
    """Model-forward-only scoring rate on prebuilt batches of test clips, at the score stage's batch size."""
    model = load_trained(checkpoint, device).model
    runtime = resolve_runtime(device, params.perf)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    clips = ClipSource.from_split(store, Split.TEST, params.data.clip_len, device)
    size = params.score.batch_size
    batches = [clips.batch(torch.arange(i, min(i + size, len(clips))))
               for i in range(0, min(len(clips), size * max_batches), size)]
    # best of 2: the first pass warms up (cudnn, allocator)
    return forward_only_frames_per_s(model, batches, params.model.kmeans, runtime.amp_dtype, passes=2)


def calibrate(params, frames: Path, work: Path, train_clips: int, device: torch.device) -> Costs:
    """Time short runs of pretrain, init_clusters and train (2 epochs each, on a slice of the clips).

    The second epoch of each stage gives the steady cost per clip; the first holds the warm-up (cuDNN's
    algorithm search, the allocator), counted once per stage with the start-up.
    """
    probe = min(train_clips, (32 if device.type == "cuda" else 16) * params.pretrain.batch_size)
    init_full = min(params.init_clusters.sample_clips, train_clips)
    # On a GPU init_clusters is timed at the size of the full schedule's; on a CPU at the probe's.
    init_probe = init_full if device.type == "cuda" else min(probe, init_full)
    probe_params = params.model_copy(update={
        "pretrain": params.pretrain.model_copy(update={"epochs": 2, "max_clips_per_epoch": probe}),
        "init_clusters": params.init_clusters.model_copy(update={"sample_clips": init_probe}),
        "train": params.train.model_copy(update={"epochs": 2, "max_clips_per_epoch": probe})})

    results = {}

    def timed(run_stage, *args) -> float:
        started = time.perf_counter()
        results[run_stage.__module__] = run_stage(probe_params, frames, *args)
        return time.perf_counter() - started

    def steady(stage: str, wall: float) -> tuple[float, float]:  # (seconds per clip, seconds besides)
        first, last = (e["seconds"] for e in results[f"vad.stages.{stage}"].history)
        # besides the epochs: start-up and checkpoints; and the first epoch's warm-up, what it took beyond the second
        return last / probe, wall - first - last + max(0.0, first - last)

    pretrain_clip, pretrain_rest = steady("pretrain", timed(pretrain.run, work / "probe_pretrain"))
    init_clip = timed(init_clusters.run, work / "probe_pretrain", work / "probe_init") / init_probe
    train_clip, train_rest = steady("train", timed(train.run, work / "probe_init", work / "probe_train"))
    state = load_checkpoint(work / "probe_train" / CHECKPOINT)
    saves = []
    for _ in range(3):  # the per-epoch checkpoint, as fit() writes it
        started = time.perf_counter()
        save_checkpoint(work / "probe_save" / CHECKPOINT, state)
        saves.append(time.perf_counter() - started)
    return Costs(pretrain_clip=pretrain_clip, train_clip=train_clip, epoch=sorted(saves)[1],
                 stage=max(pretrain_rest, train_rest), init_clip=init_clip,
                 init_clips=params.init_clusters.sample_clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole check")
    parser.add_argument("--deadline", type=float, help="unix time by which the check must end (gpu_check.sh "
                                                       "passes it, so that the budget also covers what ran before)")
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "ped2")
    parser.add_argument("--preset", type=Path, default=ROOT / "configs" / "ped2.yaml")
    parser.add_argument("--size", type=int, help="override the preset's image size (e.g. 64 on a CPU)")
    parser.add_argument("--channels", type=int, help="override the preset's channels")
    parser.add_argument("--width", type=int, help="override the preset's network width")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    opened = time.time() if args.deadline is None else args.deadline - args.budget
    params = load_params(args.preset)
    if args.size or args.channels or args.width:
        params = override_preset(params, size=args.size, channels=args.channels, width=args.width)
        log.info("overriding the preset: %s", {"image_size": params.data.image_size, "channels": params.data.channels,
                                               "width": params.model.width})
    device = select_device(params.device)
    work = Path(tempfile.mkdtemp(prefix="gpu_check."))
    extract.run(params.data, args.source, work / "frames")
    store = FrameStore.open(work / "frames")
    train_clips = sum(v.frames - params.data.clip_len + 1 for v in store.split(Split.TRAIN))
    test_clips = sum(v.frames - params.data.clip_len + 1 for v in store.split(Split.TEST))

    costs = calibrate(params, work / "frames", work, train_clips, device)
    log.info("probe runs: %s", {k: f"{v:.4g} s" if isinstance(v, float) else v
                                for k, v in dataclasses.asdict(costs).items()})
    # Scoring (twice on a GPU: cold, then warm; a CPU has no algorithm search to warm up), then two
    # forward-only passes over a few batches, at the probe's rate.
    cuda = device.type == "cuda"
    forward_batches = 16 if cuda else 4
    score_fps = forward_rate(params, work / "probe_train" / CHECKPOINT, store, device, max_batches=2)
    forward_clips = min(test_clips, forward_batches * params.score.batch_size)
    score_s = ((1 + cuda) * test_clips + 2 * forward_clips) / score_fps + 10

    def seconds_left(margin: float = 15.0) -> float:  # for training, with scoring and the report's margin aside
        return opened + args.budget - time.time() - score_s - margin

    full_pre, full_train = params.pretrain.epochs, params.train.epochs
    planned = plan(costs, seconds_left(), pretrain_epochs=full_pre, train_epochs=full_train, clips=train_clips,
                   batch_size=params.pretrain.batch_size)
    per_epoch = planned.clips_per_epoch if planned.clips_per_epoch < train_clips else None
    least = costs.seconds(1, 1, params.pretrain.batch_size)
    if seconds_left(margin=0) < least:
        log.warning("a budget of %.0f s cannot be held here: the probe runs, scoring and the smallest training "
                    "run need about %.0f s more", args.budget, least - seconds_left(margin=0))
    if planned.fraction < 1.0:
        log.info("budget %.0f s: scaling the Ped2 schedule to %.3g%% (%d pretraining + %d alternating epochs%s)",
                 args.budget, 100 * planned.fraction, planned.pretrain_epochs, planned.train_epochs,
                 f", {per_epoch} of {train_clips} clips per epoch" if per_epoch else "")
    # k-means++ samples latents of at most one (scaled) epoch's clips: its cost scales with the schedule.
    sample = min(params.init_clusters.sample_clips, per_epoch or train_clips)
    params = params.model_copy(update={
        "init_clusters": params.init_clusters.model_copy(update={"sample_clips": sample}),
        "pretrain": params.pretrain.model_copy(update={"epochs": planned.pretrain_epochs,
                                                       "max_clips_per_epoch": per_epoch})})

    started = time.perf_counter()
    pretrained = pretrain.run(params, work / "frames", work / "pretrain")
    init_clusters.run(params, work / "frames", work / "pretrain", work / "init")
    train_epochs = train_epochs_left(costs, seconds_left(), planned)
    if train_epochs < planned.train_epochs:
        log.info("pretraining and init_clusters took longer than planned: %d alternating epochs instead of %d",
                 train_epochs, planned.train_epochs)
    params = params.model_copy(update={"train": params.train.model_copy(update={
        "epochs": train_epochs, "max_clips_per_epoch": per_epoch,
        "lr_milestones": scale_milestones(params.train.lr_milestones, full_train, train_epochs)})})
    trained = train.run(params, work / "frames", work / "init", work / "train")
    training_s = time.perf_counter() - started
    clips_run = (planned.pretrain_epochs + train_epochs) * (per_epoch or train_clips)
    fraction = clips_run / ((full_pre + full_train) * train_clips)
    cold = score.run(params, work / "frames", work / "train", work / "scores.csv")
    scored = score.run(params, work / "frames", work / "train", work / "scores.csv") if cuda else cold  # warm
    scores = read_scores(work / "scores.csv")
    videos = [VideoScores(v.id, store.labels(v), scores[v.id]["scored"], scores[v.id]["anomaly"],
                          scores[v.id]["prediction_error"], scores[v.id]["cluster_distance"])
              for v in store.split(Split.TEST)]
    metrics = evaluate(videos).metrics
    forward_fps = forward_rate(params, work / "train" / CHECKPOINT, store, device, forward_batches)
    histories = [pretrained.history, trained.history]  # with timings (history.json keeps the losses only)
    waits = [r["data_wait_share"] for history in histories for r in history[1:] or history]  # after warm-up
    train_flops = flops_per_clip(build_model(params.model, params.data).to(device),
                                 ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, device)
                                 .batch(torch.arange(1)), backward=True)
    rate = clips_run / training_s
    record = {"benchmark": "gpu_check", "date": date.today().isoformat(), **machine(), "device": device_name(device),
              "torch": torch.__version__, "budget_s": args.budget, "schedule_fraction": round(fraction, 4),
              # the plan made from the probe runs; train_epochs is lower when pretraining overran it
              "planned_fraction": round(planned.fraction, 4), "planned_train_epochs": planned.train_epochs,
              "pretrain_epochs": planned.pretrain_epochs, "train_epochs": train_epochs,
              "clips_per_epoch": per_epoch or train_clips,
              "auc_micro": round(metrics["auc_micro"], 4), "auc_macro": round(metrics.get("auc_macro", np.nan), 4),
              "training_s": round(training_s, 1), "train_clips_per_s": round(rate, 2),
              "last_epoch_clips_per_s": round(trained.metrics["train_clips_per_s"], 1),
              "data_wait_share_mean": round(float(np.mean(waits)), 4), "data_wait_share_max": round(max(waits), 4),
              "gflop_per_clip_train_step": round(train_flops / 1e9, 2),
              **{f"train_{k}": v for k, v in compute_figures(train_flops, rate, device_name(device)).items()},
              "score_batch": params.score.batch_size,
              "score_cold_frames_per_s": round(cold.metrics["score_frames_per_s"], 1),
              "score_frames_per_s": round(scored.metrics["score_frames_per_s"], 1),
              "forward_only_frames_per_s": round(forward_fps, 1),
              "score_share_of_forward": round(scored.metrics["score_frames_per_s"] / forward_fps, 3),
              "peak_host_mb": round(peak_host_mb(), 1), "peak_gpu_mb": peak_gpu_mb(),
              "probe_costs_s": {k: round(v, 5) for k, v in dataclasses.asdict(costs).items()},
              # what the whole paper schedule would take here, from the probe runs' costs
              "full_schedule_estimate_s": round(costs.seconds(full_pre, full_train, train_clips), 1),
              "total_s": round(time.time() - opened, 1)}
    print(json.dumps(record))
    for key in ("auc_micro", "schedule_fraction", "training_s", "full_schedule_estimate_s", "train_clips_per_s",
                "data_wait_share_mean", "train_achieved_tflops", "train_share_of_peak", "score_frames_per_s",
                "forward_only_frames_per_s", "score_share_of_forward", "peak_gpu_mb", "total_s"):
        print(f"{key:>26}: {record[key]}")
    out = Path(os.environ["OUT"]) / "benchmarks.jsonl" if os.environ.get("OUT") else JSONL  # $OUT: device runs
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
