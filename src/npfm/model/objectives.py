"""Pretraining objectives on backbone outputs of packed, serialised hits.

Common interface: ``forward(hidden (N, d_model), info: BatchInfo) -> (loss, metrics)``
with a scalar loss and a dict of detached scalar tensors.

- ``KNNNObjective``: FM4NPP's k-nearest-neighbours-at-larger-radius regression
  (arXiv 2508.14087), with targets relative to the query and standardised: each hit
  predicts (d eta, wrapped d phi, d r) to its k nearest larger-radius hits, ordered by
  distance, each component divided by its spread over the batch's valid targets; loss =
  mean MSE over existing targets. FM4NPP regresses absolute coordinates, which copying
  the query's own position already predicts well; here that trivial predictor scores
  about 1 (``knnn_copy_loss``), as does the per-rank mean (``knnn_mean_loss``), so a
  loss well below 1 means the model learned the neighbourhood. With ``leak_free=True``
  targets must also come later in the serialised sequence, so a causal backbone has
  never seen them (FM4NPP's raster order is not strictly radial, so its targets can
  appear earlier: the leakage the reviewers flagged).
- ``MaskedHitObjective``: masked-hit modelling; regress the input features of masked
  hits (the training loop replaces their input tokens by ``mask_embedding``);
  ``mhm_mean_loss`` is the loss of predicting the masked features' mean.
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

    pos: (N, D) coordinates in which neighbours are nearest (azimuth as sin and cos, so
    that distances do not jump at +-pi); r: (N,) radius deciding "larger radius";
    cu_seqlens: (E+1,) int64 event offsets; features: (N, F) input features (masked
    modelling); mask: (N,) bool masked hits; target: (N, 3) coordinates whose differences
    kNNN regresses (default ``pos``), column ``periodic`` (if any) being phi / pi,
    whose differences are wrapped into [-1, 1).
    """

    pos: torch.Tensor
    r: torch.Tensor
    cu_seqlens: torch.Tensor
    features: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    target: torch.Tensor | None = None
    periodic: int | None = 1


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_in), nn.GELU(), nn.Linear(d_in, d_out))


def wrapped(delta: torch.Tensor) -> torch.Tensor:
    """Differences of phi / pi wrapped into [-1, 1)."""
    return torch.remainder(delta + 1, 2) - 1


def relative_targets(coords: torch.Tensor, index: torch.Tensor, valid: torch.Tensor,
                     periodic: int | None) -> torch.Tensor:
    """(N, k, C) standardised differences coords[index] - coords[query].

    Column ``periodic`` (phi / pi) is wrapped; each column is divided by its standard
    deviation over the valid entries (detached; 1 where fewer than two are valid).
    """
    delta = coords[index.clamp_min(0)] - coords[:, None, :]
    if periodic is not None:
        delta[..., periodic] = wrapped(delta[..., periodic])
    ok = delta[valid]
    scale = ok.std(0) if len(ok) > 1 else torch.ones(delta.shape[-1], device=delta.device)
    return delta / scale.detach().clamp_min(1e-6)


def masked_mean(target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``target`` (..., C) over the leading axis where ``valid`` (...), per
    remaining position; 0 where none is valid."""
    weight = valid[..., None].to(target.dtype)
    total = torch.where(valid[..., None], target, torch.zeros_like(target)).sum(0)
    return total / weight.sum(0).clamp_min(1)


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
        coords = info.pos if info.target is None else info.target
        target = relative_targets(coords, index, valid, info.periodic).to(hidden.dtype)
        pred = self.head(hidden).view(len(hidden), self.k, 3)
        loss = masked_mse(pred, target, valid)
        with torch.no_grad():
            mean = masked_mean(target, valid).expand_as(target)
            metrics = {"knnn_loss": loss.detach(),
                       "knnn_copy_loss": masked_mse(torch.zeros_like(target), target, valid),
                       "knnn_mean_loss": masked_mse(mean, target, valid),
                       "knnn_valid_fraction": valid.float().mean()}
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
        target = info.features.to(pred.dtype)
        loss = masked_mse(pred, target, info.mask)
        with torch.no_grad():
            mean = masked_mean(target, info.mask).expand_as(target)
            metrics = {"mhm_loss": loss.detach(),
                       "mhm_mean_loss": masked_mse(mean, target, info.mask),
                       "mhm_mask_fraction": info.mask.float().mean()}
        return loss, metrics
