import csv

import numpy as np
import pytest
import torch

from vad import scoring
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.scores_csv import COLUMNS, RAW_SCORES
from vad.stages import score


def test_clip_ending_at_frame_t_scores_frame_t_and_first_frames_are_unscored(trained, params, monkeypatch, tmp_path):
    store = FrameStore.open(trained["frames"])
    # Stand-in scores: the mean pixel of the clip's last frame, so each row reveals which clip scored it.
    def last_frame_mean(model, clips, use_clusters=True):
        value = clips[:, -1].mean(dim=(1, 2, 3)).double()
        return {name: value for name in RAW_SCORES}

    monkeypatch.setattr(scoring, "clip_scores", last_frame_mean)
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


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_store_batches_span_videos_and_hold_every_clip_once_in_order(trained, batch_size):
    store = FrameStore.open(trained["frames"])
    videos = store.split("test")
    expected = ClipSource(store, videos, clip_len=5)
    windows = list(scoring._store_windows(store, videos, 5, batch_size, pin=False))
    got = torch.cat(list(scoring._clips(windows, 5, torch.device("cpu"))))
    assert torch.equal(got, expected.batch(torch.arange(len(expected))))
    assert [len(starts) for _, starts in windows[:-1]] == [batch_size] * (len(windows) - 1)
    # Frames are read once per clip, plus T - 1 per piece of a video in a batch: not T per clip.
    assert sum(len(frames) for frames, _ in windows) <= len(expected) + 4 * (len(windows) + len(videos) - 1)


def test_scores_file_has_documented_columns_and_normalised_anomaly(trained):
    rows = list(csv.DictReader(trained["scores"].open()))
    assert tuple(rows[0]) == COLUMNS
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


def _rows(path, video=None):
    return [r for r in csv.DictReader(path.open()) if video is None or r["video"] == video]


def test_scoring_a_video_file_matches_scoring_its_frame_store(trained, params, raw_dataset, tmp_path):
    # Same decoder and resize as `vad extract`, so the frames and therefore the scores are the same; the
    # small batch makes the video path cross several chunk boundaries (which share clip_len - 1 frames).
    small = params.model_copy(update={"score": params.score.model_copy(update={"batch_size": 7})})
    videos = sorted((raw_dataset / "test").glob("*.avi"))
    score.run_videos(small, videos, trained["train"], tmp_path / "scores.csv")
    for video in videos:
        direct = _rows(tmp_path / "scores.csv", video.stem)
        stored = _rows(trained["scores"], f"test_{video.stem}")
        assert len(direct) == len(stored) > 0
        assert [r["scored"] for r in direct] == [r["scored"] for r in stored]
        for a, b in zip(direct, stored, strict=True):
            for column in ("anomaly", "fused", "prediction_error", "cluster_distance"):
                assert (a[column] == b[column] == "") or float(a[column]) == pytest.approx(float(b[column]),
                                                                                          rel=1e-4, abs=1e-6)


def test_scoring_a_video_shorter_than_a_clip_fails_in_one_line(trained, params, tmp_path):
    import cv2

    from vad.errors import DataError

    path = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    for value in (10, 200, 30):
        writer.write(np.full((32, 32, 3), value, np.uint8))
    writer.release()
    with pytest.raises(DataError, match=r"short.avi has 3 frames, fewer than the clip length 5") as error:
        score.run_videos(params, [path], trained["train"], tmp_path / "scores.csv")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "scores.csv").exists()  # nothing half-written


def test_prefetch_overlaps_the_producer_and_hands_over_its_error():
    from vad.data.decode import prefetch

    def items():
        yield from range(3)
        raise ValueError("frame 3 is corrupt")

    got = []
    with pytest.raises(ValueError, match="frame 3 is corrupt"):
        for item in prefetch(items(), depth=2):
            got.append(item)
    assert got == [0, 1, 2]
    stream = prefetch(iter(range(1000)), depth=4)
    assert next(stream) == 0
    stream.close()  # a consumer that stops early stops the producer thread (close joins it)


def test_the_network_comes_from_the_checkpoint_not_from_the_params(trained, params, raw_dataset, tmp_path):
    """Params of another network and geometry (as in a folder without the training params.yaml) score the same."""
    other = params.model_copy(update={
        "model": params.model.model_copy(update={"width": 16, "clusters": 9, "motion_decoder": "wide"}),
        "data": params.data.model_copy(update={"image_size": (64, 64), "channels": 3}),
    })
    videos = sorted((raw_dataset / "test").glob("*.avi"))[:1]
    score.run_videos(params, videos, trained["train"], tmp_path / "a.csv")
    score.run_videos(other, videos, trained["train"], tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_a_store_of_another_geometry_than_the_model_is_one_line(trained, params, raw_dataset, tmp_path):
    from vad.errors import ConfigError
    from vad.stages import extract

    extract.run(params.data.model_copy(update={"image_size": (48, 48)}), raw_dataset, tmp_path / "frames")
    with pytest.raises(ConfigError, match=r"holds 48x48 frames with 1 channel\(s\); the model in .* was trained on "
                                          r"32x32 with 1") as error:
        score.run(params, tmp_path / "frames", trained["train"], tmp_path / "scores.csv")
    assert "\n" not in str(error.value) and not (tmp_path / "scores.csv").exists()


def test_the_progress_bar_changes_no_score(trained, params, capsys):
    import numpy as np
    import torch

    from vad.data.base import Split
    from vad.data.store import FrameStore
    from vad.models import load_trained
    from vad.scoring import score_store

    store = FrameStore.open(trained["frames"])
    model = load_trained(trained["train"] / "checkpoint.pt").model.eval()
    videos = store.split(Split.TEST)
    with torch.no_grad():
        plain, shown = (score_store(model, store, videos, params.data.clip_len, 16, True, torch.device("cpu"),
                                    progress=progress) for progress in (False, True))
    assert plain.keys() == shown.keys() and all(np.array_equal(plain[k], shown[k], equal_nan=True) for k in plain)
    total = sum(v.frames - params.data.clip_len + 1 for v in videos)
    assert f"/{total} [" in capsys.readouterr().err  # the bar ran, counting clips


def test_score_cluster_distance_overrides_the_map_the_model_was_trained_with(trained, params, tmp_path):
    import torch.nn.functional as F

    from vad.checkpoint import CHECKPOINT
    from vad.models import load_trained

    euclidean = params.model_copy(update={"score": params.score.model_copy(update={"cluster_distance": "euclidean"})})
    score.run(euclidean, trained["frames"], trained["train"], tmp_path / "scores.csv")
    model = load_trained(trained["train"] / CHECKPOINT).model
    assert model.kmeans.distance == "squared"  # trained with the paper's map; only scoring changes
    store = FrameStore.open(trained["frames"])
    video = store.split("test")[0]
    with torch.no_grad():
        out = model(ClipSource(store, [video], clip_len=params.data.clip_len).batch(torch.arange(3)))
        error = (out.target - out.prediction).pow(2).mean(dim=1)
        distance = model.kmeans._distances(out.r)
        unsquared = (torch.softmax(-model.kmeans.alpha * distance, dim=-1) * distance).sum(-1)
        upsampled = F.interpolate(unsquared[:, None], size=error.shape[-2:], mode="nearest")[:, 0]
    expected = (1.0 / (error * upsampled).mean(dim=(1, 2))).numpy()
    switched = [r for r in _rows(tmp_path / "scores.csv", video.id) if r["scored"] == "1"][:3]
    default = [r for r in _rows(trained["scores"], video.id) if r["scored"] == "1"][:3]
    np.testing.assert_allclose([float(r["fused"]) for r in switched], expected, rtol=1e-5)
    assert [r["prediction_error"] for r in switched] == [r["prediction_error"] for r in default]
    assert all(float(a["fused"]) != float(b["fused"]) for a, b in zip(switched, default, strict=True))
