"""k nearest hits at larger radius, per event of a packed batch (FM4NPP kNNN targets).

Pure PyTorch. Events are processed one at a time and queries in blocks of ``block_size``
rows, so at most ``block_size x event_size`` distances exist at once. Distances are exact
squared Euclidean sums (no matmul expansion), so equal distances tie exactly; ties are
broken by the lower packed index.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

#: ``allowed(query, candidate) -> (b, m) bool``: whether packed index ``candidate[j]`` may be a
#: target of packed index ``query[i]``; both are int64 packed indices.
Allowed = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def later_in_sequence(query: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """``Allowed`` rule for leak-free targets: the candidate comes after the query."""
    return candidate[None, :] > query[:, None]


def knn_larger_radius(pos: torch.Tensor, r: torch.Tensor, cu_seqlens: torch.Tensor, k: int,
                      allowed: Allowed | None = None,
                      block_size: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest hits of each hit among hits of its event with strictly larger r.

    pos: (N, D) finite coordinates (any consistent units; distances are Euclidean in them).
    r: (N,) radius deciding which hits are "outer"; cu_seqlens: (E+1,) event offsets.
    allowed: optional extra rule (see ``Allowed``), e.g. ``later_in_sequence``.

    Returns ``index`` (N, k) int64 packed indices ordered by increasing distance (ties by
    index), -1 where fewer than k candidates exist, and ``valid`` (N, k) bool = index >= 0.
    """
    n = pos.shape[0]
    index = torch.full((n, k), -1, dtype=torch.int64, device=pos.device)
    bounds = cu_seqlens.tolist()
    for start, stop in itertools.pairwise(bounds):
        cand = torch.arange(start, stop, device=pos.device)
        cand_pos, cand_r = pos[start:stop], r[start:stop]
        for q0 in range(start, stop, block_size):
            query = torch.arange(q0, min(q0 + block_size, stop), device=pos.device)
            d2 = torch.zeros(len(query), len(cand), dtype=pos.dtype, device=pos.device)
            for axis in range(pos.shape[1]):
                d2 += (pos[query, axis, None] - cand_pos[None, :, axis]) ** 2
            ok = cand_r[None, :] > r[query, None]
            if allowed is not None:
                ok &= allowed(query, cand)
            d2 = d2.masked_fill(~ok, torch.inf)
            order = torch.sort(d2, dim=1, stable=True).indices[:, :k]
            found = torch.gather(ok, 1, order)
            width = order.shape[1]
            index[query, :width] = torch.where(found, cand[order], -1)
    return index, index >= 0
