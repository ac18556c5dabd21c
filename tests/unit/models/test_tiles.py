"""`data.tile`: the network sees tiles; frames larger than a tile are cut, run as one batch and stitched."""

from __future__ import annotations

import pytest
import torch

from vad.config import DataParams, ModelParams
from vad.errors import ConfigError
from vad.models import build_model
from vad.models.two_stream_ae import _from_tiles, _to_tiles
from vad.scoring import clip_scores


def _network(tile, overlap=False):
    torch.manual_seed(0)
    data = DataParams(image_size=(64, 96), channels=1, tile=tile, tile_overlap=overlap)
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


@pytest.mark.parametrize("overlap", [False, True])
def test_cutting_a_frame_into_tiles_and_stitching_them_gives_the_frame_back(overlap):
    frames = torch.rand(2, 3, 64, 96)
    tiles = _to_tiles(frames, (32, 32), overlap)
    assert tiles.shape == ((2 * 3 * 5, 3, 32, 32) if overlap else (2 * 2 * 3, 3, 32, 32))
    assert torch.equal(_from_tiles(tiles, (3, 5) if overlap else (2, 3), overlap), frames)


def test_overlapping_tiles_give_each_pixel_from_the_tile_it_is_most_central_in():
    model = _network((32, 32), overlap=True)
    clips = torch.rand(2, 5, 1, 64, 96)
    whole = model(clips)
    # Tiles start every 16 pixels; each gives its middle 16 (edge tiles out to the frame's edge). Rows 24..40
    # straddle row 32, a border of abutting tiles; here rows 24..40 x columns 40..56 come from the tile at
    # 16..48 x 32..64, whose middle they are.
    alone = model(clips[..., 16:48, 32:64])
    torch.testing.assert_close(whole.prediction[..., 24:40, 40:56], alone.prediction[..., 8:24, 8:24])
    torch.testing.assert_close(whole.r[..., 3:5, 5:7], alone.r[..., 1:3, 1:3])  # latents: 1/8 of the pixels
    corner = model(clips[..., :32, :32])  # the first tile: out to the frame's edge
    torch.testing.assert_close(whole.prediction[..., :24, :24], corner.prediction[..., :24, :24])
    # Without overlap the same pixels are cut at the tile border: the outputs differ there.
    abutting = _network((32, 32))(clips)
    assert not torch.allclose(abutting.prediction[..., 24:40, 40:56], whole.prediction[..., 24:40, 40:56])
    assert whole.prediction.shape == abutting.prediction.shape and whole.r.shape == abutting.r.shape


def test_overlap_runs_the_network_on_the_pixels_of_every_tile():
    assert _network((32, 32), overlap=True).pixels_per_frame((64, 96)) == 3 * 5 * 32 * 32
    assert _network((32, 32)).pixels_per_frame((64, 96)) == 64 * 96
    assert _network(None).pixels_per_frame((64, 96)) == 64 * 96


def test_overlapping_tiles_need_whole_latent_cells_in_a_quarter_tile(make_params):
    with pytest.raises(ConfigError, match="multiples of 32"):
        make_params(data={"image_size": [96, 96], "tile": [48, 48], "tile_overlap": True})
    assert make_params(data={"image_size": [96, 96], "tile": [48, 48]}).data.tile == (48, 48)
