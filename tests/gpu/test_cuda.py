"""The CUDA paths, on a machine with a GPU: `python -m pytest -m gpu tests/gpu` (deselected by default).

The CPU suite checks these paths' decisions and their CPU twins; here they run on the device: frames held
on the GPU and staged through pinned memory by loader processes, bf16 autocast + channels_last + fused
Adam in training and scoring, the CUDA-event data clock.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from vad.config import PerfParams
from vad.data.clips import ClipSource, to_model_input
from vad.data.store import FrameStore
from vad.training import fit, resolve_runtime

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")


def test_model_input_is_the_same_on_cuda_as_on_the_cpu():
    # every uint8 value; CUDA's division by a Python number (x * (1 / 255)) was one bit off for 126 of them
    frames = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16, 1)
    assert torch.equal(to_model_input(frames.to(CUDA)).cpu(), to_model_input(frames))


def test_device_held_and_loader_staged_batches_equal_the_cpu_ones(params, frame_store):
    store = FrameStore.open(frame_store)
    cpu = ClipSource.from_split(store, "train", params.data.clip_len)
    held = ClipSource.from_split(store, "train", params.data.clip_len, CUDA)
    staged = ClipSource.from_split(store, "train", params.data.clip_len, CUDA, resident=False)
    assert held.resident and held.frames.is_cuda and not staged.resident
    index_batches = list(torch.randperm(len(cpu), generator=torch.Generator().manual_seed(0)).split(9))
    for indices, batch in zip(index_batches, staged.iter_batches(index_batches), strict=True):
        expected = cpu.batch(indices)
        assert batch.is_cuda and torch.equal(batch.cpu(), expected)
        assert torch.equal(held.batch(indices.to(held.index_device)).cpu(), expected)


def test_fast_path_training_steps_on_cuda_follow_the_cpu_ones(params, frame_store, pretrain_steps):
    runtime = resolve_runtime(CUDA, PerfParams())
    assert runtime.channels_last and runtime.fused_adam
    # perf auto: the fast path on CUDA (bf16 autocast where the GPU has it), the plain one on the CPU; the
    # losses agree to bf16 precision over a few steps.
    gpu, _ = pretrain_steps(params, frame_store, {}, "cuda")
    cpu, _ = pretrain_steps(params, frame_store, {}, "cpu")
    np.testing.assert_allclose(gpu, cpu, rtol=3e-2 if runtime.amp_dtype is not None else 1e-3)


def test_data_clock_on_cuda_reports_a_share(params, frame_store, tmp_path):
    clips = ClipSource.from_split(FrameStore.open(frame_store), "train", params.data.clip_len, CUDA)
    model = torch.nn.Linear(1, 1).to(CUDA)

    def step(batch: torch.Tensor, loss_scale: float) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.conv2d(batch.flatten(0, 1), torch.ones(8, batch.shape[2], 3, 3,
                                                                                   device=CUDA)).mean()}

    history = fit(model, clips, step, epochs=1, batch_size=8, seed=0, checkpoint_path=tmp_path / "c.pt", key="k",
                  optimizers={})
    assert 0.0 < history[0]["data_wait_share"] < 1.0


def test_cuda_scoring_in_bf16_matches_the_cpu_scores(params, frame_store, tmp_path):
    # A model trained on the CPU (not the `trained` fixture: its evaluate stage needs matplotlib, which the
    # GPU machines lack), scored on both devices.
    from vad.stages import init_clusters, pretrain, score, train

    # detect.map relative: the checkpoint carries the normal error map, and the relative scores are compared too
    params = params.model_copy(update={"detect": params.detect.model_copy(update={"map": "relative"})})
    pretrain.run(params, frame_store, tmp_path / "pretrain")
    init_clusters.run(params, frame_store, tmp_path / "pretrain", tmp_path / "init")
    train.run(params, frame_store, tmp_path / "init", tmp_path / "train")
    score.run(params, frame_store, tmp_path / "train", tmp_path / "cpu.csv")
    score.run(params.model_copy(update={"device": "cuda"}), frame_store, tmp_path / "train", tmp_path / "gpu.csv")
    rows = {k: [r for r in csv.DictReader((tmp_path / f"{k}.csv").open()) if r["scored"] == "1"]
            for k in ("cpu", "gpu")}
    assert len(rows["gpu"]) == len(rows["cpu"]) > 0
    for column in ("prediction_error", "cluster_distance", "fused", "relative"):
        np.testing.assert_allclose([float(r[column]) for r in rows["gpu"]], [float(r[column]) for r in rows["cpu"]],
                                   rtol=5e-2, err_msg=column)
