"""Lightweight adapters on backbone features: a learned layer mix, then a head.

Every head takes the backbone's per-layer outputs for the hits of a batch (a list of
(N, d) tensors in the events' original hit order) and ``cu_seqlens`` (B+1,):

- ``HitHead(kind="linear")``: the linear probe over the layer mix, per hit.
- ``HitHead(kind="attention")``: a small attention block over each event's hits.
- ``EventHead``: attention pooling over an event's hits, then an MLP (classification or
  regression per event).
- ``CondensationHead``: object condensation (Kieseler, arXiv:2002.03605) for track
  finding: per hit a condensation-strength logit and a clustering coordinate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LayerMix(nn.Module):
    """Softmax-weighted mean of layer-normalised backbone layers (a scalar mix)."""

    def __init__(self, n_layers: int, width: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(n_layers))
        self.norm = nn.LayerNorm(width, elementwise_affine=False)

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        w = torch.softmax(self.weights, 0)
        return sum((wi * self.norm(x) for wi, x in zip(w, layers, strict=True)),
                   torch.zeros_like(layers[0]))


def padded(x: torch.Tensor, cu_seqlens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, d) packed rows as (B, L, d) and a (B, L) validity mask."""
    counts = cu_seqlens[1:] - cu_seqlens[:-1]
    b, length = len(counts), int(counts.max()) if len(counts) else 0
    event = torch.repeat_interleave(torch.arange(b, device=x.device), counts)
    pos = torch.arange(len(x), device=x.device) - cu_seqlens[:-1][event]
    out = x.new_zeros(b, length, x.shape[-1])
    out[event, pos] = x
    mask = torch.zeros(b, length, dtype=torch.bool, device=x.device)
    mask[event, pos] = True
    return out, mask


class _Block(nn.Module):
    """Pre-norm self-attention over each event's hits, then an MLP."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
        xp, mask = padded(self.norm1(x), cu_seqlens)
        b, length, d = xp.shape
        q, k, v = self.qkv(xp).view(b, length, 3, self.heads, d // self.heads).unbind(2)
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                             v.transpose(1, 2), attn_mask=mask[:, None, None])
        x = x + self.proj(att.transpose(1, 2).reshape(b, length, d)[mask])
        return x + self.mlp(self.norm2(x))


def track_pool(x: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """(N, 3 d): each row's features, then the mean and the max of ``x`` (N, d) over the
    rows of its group (``groups`` (N,) int64, -1: a row of no group, pooled as zeros)."""
    member = groups >= 0
    g = groups.clamp_min(0)
    n = int(groups.max()) + 1 if member.any() else 0
    total = x.new_zeros(n, x.shape[1]).index_add(0, g[member], x[member])
    count = torch.bincount(g[member], minlength=n).clamp_min(1).unsqueeze(1)
    index = g[member].unsqueeze(1).expand(-1, x.shape[1])
    peak = x.new_zeros(n, x.shape[1]).scatter_reduce(0, index, x[member], "amax",
                                                     include_self=False)
    keep = member.unsqueeze(1)
    mean = torch.where(keep, (total / count)[g] if n else x.new_zeros(x.shape), 0)
    top = torch.where(keep, peak[g] if n else x.new_zeros(x.shape), 0)
    return torch.cat([x, mean, top], 1)


class HitHead(nn.Module):
    """Per-hit outputs (N, n_out): a linear probe or a small attention head.

    With ``pool_tracks``, each hit's features are joined by their mean and max over the
    hits of its track (``track_pool``; the track of each hit is passed as ``groups``), so
    a track's hits are classified together, as a truncated-mean dE/dx uses them.
    """

    def __init__(self, n_layers: int, width: int, n_out: int, kind: str = "linear",
                 hidden: int = 64, heads: int = 4, pool_tracks: bool = False) -> None:
        super().__init__()
        if kind not in ("linear", "attention"):
            raise ValueError(f"unknown hit head {kind!r}; use linear or attention")
        self.mix = LayerMix(n_layers, width)
        self.kind, self.pool_tracks = kind, pool_tracks
        dim = width
        if kind == "attention":
            self.inp = nn.Linear(width, hidden)
            self.block = _Block(hidden, heads)
            dim = hidden
        self.out = nn.Linear(3 * dim if pool_tracks else dim, n_out)

    def forward(self, layers: list[torch.Tensor], cu_seqlens: torch.Tensor,
                groups: torch.Tensor | None = None) -> torch.Tensor:
        x = self.mix(layers)
        if self.kind == "attention":
            x = self.block(self.inp(x), cu_seqlens)
        if self.pool_tracks:
            if groups is None:
                raise ValueError("a track-pooling head needs each hit's track (groups)")
            x = track_pool(x, groups)
        return self.out(x)


class EventHead(nn.Module):
    """Per-event outputs (B, n_out): attention pooling over hits, then an MLP."""

    def __init__(self, n_layers: int, width: int, n_out: int, hidden: int = 64) -> None:
        super().__init__()
        self.mix = LayerMix(n_layers, width)
        self.inp = nn.Linear(width, hidden)
        self.score = nn.Linear(hidden, 1)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, n_out))

    def forward(self, layers: list[torch.Tensor], cu_seqlens: torch.Tensor) -> torch.Tensor:
        x, mask = padded(torch.tanh(self.inp(self.mix(layers))), cu_seqlens)
        logits = self.score(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        attn = torch.softmax(logits, dim=1).unsqueeze(-1)
        mean = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return self.mlp(torch.cat([(attn * x).sum(1), mean], -1))


class CondensationHead(nn.Module):
    """Object condensation outputs: the beta logit (N,) and coordinates (N, dim).

    beta = sigmoid(logit) in (0, 1); it is never clamped, so its gradient never dies.
    """

    def __init__(self, n_layers: int, width: int, dim: int = 8, hidden: int = 64,
                 kind: str = "attention") -> None:
        super().__init__()
        self.body = HitHead(n_layers, width, hidden, kind=kind, hidden=hidden)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(hidden, dim + 1))

    def forward(self, layers: list[torch.Tensor], cu_seqlens: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.out(self.body(layers, cu_seqlens))
        return y[:, 0], y[:, 1:]


def charge(logit: torch.Tensor, q_min: float) -> torch.Tensor:
    """Condensation charge q = artanh(beta)^2 + q_min with beta = sigmoid(logit).

    artanh(sigmoid(y)) = softplus(y + ln 2) / 2 exactly, finite and differentiable for
    every y (no clamp of beta below 1).
    """
    return (0.5 * F.softplus(logit + math.log(2))) ** 2 + q_min


def condensation_loss(logit: torch.Tensor, coords: torch.Tensor, objects: torch.Tensor,
                      cu_seqlens: torch.Tensor, q_min: float = 0.5,
                      noise_weight: float = 1.0, beta_weight: float = 1.0) -> torch.Tensor:
    """Object-condensation loss (attractive + repulsive potentials + weighted beta terms).

    ``logit`` (N,): beta logits; ``coords`` (N, dim); ``objects`` (N,) int64: the hit's
    object (track) id within its event, -1 for noise. After arXiv:2002.03605 eqs. 2-6,
    with q = ``charge``: each object's condensation point alpha is its hit of highest q;
    per object, attraction is the q-weighted mean squared distance of its own hits to
    alpha and repulsion the q-weighted mean hinge relu(1 - d) of all other hits, both
    times q_alpha and averaged over objects (so large objects do not dominate, and no
    object can lower the potential by shrinking every q). The beta term is
    ``beta_weight`` * (mean over objects of 1 - beta_alpha + ``noise_weight`` * mean
    noise beta).
    """
    beta, q = torch.sigmoid(logit), charge(logit, q_min)
    total = logit.new_zeros(())
    for i in range(len(cu_seqlens) - 1):
        sl = slice(int(cu_seqlens[i]), int(cu_seqlens[i + 1]))
        b, qi, x, obj = beta[sl], q[sl], coords[sl], objects[sl]
        real = obj >= 0
        ids, member = torch.unique(obj[real], return_inverse=True)
        if len(ids) == 0:
            total = total + beta_weight * noise_weight * b.mean()
            continue
        m = torch.zeros(len(ids), len(b), dtype=torch.bool, device=b.device)
        m[member, real.nonzero().flatten()] = True
        alpha = torch.where(m, qi.unsqueeze(0), torch.zeros_like(qi).unsqueeze(0)).argmax(1)
        diff = x[alpha].unsqueeze(1) - x.unsqueeze(0)  # (K, N, dim); cdist's backward is slow
        d2 = diff.pow(2).sum(-1)
        dist = (d2 + 1e-12).sqrt()
        weighted = qi.unsqueeze(0)
        attract = (m * weighted * d2).sum(1) / m.sum(1)
        others = (~m).sum(1).clamp_min(1)
        repel = ((~m) * weighted * F.relu(1.0 - dist)).sum(1) / others
        potential = (qi[alpha] * (attract + repel)).mean()
        l_beta = (1 - b[alpha]).mean()
        if (~real).any():
            l_beta = l_beta + noise_weight * b[~real].mean()
        total = total + potential + beta_weight * l_beta
    return total / max(len(cu_seqlens) - 1, 1)


def condense(beta: torch.Tensor, coords: torch.Tensor, cu_seqlens: torch.Tensor,
             t_beta: float = 0.5, t_distance: float = 0.8) -> torch.Tensor:
    """Track labels (N,) from condensation outputs (``beta`` = sigmoid of the head's
    logit); -1 for hits left unassigned.

    Per event: the unassigned hit of highest beta above ``t_beta`` becomes a condensation
    point and takes every unassigned hit within ``t_distance`` in coordinate space.
    """
    labels = torch.full((len(beta),), -1, dtype=torch.long)
    for i in range(len(cu_seqlens) - 1):
        lo, hi = int(cu_seqlens[i]), int(cu_seqlens[i + 1])
        b, x = beta[lo:hi].detach(), coords[lo:hi].detach()
        free = torch.ones(hi - lo, dtype=torch.bool)
        order = torch.argsort(b, descending=True)
        next_label = 0
        for j in order.tolist():
            if b[j] < t_beta:
                break
            if not free[j]:
                continue
            take = free & ((x - x[j]).norm(dim=1) < t_distance)
            take[j] = True
            labels[lo:hi][take] = next_label
            free &= ~take
            next_label += 1
    return labels
