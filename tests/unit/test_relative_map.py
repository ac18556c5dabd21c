"""The `relative` alarm map: the prediction error over the network's own mean error on normal footage."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from vad.checkpoint import CHECKPOINT, load_checkpoint
from vad.config import DataParams, ModelParams
from vad.data.base import Split
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.errors import ConfigError
from vad.models import build_model, load_trained
from vad.models.two_stream_ae import NORMAL_FLOOR
from vad.scoring import clip_scores, normal_error_map, window_max
from vad.stages import calibrate
from vad.stages.train import NORMAL_MAP_CLIPS, store_normal_error


def _model():
    torch.manual_seed(0)
    model = build_model(ModelParams(width=4, clusters=4), DataParams(image_size=(32, 32), channels=1)).eval()
    torch.nn.init.normal_(model.kmeans.centers, std=0.1)
    return model


def _clips(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.random((n, 5, 1, 32, 32), dtype=np.float32))


def test_the_relative_scores_divide_the_error_map_by_the_floored_normal_map():
    model, clips = _model(), _clips()
    error = clip_scores(model, clips, maps=True)["error_map"]
    normal = torch.linspace(0.0, 1.0, 32 * 32).reshape(32, 32) * error.mean()  # 0 at a corner: the floor holds
    model.set_normal_error(normal)
    floored = normal.clamp_min(NORMAL_FLOOR * float(normal.mean()))
    assert float(model.normal_error.min()) == pytest.approx(NORMAL_FLOOR * float(normal.mean()))
    scores = clip_scores(model, clips)
    torch.testing.assert_close(scores["relative"], (error / floored).mean(dim=(1, 2)))
    grid = tuple(model(clips).r.shape[-2:])  # the latent grid: one cell per 8x8 pixels
    torch.testing.assert_close(scores["relative_window"], window_max(error / floored, grid))
    # the other scores do not depend on it
    model.normal_error = None
    plain = clip_scores(model, clips)
    assert torch.isnan(plain["relative"]).all() and torch.isnan(plain["relative_window"]).all()
    for name in ("fused", "prediction_error", "cluster_distance", "prediction_window"):
        torch.testing.assert_close(plain[name], scores[name])


def test_the_normal_map_is_the_mean_error_map_of_evenly_spaced_clips(trained, params):
    store = FrameStore.open(trained["frames"])
    clips = ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, torch.device("cpu"),
                                  holdout_share=params.detect.holdout_share)
    model = load_trained(trained["train"] / CHECKPOINT).model
    every = torch.stack([clip_scores(model, clips.batch(torch.tensor([i])), maps=True)["error_map"][0]
                         for i in range(len(clips))])
    torch.testing.assert_close(normal_error_map(model, clips, len(clips) + 5, batch_size=3), every.mean(dim=0))
    # two clips: the first and the last
    torch.testing.assert_close(normal_error_map(model, clips, 2, batch_size=8), every[[0, -1]].mean(dim=0))


def test_vad_train_stores_the_map_when_the_params_ask_for_it(trained, params, tmp_path):
    store = FrameStore.open(trained["frames"])
    clips = ClipSource.from_split(store, Split.TRAIN, params.data.clip_len, torch.device("cpu"),
                                  holdout_share=params.detect.holdout_share)
    shutil.copytree(trained["train"], tmp_path / "train")
    checkpoint = tmp_path / "train" / CHECKPOINT
    relative = params.model_copy(update={"detect": params.detect.model_copy(update={"map": "relative"})})
    store_normal_error(load_trained(checkpoint).model, clips, checkpoint, relative)
    stored = load_checkpoint(checkpoint)["normal_error"]
    expected = normal_error_map(load_trained(trained["train"] / CHECKPOINT).model, clips, NORMAL_MAP_CLIPS,
                                params.train.batch_size)
    torch.testing.assert_close(stored, expected)
    loaded = load_trained(checkpoint).model
    torch.testing.assert_close(loaded.normal_error, expected.clamp_min(NORMAL_FLOOR * float(expected.mean())))
    # the weights are untouched, and another map takes it out again
    original, written = load_checkpoint(trained["train"] / CHECKPOINT), load_checkpoint(checkpoint)
    assert all(torch.equal(value, original["model"][name]) for name, value in written["model"].items())
    store_normal_error(loaded, clips, checkpoint, params)
    assert "normal_error" not in load_checkpoint(checkpoint)
    assert load_trained(checkpoint).model.normal_error is None


def test_calibrating_the_relative_map_of_a_model_without_one_is_one_clear_error(trained, params, tmp_path):
    relative = params.model_copy(update={"detect": params.detect.model_copy(update={"map": "relative"})})
    with pytest.raises(ConfigError, match="re-run `vad train` with detect.map: relative") as error:
        calibrate.run(relative, trained["frames"], trained["train"], tmp_path / "calibration.json")
    assert "\n" not in str(error.value) and not (tmp_path / "calibration.json").exists()
