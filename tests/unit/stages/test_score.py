import csv

import numpy as np
import pytest
import torch

from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.stages import score


def test_clip_ending_at_frame_t_scores_frame_t_and_first_frames_are_unscored(trained, params, monkeypatch, tmp_path):
    store = FrameStore.open(trained["frames"])
    # Stand-in scores: the mean pixel of the clip's last frame, so each row reveals which clip scored it.
    def last_frame_mean(model, clips, use_clusters=True):
        value = clips[:, -1].mean(dim=(1, 2, 3)).double()
        return {"fused": value, "prediction_error": value, "cluster_distance": value}

    monkeypatch.setattr(score, "clip_scores", last_frame_mean)
    out = tmp_path / "scores.csv"
    score.run(params, trained["frames"], trained["train"], out)
    rows = list(csv.DictReader(out.open()))
    T = params.data.clip_len
    for video in store.split("test"):
        frames = np.asarray(store.frames(video), dtype=np.float64) / 255.0
        mine = [r for r in rows if r["video"] == video.id]
        assert [int(r["frame"]) for r in mine] == list(range(video.frames))
        for r in mine[: T - 1]:
            assert r["scored"] == "0" and r["anomaly"] == r["fused"] == r["prediction_error"] == ""
        for r in mine[T - 1:]:
            t = int(r["frame"])
            assert r["scored"] == "1"
            assert float(r["prediction_error"]) == pytest.approx(frames[t].mean(), abs=1e-6)


def test_clip_source_clip_i_covers_frames_i_to_i_plus_t_minus_1(trained):
    store = FrameStore.open(trained["frames"])
    video = store.split("test")[0]
    clips = ClipSource(store, [video], clip_len=5)
    assert len(clips) == video.frames - 4
    batch = clips.batch(torch.tensor([0, 7]))
    frames = torch.from_numpy(np.array(store.frames(video))).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(batch[0], frames[0:5]) and torch.equal(batch[1], frames[7:12])


def test_scores_file_has_documented_columns_and_normalised_anomaly(trained):
    rows = list(csv.DictReader(trained["scores"].open()))
    assert tuple(rows[0]) == score.HEADER
    scored = [r for r in rows if r["scored"] == "1"]
    anomaly = np.array([float(r["anomaly"]) for r in scored])
    assert anomaly.min() >= 0 and anomaly.max() <= 1
    for video in {r["video"] for r in scored}:
        values = [float(r["anomaly"]) for r in scored if r["video"] == video]
        assert min(values) == 0.0 and max(values) == 1.0  # per-video min-max normalisation
    fused = np.array([float(r["fused"]) for r in scored])
    product = np.array([float(r["prediction_error"]) * float(r["cluster_distance"]) for r in scored])
    assert (fused > 0).all() and np.isfinite(product).all()


def test_bf16_channels_last_scoring_matches_float32(trained, params, tmp_path):
    # The GPU fast path (perf.amp bf16, channels_last), run on the CPU: only the network runs in bf16.
    from vad.config import PerfParams

    fast = params.model_copy(update={"perf": PerfParams(amp="bf16", channels_last=True)})
    score.run(fast, trained["frames"], trained["train"], tmp_path / "scores.csv")
    plain = [r for r in csv.DictReader(trained["scores"].open()) if r["scored"] == "1"]
    bf16 = [r for r in csv.DictReader((tmp_path / "scores.csv").open()) if r["scored"] == "1"]
    assert [(r["video"], r["frame"]) for r in bf16] == [(r["video"], r["frame"]) for r in plain]
    for column in ("prediction_error", "cluster_distance", "fused"):
        a = np.array([float(r[column]) for r in plain])
        b = np.array([float(r[column]) for r in bf16])
        assert not np.array_equal(a, b), column  # it did run another path
        np.testing.assert_allclose(b, a, rtol=0.05, err_msg=column)
