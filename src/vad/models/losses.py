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


def autoencoder_losses(outputs, w_grad: float, gradient_on: str = "frame") -> dict[str, torch.Tensor]:
    """L_a = MSE(f0_hat, f0) and L_m = MSE(d_hat, d) + w_grad * gradient loss, for the streams present.

    `gradient_on="frame"` compares the gradients of the predicted frame f0 + d_hat with those of f4, as
    the authors' code does; `"difference"` compares those of d_hat with those of d (Eq. 6 read literally).
    The difference of two frames is flat almost everywhere, so there the gradient term mostly pulls
    d_hat towards zero; a frame's gradients are those of the scene, which f0 + d_hat has to match anyway.
    """
    losses: dict[str, torch.Tensor] = {}
    if outputs.f0_hat is not None:
        losses["appearance"] = F.mse_loss(outputs.f0_hat, outputs.f0)
    if outputs.d_hat is not None:
        if gradient_on == "frame":
            pred, target = outputs.f0 + outputs.d_hat, outputs.f0 + outputs.d
        elif gradient_on == "difference":
            pred, target = outputs.d_hat, outputs.d
        else:
            raise ValueError(f"gradient_on must be 'frame' or 'difference', got {gradient_on!r}")
        losses["motion"] = F.mse_loss(outputs.d_hat, outputs.d) + w_grad * gradient_loss(pred, target)
    return losses
