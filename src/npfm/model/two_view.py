"""Two-view self-distillation on tokens: the third pretraining objective (``two_view``).

In the spirit of Sonata and Panda (self-distillation between views of a point cloud),
with SimSiam's stop-gradient instead of a momentum teacher (Chen and He,
arXiv:2011.10566): the same event is seen twice, each time with a different random
``mask_ratio`` of its tokens replaced by a learned mask embedding; every token's
projected output in one view, through a predictor, matches the other view's projected
output (cosine similarity, no gradient through the target), symmetrised. So a token
must be described alike whatever part of its neighbourhood is hidden. Without SimSiam's
batch norm the projections collapse to one direction (seen: spread 0.05 after 100
steps), so VICReg's variance hinge (Bardes et al., arXiv:2105.04906) keeps each
projected dimension's standard deviation over the batch's tokens at 1 or more. Loss =
-agreement (in [-1, 1]) + the hinge. ``two_view_mean_loss`` is the agreement of the
trivial predictor (each target predicted by the targets' mean direction);
``two_view_std`` the spread of the normalised projections times sqrt(dim) (about 1 when
healthy, 0 when collapsed).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Metrics = dict[str, torch.Tensor]


def variance_hinge(z: torch.Tensor) -> torch.Tensor:
    """VICReg's variance term: mean over dimensions of relu(1 - std over rows of z)."""
    return F.relu(1 - torch.sqrt(z.var(0) + 1e-4)).mean()


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class TwoViewObjective(nn.Module):
    """forward(encode, tokens (N, d), generator) -> (loss, metrics); ``encode(tokens)``
    runs the backbone (and final norm) on a view's tokens and returns (N, d)."""

    def __init__(self, d_model: int, mask_ratio: float = 0.3) -> None:
        super().__init__()
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.mask_ratio = mask_ratio
        self.mask_embedding = nn.Parameter(0.02 * torch.randn(d_model))
        self.projector = _mlp(d_model, d_model, d_model)
        self.predictor = _mlp(d_model, max(d_model // 2, 1), d_model)

    def view(self, tokens: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``tokens`` with round(mask_ratio * N) rows, drawn with ``generator``, masked."""
        n = len(tokens)
        chosen = torch.randperm(n, generator=generator, device=generator.device)[
            :round(self.mask_ratio * n)]
        mask = torch.zeros(n, dtype=torch.bool, device=tokens.device)
        mask[chosen.to(tokens.device)] = True
        return torch.where(mask[:, None], self.mask_embedding.to(tokens.dtype), tokens)

    def forward(self, encode: Callable[[torch.Tensor], torch.Tensor], tokens: torch.Tensor,
                generator: torch.Generator) -> tuple[torch.Tensor, Metrics]:
        za = self.projector(encode(self.view(tokens, generator)))
        zb = self.projector(encode(self.view(tokens, generator)))
        pa, pb = self.predictor(za), self.predictor(zb)
        agreement = -0.5 * (F.cosine_similarity(pa, zb.detach(), dim=-1).mean()
                            + F.cosine_similarity(pb, za.detach(), dim=-1).mean())
        hinge = variance_hinge(za) + variance_hinge(zb)
        loss = agreement + hinge
        with torch.no_grad():
            unit = F.normalize(zb, dim=-1)
            mean = unit.mean(0, keepdim=True).expand_as(unit)
            metrics = {"two_view_loss": agreement.detach(), "two_view_hinge": hinge.detach(),
                       "two_view_mean_loss": -F.cosine_similarity(mean, unit, dim=-1).mean(),
                       "two_view_std": unit.std(0).mean() * unit.shape[1] ** 0.5}
        return loss, metrics
