"""Pretraining objectives on backbone outputs of packed, serialised hits.

Common interface: ``forward(hidden (N, d_model), info: BatchInfo) -> (loss, metrics)``
with a scalar loss and a dict of detached scalar tensors.

- ``KNNNObjective``: FM4NPP's k-nearest-neighbours-at-larger-radius regression
  (arXiv 2508.14087). Each hit predicts the normalised coordinates of its k nearest
  larger-radius hits, ordered by distance; loss = mean MSE over existing targets.
  With ``leak_free=True`` targets must also come later in the serialised sequence, so a
  causal backbone has never seen them (FM4NPP's raster order is not strictly radial,
  so its targets can appear earlier: the leakage the reviewers flagged).
- ``MaskedHitObjective``: masked-hit modelling; regress the input features of masked
  hits (the training loop replaces their input tokens by ``mask_embedding``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from npfm.model.knn import knn_larger_radius, later_in_sequence

Metrics = dict[str, torch.Tensor]


@dataclass
class BatchInfo:
    """Per-hit inputs of an objective, all in SERIALISED (backbone) order.

    pos: (N, 3) normalised coordinates (e.g. eta, phi, r of ``hit_features``);
    r: (N,) radius deciding "larger radius"; cu_seqlens: (E+1,) int64 event offsets;
    features: (N, F) input features (masked modelling); mask: (N,) bool masked hits;
    target: (N, 3) what kNNN regresses of each neighbour (default ``pos``), e.g. when
    neighbours are found in another space than the one predicted.
    """

    pos: torch.Tensor
    r: torch.Tensor
    cu_seqlens: torch.Tensor
    features: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    target: torch.Tensor | None = None


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_in), nn.GELU(), nn.Linear(d_in, d_out))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the last axis, averaged over entries where ``valid``.

    pred, target: (..., C); valid: (...) bool. Invalid targets may hold anything (even
    NaN): they contribute neither to the loss nor to its gradient. 0 if none is valid.
    """
    diff = torch.where(valid[..., None], pred - target, torch.zeros_like(pred))
    return diff.pow(2).mean(-1).sum() / valid.sum().clamp_min(1)


class KNNNObjective(nn.Module):
    """kNNN: head MLP d_model -> k * 3 predicting the k nearest larger-r hits' coordinates
    (``info.target`` of the k nearest in ``info.pos``, where a target is given)."""

    def __init__(self, d_model: int, k: int = 30, leak_free: bool = False,
                 block_size: int = 2048) -> None:
        super().__init__()
        self.k, self.leak_free, self.block_size = k, leak_free, block_size
        self.head = _mlp(d_model, k * 3)

    @torch.no_grad()
    def targets(self, info: BatchInfo) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, k) packed target indices (-1 padding) and (N, k) validity of ``info``'s hits."""
        allowed = later_in_sequence if self.leak_free else None
        return knn_larger_radius(info.pos, info.r, info.cu_seqlens, self.k, allowed,
                                 self.block_size)

    def forward(self, hidden: torch.Tensor, info: BatchInfo) -> tuple[torch.Tensor, Metrics]:
        index, valid = self.targets(info)
        target = (info.pos if info.target is None else info.target)[index.clamp_min(0)]
        pred = self.head(hidden).view(len(hidden), self.k, 3)
        loss = masked_mse(pred, target.to(pred.dtype), valid)
        metrics = {"knnn_loss": loss.detach(),
                   "knnn_valid_fraction": valid.float().mean().detach()}
        return loss, metrics


class MaskedHitObjective(nn.Module):
    """Masked-hit modelling: head MLP d_model -> n_features, MSE on masked hits only."""

    def __init__(self, d_model: int, n_features: int, mask_ratio: float = 0.15) -> None:
        super().__init__()
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.mask_ratio = mask_ratio
        self.mask_embedding = nn.Parameter(0.02 * torch.randn(d_model))
        self.head = _mlp(d_model, n_features)

    def choose_mask(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n,) bool mask with exactly round(mask_ratio * n) (at least 1 if n > 0) True,
        drawn uniformly with ``generator`` (on the generator's device)."""
        n_masked = min(n, max(1, round(self.mask_ratio * n)))
        chosen = torch.randperm(n, generator=generator, device=generator.device)[:n_masked]
        mask = torch.zeros(n, dtype=torch.bool, device=generator.device)
        mask[chosen] = True
        return mask

    def apply_mask(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, d_model) input tokens with masked rows replaced by ``mask_embedding``."""
        return torch.where(mask[:, None], self.mask_embedding.to(tokens.dtype), tokens)

    def forward(self, hidden: torch.Tensor, info: BatchInfo) -> tuple[torch.Tensor, Metrics]:
        if info.features is None or info.mask is None:
            raise ValueError("MaskedHitObjective needs info.features and info.mask")
        pred = self.head(hidden)
        loss = masked_mse(pred, info.features.to(pred.dtype), info.mask)
        metrics = {"mhm_loss": loss.detach(),
                   "mhm_mask_fraction": info.mask.float().mean().detach()}
        return loss, metrics
