"""Deep K-means head (Eq. 10-11): soft-assigned distance of each latent vector to K centers."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DeepKMeansHead"]


class DeepKMeansHead(nn.Module):
    """Cluster centers c_k and the distance D(r) = sum_k softmax_k(-alpha d_k) d_k^p, d_k = ||r - c_k||.

    p = 2 (`squared`) is the paper's Eq. 10; p = 1 (`euclidean`) is what the authors' code computes
    (arch/module/cluster.py: the soft-assigned distance itself, in the loss and in the score map).
    `reduction` `sum` over the K centers is Eq. 10; `mean` (D / K) is the authors' code
    (`torch.mean(rep_dist * softassign, [1, 2, 3])`), which weighs the cluster loss K times less against the
    reconstruction losses; in the score it is a constant factor.
    The centers are an `nn.Parameter`, initialised by the `init_clusters` stage (k-means++), not here.
    `distance` may be changed after training (`score.cluster_distance`): it holds no weight.
    """

    def __init__(self, clusters: int, dim: int, alpha: float, distance: str = "squared",
                 reduction: str = "sum") -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be sum or mean, got {reduction!r}")
        self.centers = nn.Parameter(torch.zeros(clusters, dim))
        self.alpha = alpha
        self.distance = distance
        self.reduction = reduction

    @property
    def distance(self) -> str:
        """`squared` (p = 2) or `euclidean` (p = 1)."""
        return "squared" if self.power == 2 else "euclidean"

    @distance.setter
    def distance(self, value: str) -> None:
        if value not in ("squared", "euclidean"):
            raise ValueError(f"distance must be squared or euclidean, got {value!r}")
        self.power = 2 if value == "squared" else 1

    def _distances(self, r: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) -> Euclidean distances (B, h, w, K)."""
        batch, dim, height, width = r.shape
        vectors = r.permute(0, 2, 3, 1).reshape(-1, dim)
        # ||r - c||^2 = ||r||^2 - 2 r.c + ||c||^2: one matrix product, never the (B, h, w, K, D) differences
        # (1 GB and 60x the time for a batch of 8 at 256x256: 512-D latents, 32x32 of them, 32 centers).
        squared = (vectors.pow(2).sum(-1, keepdim=True) - 2 * vectors @ self.centers.T
                   + self.centers.pow(2).sum(-1))
        return squared.clamp_min(1e-12).sqrt().reshape(batch, height, width, -1)

    def assignments(self, r: torch.Tensor) -> torch.Tensor:
        """Soft assignment of each latent location to each center: (B, K, h, w), summing to 1 over K."""
        return torch.softmax(-self.alpha * self._distances(r), dim=-1).permute(0, 3, 1, 2)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Cluster distance D(r) per latent location: (B, D, h, w) -> (B, h, w)."""
        distance = self._distances(r)
        weights = torch.softmax(-self.alpha * distance, dim=-1)
        weighted = weights * distance.pow(self.power)
        return weighted.sum(-1) if self.reduction == "sum" else weighted.mean(-1)
