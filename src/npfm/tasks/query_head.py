"""Query-based track finding (FM4NPP's tracking adapter, a Mask2Former-like decoder).

``QueryTrackHead`` turns the backbone's per-layer hit features into, for each of Q learned
queries, an object / no-object logit and a mask logit per hit: an initial prediction from
the queries alone, then ``n_refine`` refinement layers (masked cross-attention to the
event's hits, self-attention among queries, feed-forward). ``query_loss`` matches queries
to truth tracks per event with the Hungarian algorithm (class + dice + focal costs) and
averages the matched losses over events and stages; ``query_decode`` gives each hit to the query of
best mask x class probability. See ``shared/reference/facts.md`` ("FM4NPP tracking
adapter, from its code").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from npfm.tasks.heads import LayerMix, padded

#: Floor of the log mask probability used as attention bias (keeps the bias finite).
LOG_FLOOR = -20.0
#: A query whose best mask probability over the event's hits is below this is "empty"
#: and attends to all hits unmasked (Mask2Former's fallback).
EMPTY_MASK = 0.5
#: ``query_decode`` leaves a hit unassigned (-1) when its best mask x class probability
#: is below this.
MIN_ASSIGN = 0.25
#: Sigmoid focal loss parameters (Lin et al., arXiv:1708.02002).
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0


@dataclass
class QueryOutput:
    """Per stage (initial + each refinement): ``class_logits`` (B, Q), object vs no
    object; ``mask_logits`` (B, Q, L), per padded hit. ``hit_mask`` (B, L) bool: valid
    (non-padding) hit positions."""

    class_logits: list[torch.Tensor]
    mask_logits: list[torch.Tensor]
    hit_mask: torch.Tensor


def _ffn(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))


class _Refine(nn.Module):
    """Pre-norm masked cross-attention to hits, self-attention, feed-forward (residual)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = _ffn(dim)

    def forward(self, q: torch.Tensor, hits: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """q (B, Q, D), hits (B, L, D), bias (B, Q, L) additive attention bias."""
        n1, n2, n3 = self.norms
        mask = bias.repeat_interleave(self.heads, dim=0)
        q = q + self.cross(n1(q), hits, hits, attn_mask=mask, need_weights=False)[0]
        x = n2(q)
        q = q + self.self_attn(x, x, x, need_weights=False)[0]
        return q + self.ffn(n3(q))


class QueryTrackHead(nn.Module):
    """Learned queries decoded into track masks over each event's hits.

    Hits: LayerMix -> LayerNorm -> Linear(width, hidden) -> + FFN(LayerNorm(.)), giving
    (N, hidden) features, padded to (B, L, hidden). Stage 0 predicts from the
    ``n_queries`` learned embeddings alone; each of the ``n_refine`` layers then updates
    the queries (cross-attention biased by the previous stage's detached log mask
    probability, floored at ``LOG_FLOOR``, with empty queries unmasked; self-attention;
    FFN) and predicts again. A stage's class logit is Linear(LayerNorm(q)); its mask
    logit for a hit is MLP(LayerNorm(q)) . hit feature (dimensionless logits).
    """

    def __init__(self, n_layers: int, width: int, n_queries: int = 32, hidden: int = 64,
                 heads: int = 4, n_refine: int = 2) -> None:
        super().__init__()
        self.mix = LayerMix(n_layers, width)
        self.inp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden))
        self.hit_norm = nn.LayerNorm(hidden)
        self.hit_ffn = _ffn(hidden)
        self.queries = nn.Parameter(torch.randn(n_queries, hidden) * 0.5)
        self.layers = nn.ModuleList(_Refine(hidden, heads) for _ in range(n_refine))
        self.out_norm = nn.LayerNorm(hidden)
        self.cls = nn.Linear(hidden, 1)
        self.mask_embed = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(),
                                        nn.Linear(hidden, hidden))

    def _predict(self, q: torch.Tensor, hits: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits (B, Q) and mask logits (B, Q, L) from queries (B, Q, D)."""
        q = self.out_norm(q)
        mask = torch.einsum("bqd,bld->bql", self.mask_embed(q), hits)
        return self.cls(q).squeeze(-1), mask

    def forward(self, layers: list[torch.Tensor], cu_seqlens: torch.Tensor) -> QueryOutput:
        """``layers``: per-layer (N, width) hit features packed by ``cu_seqlens`` (B+1,)."""
        x = self.inp(self.mix(layers))
        x = x + self.hit_ffn(self.hit_norm(x))
        hits, valid = padded(x, cu_seqlens)
        # Padding is masked out, except in events without hits (avoids all -inf rows).
        pad = (~valid & valid.any(1, keepdim=True)).unsqueeze(1)
        q = self.queries.unsqueeze(0).expand(len(hits), -1, -1)
        cls, mask = self._predict(q, hits)
        out = QueryOutput([cls], [mask], valid)
        for layer in self.layers:
            logp = F.logsigmoid(mask.detach()).clamp_min(LOG_FLOOR)
            best = logp.masked_fill(pad, LOG_FLOOR).amax(-1, keepdim=True)
            bias = torch.where(best < np.log(EMPTY_MASK), 0.0, logp).masked_fill(pad, -torch.inf)
            q = layer(q, hits, bias)
            cls, mask = self._predict(q, hits)
            out.class_logits.append(cls)
            out.mask_logits.append(mask)
        return out


def _focal(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise sigmoid focal loss, same shape as ``logits``."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    alpha = FOCAL_ALPHA * target + (1 - FOCAL_ALPHA) * (1 - target)
    return alpha * (1 - p_t) ** FOCAL_GAMMA * ce


def _costs(cls: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor,
           class_weight: float, dice_weight: float, focal_weight: float) -> torch.Tensor:
    """Matching costs (..., Q, K): cls (..., Q), mask (..., Q, L), targets (..., K, L) in
    {0, 1} and zero on padding, valid (..., L) bool; focal is the mean over valid hits."""
    v = valid.unsqueeze(-2).to(mask.dtype)
    p = torch.sigmoid(mask) * v
    t_T = targets.transpose(-1, -2)
    dice = 1 - (2 * p @ t_T + 1) / (p.sum(-1, keepdim=True) + t_T.sum(-2, keepdim=True) + 1)
    pos = _focal(mask, torch.ones_like(mask)) * v
    neg = _focal(mask, torch.zeros_like(mask)) * v
    focal = (pos @ t_T + neg @ (v - targets).transpose(-1, -2)) / v.sum(-1, keepdim=True
                                                                          ).clamp_min(1)
    return -class_weight * torch.sigmoid(cls).unsqueeze(-1) + dice_weight * dice + \
        focal_weight * focal


def match_cost(class_logits: torch.Tensor, mask_logits: torch.Tensor, targets: torch.Tensor,
               class_weight: float = 0.5, dice_weight: float = 1.0,
               focal_weight: float = 30.0) -> torch.Tensor:
    """Matching cost (Q, K) of one event: class_logits (Q,), mask_logits (Q, n),
    targets (K, n) in {0, 1}: class_weight (-p_obj) + dice_weight dice + focal_weight focal."""
    valid = torch.ones(mask_logits.shape[-1], dtype=torch.bool, device=mask_logits.device)
    return _costs(class_logits, mask_logits, targets, valid, class_weight, dice_weight,
                  focal_weight)


def _pair_terms(mask: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Dice and mean-over-valid-hits focal loss (M,) of M matched (mask, target) rows (M, L)."""
    v = valid.to(mask.dtype)
    p = torch.sigmoid(mask) * v
    dice = 1 - (2 * (p * targets).sum(-1) + 1) / (p.sum(-1) + targets.sum(-1) + 1)
    return dice, (_focal(mask, targets) * v).sum(-1) / v.sum(-1).clamp_min(1)


def _class_terms(cls: torch.Tensor, is_obj: torch.Tensor, class_weight: float,
                 noobj_weight: float) -> torch.Tensor:
    weight = noobj_weight + (class_weight - noobj_weight) * is_obj
    return weight * F.binary_cross_entropy_with_logits(cls, is_obj, reduction="none")


def matched_loss(class_logits: torch.Tensor, mask_logits: torch.Tensor,
                 targets: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                 class_weight: float = 0.5, noobj_weight: float = 0.1,
                 dice_weight: float = 1.0, focal_weight: float = 30.0) -> torch.Tensor:
    """One event's loss for queries ``rows`` assigned to tracks ``cols`` (index tensors).

    Class BCE averaged over the Q queries (matched: target 1, weight ``class_weight``;
    others: target 0, weight ``noobj_weight``), plus dice_weight dice + focal_weight focal
    (mean over hits) averaged over the matched pairs. Shapes as in ``match_cost``.
    """
    is_obj = torch.zeros_like(class_logits)
    is_obj[rows] = 1.0
    loss = _class_terms(class_logits, is_obj, class_weight, noobj_weight).mean()
    if len(rows) == 0:
        return loss
    dice, focal = _pair_terms(mask_logits[rows], targets[cols], torch.ones_like(targets[cols]))
    return loss + (dice_weight * dice + focal_weight * focal).mean()


def _padded_targets(objects: torch.Tensor, cu_seqlens: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Truth masks (B, K, L) float over padded hits (noise and padding in none) and the
    number of tracks per event (B,)."""
    obj, valid = padded(objects.unsqueeze(1), cu_seqlens)
    b, length = valid.shape
    real = valid & (obj[..., 0] >= 0)
    event, pos = real.nonzero().unbind(1)
    keys, inverse = torch.unique(torch.stack([event, obj[event, pos, 0]], 1), dim=0,
                                 return_inverse=True)  # sorted by event, then track id
    n_tracks = torch.bincount(keys[:, 0], minlength=b)
    first = torch.cumsum(n_tracks, 0) - n_tracks
    targets = torch.zeros(b, int(n_tracks.max()) if b else 0, length, device=objects.device)
    targets[event, inverse - first[event], pos] = 1.0
    return targets, n_tracks


def query_loss(out: QueryOutput, objects: torch.Tensor, cu_seqlens: torch.Tensor,
               class_weight: float = 0.5, noobj_weight: float = 0.1, dice_weight: float = 1.0,
               focal_weight: float = 30.0) -> torch.Tensor:
    """Hungarian-matched set loss (a scalar), ``matched_loss`` averaged over events and stages.

    ``objects`` (N,) int64: each hit's track id within its event, -1 for noise. Matching
    per event and stage minimises ``match_cost``; padded hits never contribute.
    """
    cls, mask = torch.stack(out.class_logits), torch.stack(out.mask_logits)
    n_stages, b = cls.shape[:2]
    if b == 0:
        return cls.sum()
    targets, n_tracks = _padded_targets(objects.to(mask.device), cu_seqlens.to(mask.device))
    with torch.no_grad():
        cost = _costs(cls, mask, targets, out.hit_mask, class_weight, dice_weight,
                      focal_weight).cpu().numpy()
    index = []
    for s in range(n_stages):
        for e, k in enumerate(n_tracks.tolist()):
            rows, cols = linear_sum_assignment(cost[s, e, :, :k])
            index += [(s, e, r, c) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]
    st, ev, q, k = torch.tensor(index, dtype=torch.long, device=mask.device
                                ).reshape(-1, 4).unbind(1)
    is_obj = torch.zeros_like(cls)
    is_obj[st, ev, q] = 1.0
    loss = _class_terms(cls, is_obj, class_weight, noobj_weight).mean()
    dice, focal = _pair_terms(mask[st, ev, q], targets[ev, k], out.hit_mask[ev])
    pairs = torch.bincount(st * b + ev, minlength=n_stages * b)[st * b + ev]
    return loss + ((dice_weight * dice + focal_weight * focal) / pairs).sum() / (n_stages * b)


def query_decode(out: QueryOutput, cu_seqlens: torch.Tensor, min_class: float = 0.5
                 ) -> torch.Tensor:
    """Track labels (N,) int64 from the last stage; -1 for unassigned hits.

    Each hit goes to the query of best sigmoid(mask) x sigmoid(class) among queries with
    sigmoid(class) >= ``min_class``; below ``MIN_ASSIGN`` it stays -1. Labels run 0..K-1
    per event in order of query index.
    """
    cls, mask = out.class_logits[-1].detach(), out.mask_logits[-1].detach()
    labels = torch.full((int(cu_seqlens[-1]),), -1, dtype=torch.long)
    for b in range(len(cu_seqlens) - 1):
        lo, hi = int(cu_seqlens[b]), int(cu_seqlens[b + 1])
        pc = torch.sigmoid(cls[b])
        score = torch.sigmoid(mask[b, :, :hi - lo]) * pc.unsqueeze(1)
        score = score.masked_fill((pc < min_class).unsqueeze(1), -1.0)
        if score.numel() == 0:
            continue
        best, arg = score.max(0)
        keep = best >= MIN_ASSIGN
        if keep.any():
            labels[lo:hi][keep] = torch.unique(arg[keep], return_inverse=True)[1].cpu()
    return labels
