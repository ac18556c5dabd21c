"""Training losses: appearance (Eq. 3), motion with gradient loss (Eq. 6) and cluster loss (Eq. 11)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gradient_loss", "autoencoder_losses"]


def gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between absolute x and y image gradients of `pred` and `target` (B, C, H, W)."""
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x[..., :, 1:] - x[..., :, :-1]).abs(), (x[..., 1:, :] - x[..., :-1, :]).abs()

    (px, py), (tx, ty) = grads(pred), grads(target)
    return (px - tx).abs().mean() + (py - ty).abs().mean()


def autoencoder_losses(outputs, w_grad: float) -> dict[str, torch.Tensor]:
    """L_a = MSE(f0_hat, f0) and L_m = MSE(d_hat, d) + w_grad * gradient loss, for the streams present."""
    losses: dict[str, torch.Tensor] = {}
    if outputs.f0_hat is not None:
        losses["appearance"] = F.mse_loss(outputs.f0_hat, outputs.f0)
    if outputs.d_hat is not None:
        losses["motion"] = F.mse_loss(outputs.d_hat, outputs.d) + w_grad * gradient_loss(outputs.d_hat, outputs.d)
    return losses
