"""The two-stream autoencoder: a spatial AE on the first frame and a motion U-Net AE on frame differences."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vad.models.blocks import DownBlock, UpBlock, VarianceAttention, conv3x3
from vad.models.kmeans_head import DeepKMeansHead

__all__ = ["Encoder", "SpatialAE", "MotionAE", "TwoStreamAE", "Outputs"]


class Encoder(nn.Module):
    """Stem conv, three ResNet down blocks (w -> 2w -> 4w -> 8w) and a 3x3 projection.

    Args:
        in_channels: Input channels (C for the spatial stream, (T-1)*C for the motion stream).
        width: Stem channels w.
        batchnorm: BatchNorm between the blocks (spatial stream only).
        attention_grid: Grid of the variance attention after each block; None disables it.
        relu_head: ReLU after the projection (spatial stream only).
    """

    def __init__(self, in_channels: int, width: int, *, batchnorm: bool,
                 attention_grid: tuple[int, int] | None, relu_head: bool) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = conv3x3(in_channels, width)
        self.blocks = nn.ModuleList(DownBlock(a, b) for a, b in zip(widths, widths[1:], strict=False))
        # BatchNorm sits between blocks, none inside them (Sec. 3.1).
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(c) if batchnorm and i < 2 else nn.Identity() for i, c in enumerate(widths[1:])
        )
        self.attention = nn.ModuleList(
            VarianceAttention(c, attention_grid) if attention_grid else nn.Identity() for c in widths[1:]
        )
        self.head = conv3x3(widths[-1], widths[-1])
        self.relu_head = relu_head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, Cin, H, W) -> latent z (B, 8w, H/8, W/8), L1-normalised over channels, and the skips."""
        x = F.leaky_relu(self.stem(x), 0.2)
        skips = []
        for block, norm, attention in zip(self.blocks, self.norms, self.attention, strict=True):
            x = attention(block(x))
            skips.append(x)
            x = norm(x)
        z = self.head(x)
        if self.relu_head:
            z = F.relu(z)
        return F.normalize(z, p=1, dim=1), skips


class SpatialAE(nn.Module):
    """Reconstructs the first frame f0 of a clip (Eq. 1-3)."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.encoder = Encoder(channels, width, batchnorm=True, attention_grid=None, relu_head=True)
        self.decoder = nn.Sequential(UpBlock(8 * width, 8 * width), UpBlock(8 * width, 4 * width),
                                     UpBlock(4 * width, 2 * width), conv3x3(2 * width, channels))

    def forward(self, f0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> (f0_hat (B, C, H, W), z_a (B, 8w, H/8, W/8))."""
        z, _ = self.encoder(f0)
        return self.decoder(z), z


class MotionAE(nn.Module):
    """U-Net predicting d = f_{T-1} - f_0 from the first T-1 frames (Eq. 4-6).

    Args:
        decoder: "authors" (the authors' `UResDecoder`): the decoder starts from the latent z_m alone and is
            4w-2w-2w wide, the block outputs at 1/4 and 1/2 resolution concatenated as skips, so every
            prediction passes through z_m, the latent the cluster head reads. "wide" (this product before
            2026-12-02): z_m concatenated with the block output at 1/8 too, 8w-4w-2w wide, 2.2x the FLOPs.
    """

    def __init__(self, channels: int, width: int, inputs: int, attention_grid: tuple[int, int] | None,
                 decoder: str = "authors") -> None:
        super().__init__()
        self.encoder = Encoder(inputs * channels, width, batchnorm=False, attention_grid=attention_grid,
                               relu_head=False)
        # Each up block takes the upsampled features concatenated with the skip of matching resolution.
        if decoder == "authors":
            self.skip_latent_level = False
            self.up = nn.ModuleList([UpBlock(8 * width, 4 * width), UpBlock(8 * width, 2 * width),
                                     UpBlock(4 * width, 2 * width)])
        elif decoder == "wide":
            self.skip_latent_level = True
            self.up = nn.ModuleList([UpBlock(16 * width, 8 * width), UpBlock(12 * width, 4 * width),
                                     UpBlock(6 * width, 2 * width)])
        else:
            raise ValueError(f"motion decoder must be 'authors' or 'wide', got {decoder!r}")
        self.out = conv3x3(2 * width, channels)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T-1, C, H, W) -> (d_hat (B, C, H, W), z_m (B, 8w, H/8, W/8))."""
        z, skips = self.encoder(frames.flatten(1, 2))
        skips = skips[::-1] if self.skip_latent_level else [None, *skips[1::-1]]
        x = z
        for up, skip in zip(self.up, skips, strict=True):
            x = up(x if skip is None else torch.cat([x, skip], dim=1))
        return self.out(x), z


@dataclass
class Outputs:
    """What the network computes for a batch of clips; absent streams are None.

    Attributes:
        target: The frame the prediction is compared with: f_{T-1}, or f0 without the motion stream.
        prediction: f0_hat + d_hat (or its single-stream counterpart), (B, C, H, W).
        r: L2-normalised concatenated latents (B, D, h, w).
    """

    f0: torch.Tensor
    d: torch.Tensor
    f0_hat: torch.Tensor | None
    d_hat: torch.Tensor | None
    target: torch.Tensor
    prediction: torch.Tensor
    r: torch.Tensor


def _tile_starts(size: int, tile: int, overlap: bool) -> list[int]:
    """Where the tiles of one frame side start: every `tile` pixels, or every half tile with `overlap`."""
    return list(range(0, size - tile + 1, tile // 2 if overlap else tile))


def _to_tiles(x: torch.Tensor, tile: tuple[int, int], overlap: bool = False) -> torch.Tensor:
    """(B, ..., H, W) -> (B * nh * nw, ..., th, tw): each frame cut into tiles, row by row."""
    (th, tw), (height, width) = tile, x.shape[-2:]
    tiles = [x[..., y:y + th, x0:x0 + tw] for y in _tile_starts(height, th, overlap)
             for x0 in _tile_starts(width, tw, overlap)]
    return torch.stack(tiles, dim=1).flatten(0, 1)


def _keep(count: int, side: int) -> list[slice]:
    """The part of each of `count` overlapping tiles (of `side` output cells) that goes into the stitched frame.

    The tiles lie at half a tile's stride: the middle half of each, and out to the frame's edge for the first
    and the last tile, so every cell comes from the tile it lies most central in.
    """
    margin = side // 4
    return [slice(0 if i == 0 else margin, side if i == count - 1 else side - margin) for i in range(count)]


def _from_tiles(x: torch.Tensor, grid: tuple[int, int], overlap: bool = False) -> torch.Tensor:
    """Inverse of `_to_tiles` for a (B * nh * nw, C, th, tw) tensor and grid (nh, nw): (B, C, H, W)."""
    (tiles, channels, th, tw), (nh, nw) = x.shape, grid
    x = x.reshape(tiles // (nh * nw), nh, nw, channels, th, tw)
    if not overlap:  # a reshape: the tiles abut
        return x.permute(0, 3, 1, 4, 2, 5).reshape(tiles // (nh * nw), channels, nh * th, nw * tw)
    rows, cols = _keep(nh, th), _keep(nw, tw)
    return torch.cat([torch.cat([x[:, i, j, :, rows[i], cols[j]] for j in range(nw)], dim=-1) for i in range(nh)],
                     dim=-2)


# The relative map's denominator is floored at this share of its frame mean: a pixel the network never errs on
# (saturated, say) must not divide by about zero.
NORMAL_FLOOR = 0.01


class TwoStreamAE(nn.Module):
    """Spatial AE + motion AE + deep K-means head, with the paper's ablation switches.

    With `tile`, the network is built for tiles of that size (the attention grid is tile / 16): a clip as
    large as a tile goes through as it is (training takes random crops of that size), a larger one is cut
    into tiles that go through as one batch, and every output is stitched back to the clip's frame size.
    With `tile_overlap`, the tiles overlap by half and each output cell comes from the tile it is most central
    in, so no cell next to an inner tile border is predicted from zero padding.

    `normal_error` is not a weight: the mean prediction-error map (H, W) of the trained network on its training
    footage, floored (`set_normal_error`), that the `relative` scores divide by; None until set.
    """

    def __init__(self, *, channels: int, clip_len: int, image_size: tuple[int, int], width: int,
                 appearance: bool = True, motion: bool = True, attention: bool = True,
                 clusters: int = 32, alpha: float = 25.0, motion_decoder: str = "authors",
                 tile: tuple[int, int] | None = None, cluster_distance: str = "squared",
                 cluster_reduction: str = "sum", tile_overlap: bool = False) -> None:
        super().__init__()
        if not (appearance or motion):
            raise ValueError("at least one stream is needed")
        self.tile = tuple(tile) if tile is not None else None
        self.tile_overlap = tile_overlap
        window = self.tile or image_size
        grid = (window[0] // 16, window[1] // 16) if attention else None
        self.clip_len, self.width = clip_len, width
        self.spatial = SpatialAE(channels, width) if appearance else None
        self.motion = MotionAE(channels, width, clip_len - 1, grid, motion_decoder) if motion else None
        latent = 8 * width * (int(appearance) + int(motion))
        self.kmeans = DeepKMeansHead(clusters, latent, alpha, cluster_distance, cluster_reduction)
        self.normal_error: torch.Tensor | None = None

    def set_normal_error(self, mean_error: torch.Tensor) -> None:
        """Keep the mean prediction-error map on normal footage (H, W), floored at NORMAL_FLOOR of its mean."""
        mean_error = mean_error.float()
        self.normal_error = mean_error.clamp_min(NORMAL_FLOOR * float(mean_error.mean()))

    def forward(self, clip: torch.Tensor) -> Outputs:
        """clip: (B, T, C, H, W) floats in [0, 1]."""
        size = tuple(clip.shape[-2:])
        if self.tile is None or size == self.tile:
            return self._forward(clip)
        if any(side % tile for side, tile in zip(size, self.tile, strict=True)):
            raise ValueError(f"frames of {size[0]}x{size[1]} are not a whole number of {self.tile[0]}x{self.tile[1]} "
                             "tiles")
        grid = tuple(len(_tile_starts(side, tile, self.tile_overlap))
                     for side, tile in zip(size, self.tile, strict=True))
        tiled = self._forward(_to_tiles(clip, self.tile, self.tile_overlap))
        return Outputs(**{name: None if value is None else _from_tiles(value, grid, self.tile_overlap)
                          for name, value in vars(tiled).items()})

    def pixels_per_frame(self, size: tuple[int, int]) -> int:
        """Pixels the network runs on for one frame of `size`: more than the frame's with overlapping tiles."""
        if self.tile is None or tuple(size) == self.tile:
            return size[0] * size[1]
        return math.prod(len(_tile_starts(side, tile, self.tile_overlap)) * tile
                         for side, tile in zip(size, self.tile, strict=True))

    def _forward(self, clip: torch.Tensor) -> Outputs:
        f0, last = clip[:, 0], clip[:, -1]
        d = last - f0
        f0_hat = z_a = d_hat = z_m = None
        if self.spatial is not None:
            f0_hat, z_a = self.spatial(f0)
        if self.motion is not None:
            d_hat, z_m = self.motion(clip[:, :-1])
        if d_hat is None:
            # Appearance only: the score is the reconstruction error of f0 itself.
            target, prediction = f0, f0_hat
        else:
            target, prediction = last, (f0 if f0_hat is None else f0_hat) + d_hat
        latents = [z for z in (z_a, z_m) if z is not None]
        r = F.normalize(torch.cat(latents, dim=1), p=2, dim=1)
        return Outputs(f0, d, f0_hat, d_hat, target, prediction, r)

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of both autoencoders (everything but the cluster centers)."""
        return [p for name, p in self.named_parameters() if not name.startswith("kmeans.")]
