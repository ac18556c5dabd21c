"""Building blocks of the two autoencoders: ResNet down/up blocks and variance attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["conv3x3", "DownBlock", "UpBlock", "VarianceAttention"]

_SLOPE = 0.2


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with 'same' padding."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


class DownBlock(nn.Module):
    """ResNet block halving the resolution: conv s2 -> LeakyReLU -> conv, plus a strided conv shortcut."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride=2)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.shortcut = conv3x3(in_channels, out_channels, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) -> (B, Cout, H/2, W/2)."""
        main = self.conv2(F.leaky_relu(self.conv1(x), _SLOPE))
        return F.leaky_relu(main + self.shortcut(x), _SLOPE)


class UpBlock(nn.Module):
    """ResNet block doubling the resolution with PixelShuffle (no transposed convolution)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if in_channels % 4:
            raise ValueError(f"PixelShuffle(2) needs input channels divisible by 4, got {in_channels}")
        self.shuffle = nn.PixelShuffle(2)
        self.conv1 = conv3x3(in_channels // 4, out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.shortcut = conv3x3(in_channels // 4, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) -> (B, Cout, 2H, 2W)."""
        x = self.shuffle(x)
        main = self.conv2(F.leaky_relu(self.conv1(x), _SLOPE))
        return F.leaky_relu(main + self.shortcut(x), _SLOPE)


class VarianceAttention(nn.Module):
    """Variance attention (Eq. 7-9): highlight locations whose embedding varies most across channels.

    p = conv1x1(x), average-pooled to a fixed grid; v = sum_c (p_c - mean_c p)^2; a = softmax of v over
    grid positions; a is upsampled (nearest) to x's size and the output is exp(a) * x.
    """

    def __init__(self, channels: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.embed = nn.Conv2d(channels, channels, 1)
        self.grid = grid

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights a: (B, 1, gh, gw), summing to 1 over positions."""
        p = F.adaptive_avg_pool2d(self.embed(x), self.grid)
        v = (p - p.mean(dim=1, keepdim=True)).pow(2).sum(dim=1)
        batch, gh, gw = v.shape
        return torch.softmax(v.reshape(batch, -1), dim=1).reshape(batch, 1, gh, gw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W), each location scaled by exp(a)."""
        a = F.interpolate(self.weights(x), size=x.shape[-2:], mode="nearest")
        return torch.exp(a) * x
