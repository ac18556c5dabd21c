"""`stream_scores`: causal per-frame scores, the offline scorer's frame for frame, whatever the batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vad import scoring
from vad.allocator import MMAP_THRESHOLD
from vad.config import DataParams, ModelParams
from vad.models import build_model
from vad.scoring import clip_scores, cpu_chunk, score_frames, stream_scores, window_max


def _model():
    torch.manual_seed(0)
    model = build_model(ModelParams(width=4, clusters=4), DataParams(image_size=(32, 32), channels=1)).eval()
    torch.nn.init.normal_(model.kmeans.centers, std=0.1)
    return model


def _frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, 32, 1), dtype=np.uint8) for _ in range(n)]


def test_frame_by_frame_scores_equal_the_offline_batched_scores():
    model, frames = _model(), _frames(23)
    seen, offline = score_frames(model, iter(frames), 5, 8, True, torch.device("cpu"))
    for batch in (1, 3, 64):
        streamed = list(stream_scores(model, iter(frames), 5, batch, True, torch.device("cpu")))
        assert [number for number, _ in streamed] == list(range(4, 23))  # frame t ends the clip t-4..t
        for name, column in offline.items():
            # the same clips through the same network in batches of other sizes: float32 rounding only
            np.testing.assert_allclose([values[name] for _, values in streamed], column, rtol=1e-5)


@pytest.mark.parametrize(("width", "size", "chunk"), [(8, (64, 64), 64), (8, (256, 256), 4), (32, (64, 64), 16),
                                                      (8, (2048, 2048), 1)])
def test_cpu_chunks_keep_the_widest_activation_within_half_the_mmap_threshold(width, size, chunk):
    model = build_model(ModelParams(width=width, clusters=4), DataParams(image_size=size, channels=1))
    assert cpu_chunk(model, size) == chunk
    # 2 x width float32 channels per clip at full resolution: half the threshold, unless one clip is more
    assert chunk == 1 or chunk * 2 * width * size[0] * size[1] * 4 <= MMAP_THRESHOLD // 2


def test_a_batch_larger_than_the_cpu_chunk_is_scored_in_chunks_with_the_same_scores(monkeypatch):
    model, frames = _model(), _frames(12)
    clips = torch.from_numpy(np.stack([np.stack(frames[i:i + 5]) for i in range(8)])).permute(0, 1, 4, 2, 3) / 255.0
    whole = clip_scores(model, clips, True, maps=True)
    per_clip = 2 * 4 * 32 * 32 * 4  # bytes of the widest activation of one 32x32 clip at width 4
    monkeypatch.setattr(scoring, "MMAP_THRESHOLD", 2 * 3 * per_clip)  # a chunk of 3 clips
    sizes = []
    model.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
    chunked = clip_scores(model, clips, True, maps=True)
    assert sizes == [3, 3, 2]
    assert chunked.keys() == whole.keys()
    for name, values in whole.items():
        # the same clips through the same network in smaller batches: float32 rounding only
        np.testing.assert_allclose(chunked[name].numpy(), values.numpy(), rtol=1e-5, err_msg=name)


def test_a_gap_starts_a_new_run_of_frames():
    model, frames = _model(), _frames(16)
    streamed = list(stream_scores(model, [*frames[:7], None, *frames[7:]], 5, 1, True, torch.device("cpu")))
    # frames 0-6 end clips at 4..6; after the gap, frames 7..15 end clips at 11..15 only
    assert [number for number, _ in streamed] == [4, 5, 6, 11, 12, 13, 14, 15]
    after = dict(stream_scores(model, iter(frames[7:]), 5, 1, True, torch.device("cpu")))
    for number, values in streamed[3:]:
        assert values["fused"] == after[number - 7]["fused"]  # nothing from before the gap enters a clip


def test_the_score_of_a_frame_does_not_depend_on_later_frames():
    model, frames = _model(), _frames(20)
    full = dict(stream_scores(model, iter(frames), 5, 1, True, torch.device("cpu")))
    cut = dict(stream_scores(model, iter(frames[:12]), 5, 1, True, torch.device("cpu")))
    assert all(cut[t]["fused"] == full[t]["fused"] for t in cut)


def _window_by_loops(pixels, grid):
    (height, width), (rows, cols) = pixels.shape, grid
    ch, cw = height // rows, width // cols
    kh, kw = ch * min(2, rows), cw * min(2, cols)
    return max(pixels[y:y + kh, x:x + kw].mean() for y in range(0, height - kh + 1, ch)
               for x in range(0, width - kw + 1, cw))


@pytest.mark.parametrize("grid", [(4, 4), (4, 2), (1, 4)])
def test_window_max_is_the_largest_mean_over_2x2_cells_moved_one_cell_at_a_time(grid):
    pixels = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = window_max(pixels, grid)
    expected = [_window_by_loops(p.numpy(), grid) for p in pixels]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_an_object_of_one_cell_s_size_anywhere_lies_wholly_in_a_window():
    # 16 x 16 map, 4 x 4 cells: a 4 x 4 object is wholly inside some 8 x 8 window wherever it lies, so the
    # score is its mass over the window's area (16 / 64), never split as it would be between single cells
    for y in range(13):
        for x in range(13):
            pixels = torch.zeros(1, 16, 16, dtype=torch.float64)
            pixels[0, y:y + 4, x:x + 4] = 1.0
            assert window_max(pixels, (4, 4)).item() == pytest.approx(0.25)
