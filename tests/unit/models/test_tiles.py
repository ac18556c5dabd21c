"""`data.tile`: the network sees tiles; frames larger than a tile are cut, run as one batch and stitched."""

from __future__ import annotations

import pytest
import torch

from vad.config import DataParams, ModelParams
from vad.errors import ConfigError
from vad.models import build_model
from vad.scoring import clip_scores


def _network(tile):
    torch.manual_seed(0)
    data = DataParams(image_size=(64, 96), channels=1, tile=tile)
    model = build_model(ModelParams(width=4, clusters=4), data).eval()
    torch.nn.init.normal_(model.kmeans.centers, std=0.1)
    return model


def test_a_tiled_frame_gives_the_outputs_of_its_tiles_stitched_in_place():
    model = _network((32, 32))
    clips = torch.rand(2, 5, 1, 64, 96)
    whole = model(clips)
    for row in range(2):
        for col in range(3):
            window = (slice(None), slice(None), slice(None), slice(32 * row, 32 * row + 32),
                      slice(32 * col, 32 * col + 32))
            alone = model(clips[window])
            # the same convolutions on the same tile, in a batch of another size: float rounding only
            torch.testing.assert_close(whole.prediction[window[0], :, window[3], window[4]], alone.prediction)
            torch.testing.assert_close(whole.r[:, :, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4], alone.r)
    assert torch.equal(whole.target, clips[:, -1]) and torch.equal(whole.f0, clips[:, 0])
    assert whole.r.shape == (2, 64, 8, 12)


def test_a_tiled_network_scores_whole_frames_as_the_mean_of_its_tiles():
    model = _network((32, 32))
    clips = torch.rand(3, 5, 1, 64, 96)
    whole = clip_scores(model, clips)
    tiles = [clip_scores(model, clips[..., 32 * r : 32 * r + 32, 32 * c : 32 * c + 32])
             for r in range(2) for c in range(3)]
    for name in ("prediction_error", "cluster_distance"):
        torch.testing.assert_close(whole[name], torch.stack([t[name] for t in tiles]).mean(0))
    torch.testing.assert_close(1 / whole["fused"], torch.stack([1 / t["fused"] for t in tiles]).mean(0))


def test_the_attention_grid_is_that_of_the_tile():
    attention = _network((32, 32)).motion.encoder.attention[0]
    assert attention.grid == (2, 2)
    assert _network(None).motion.encoder.attention[0].grid == (4, 6)


def test_without_a_tile_the_network_is_the_whole_frame_one():
    clips = torch.rand(1, 5, 1, 64, 96)
    whole, untiled = _network(None), _network((64, 96))
    untiled.load_state_dict(whole.state_dict())
    assert torch.equal(whole(clips).prediction, untiled(clips).prediction)


def test_frames_that_are_not_whole_tiles_are_refused():
    with pytest.raises(ValueError, match="not a whole number of 32x32 tiles"):
        _network((32, 32))(torch.rand(1, 5, 1, 48, 96))


@pytest.mark.parametrize("tile, words", [((64, 64), "does not tile image_size"), ((40, 32), "multiple of 16")])
def test_a_tile_that_does_not_fit_the_frame_is_one_config_error(make_params, tile, words):
    with pytest.raises(ConfigError, match=words):
        make_params(data={"image_size": [96, 96], "tile": list(tile)})


def test_a_square_tile_may_be_given_as_one_number():
    assert DataParams(image_size=256, tile=128).tile == (128, 128)
