"""Ped2 on one GPU within a time budget: extract, pretrain, init clusters, train, score, evaluate.

Run through benchmarks/gpu_check.sh. The paper's Ped2 schedule (configs/ped2.yaml: 256x256 RGB, 50
pretraining + 100 alternating epochs) is scaled down, and the script says so, when the measured training
speed says it would not fit the budget. The model evaluated is the last one (no test label is used).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
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

from vad.checkpoint import CHECKPOINT, load_checkpoint
from vad.config import load_params
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.metrics import VideoScores, evaluate, read_scores
from vad.models import build_model
from vad.stages import extract, init_clusters, pretrain, score, train
from vad.training import device_name, resolve_runtime, select_device

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("gpu_check")


def forward_rate(params, checkpoint: Path, store: FrameStore, device: torch.device, max_batches: int = 16) -> float:
    """Model-forward-only scoring rate on prebuilt batches of test clips, at the score stage's batch size."""
    model = build_model(params.model, params.data).to(device)
    model.load_state_dict(load_checkpoint(checkpoint, device)["model"])
    model.eval()
    runtime = resolve_runtime(device, params.perf)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    clips = ClipSource.from_split(store, Split.TEST, params.data.clip_len, device)
    size = params.score.batch_size
    batches = [clips.batch(torch.arange(i, min(i + size, len(clips))))
               for i in range(0, min(len(clips), size * max_batches), size)]
    # best of 2: the first pass warms up (cudnn, allocator)
    return forward_only_frames_per_s(model, batches, params.model.kmeans, runtime.amp_dtype, passes=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole check")
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "ped2")
    parser.add_argument("--preset", type=Path, default=ROOT / "configs" / "ped2.yaml")
    parser.add_argument("--size", type=int, help="override the preset's image size (e.g. 64 on a CPU)")
    parser.add_argument("--channels", type=int, help="override the preset's channels")
    parser.add_argument("--width", type=int, help="override the preset's network width")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    began = time.perf_counter()
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

    # Calibrate: a short pretraining run on a slice of one epoch measures clips/s on this device.
    probe = min(train_clips, 16 * params.pretrain.batch_size)
    calibration = params.model_copy(update={"pretrain": params.pretrain.model_copy(
        update={"epochs": 1, "max_clips_per_epoch": probe})})
    started = time.perf_counter()
    pretrain.run(calibration, work / "frames", work / "probe")
    clips_per_s = probe / (time.perf_counter() - started)
    # Scoring, then two forward-only passes over up to 16 batches, at the probe's forward rate.
    score_fps = forward_rate(params, work / "probe" / CHECKPOINT, store, device, max_batches=2)
    score_s = (test_clips + 2 * min(test_clips, 16 * params.score.batch_size)) / score_fps + 10
    left = args.budget - (time.perf_counter() - began) - score_s - 15
    full = (params.pretrain.epochs + params.train.epochs) * train_clips
    fraction = max(0.0, min(1.0, left * clips_per_s / full))
    pre_epochs = max(1, round(params.pretrain.epochs * fraction))
    train_epochs = max(1, round(params.train.epochs * fraction))
    per_epoch = None
    if (pre_epochs + train_epochs) * train_clips > left * clips_per_s:
        per_epoch = max(params.pretrain.batch_size, int(left * clips_per_s / (pre_epochs + train_epochs)))
    if fraction < 1.0:
        log.info("budget %.0f s at %.1f clips/s: scaling the Ped2 schedule to %.1f%% (%d pretraining + %d alternating "
                 "epochs%s)", args.budget, clips_per_s, 100 * fraction, pre_epochs, train_epochs,
                 f", {per_epoch} of {train_clips} clips per epoch" if per_epoch else "")
    milestones = [m for m in params.train.lr_milestones if m < train_epochs] or [train_epochs + 1]
    # k-means++ samples latents of at most one (scaled) epoch's clips: its cost scales with the schedule.
    sample = min(params.init_clusters.sample_clips, per_epoch or train_clips)
    params = params.model_copy(update={
        "init_clusters": params.init_clusters.model_copy(update={"sample_clips": sample}),
        "pretrain": params.pretrain.model_copy(update={"epochs": pre_epochs, "max_clips_per_epoch": per_epoch}),
        "train": params.train.model_copy(update={"epochs": train_epochs, "lr_milestones": milestones,
                                                 "max_clips_per_epoch": per_epoch})})

    started = time.perf_counter()
    pretrain.run(params, work / "frames", work / "pretrain")
    init_clusters.run(params, work / "frames", work / "pretrain", work / "init")
    trained = train.run(params, work / "frames", work / "init", work / "train")
    training_s = time.perf_counter() - started
    epochs_clips = (pre_epochs + train_epochs) * (per_epoch or train_clips)
    scored = score.run(params, work / "frames", work / "train", work / "scores.csv")
    scores = read_scores(work / "scores.csv")
    videos = [VideoScores(v.id, store.labels(v), scores[v.id]["scored"], scores[v.id]["anomaly"],
                          scores[v.id]["prediction_error"], scores[v.id]["cluster_distance"])
              for v in store.split(Split.TEST)]
    metrics = evaluate(videos).metrics
    forward_fps = forward_rate(params, work / "train" / CHECKPOINT, store, device)
    histories = [json.loads((work / stage / "history.json").read_text()) for stage in ("pretrain", "train")]
    waits = [r["data_wait_share"] for history in histories for r in history[1:] or history]  # after warm-up
    train_flops = flops_per_clip(build_model(params.model, params.data).to(device),
                                 ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, device)
                                 .batch(torch.arange(1)), backward=True)
    rate = epochs_clips / training_s
    record = {"benchmark": "gpu_check", "date": date.today().isoformat(), **machine(), "device": device_name(device),
              "torch": torch.__version__, "budget_s": args.budget, "schedule_fraction": round(fraction, 4),
              "pretrain_epochs": pre_epochs, "train_epochs": train_epochs, "clips_per_epoch": per_epoch or train_clips,
              "auc_micro": round(metrics["auc_micro"], 4), "auc_macro": round(metrics.get("auc_macro", np.nan), 4),
              "training_s": round(training_s, 1), "train_clips_per_s": round(epochs_clips / training_s, 2),
              "last_epoch_clips_per_s": round(trained.metrics["train_clips_per_s"], 1),
              "data_wait_share_mean": round(float(np.mean(waits)), 4), "data_wait_share_max": round(max(waits), 4),
              "gflop_per_clip_train_step": round(train_flops / 1e9, 2),
              **{f"train_{k}": v for k, v in compute_figures(train_flops, rate, device_name(device)).items()},
              "score_batch": params.score.batch_size,
              "score_frames_per_s": round(scored.metrics["score_frames_per_s"], 1),
              "forward_only_frames_per_s": round(forward_fps, 1),
              "score_share_of_forward": round(scored.metrics["score_frames_per_s"] / forward_fps, 3),
              "peak_host_mb": round(peak_host_mb(), 1), "peak_gpu_mb": peak_gpu_mb(),
              "total_s": round(time.perf_counter() - began, 1)}
    print(json.dumps(record))
    for key in ("auc_micro", "training_s", "train_clips_per_s", "data_wait_share_mean", "train_achieved_tflops",
                "train_share_of_peak", "score_frames_per_s", "forward_only_frames_per_s", "score_share_of_forward",
                "peak_gpu_mb", "total_s"):
        print(f"{key:>26}: {record[key]}")
    out = Path(os.environ["OUT"]) / "benchmarks.jsonl" if os.environ.get("OUT") else JSONL  # $OUT: device runs
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
