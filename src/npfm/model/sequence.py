"""One packed token sequence from hits and reconstructed objects of the same events.

An event with hits is tokenised by its hits; an event with no hits but reconstructed
objects (e.g. the ALEPH archive) by its objects; with calorimeter cells (a model built
with ``cells``), each event's cell tokens follow its hit (or object) tokens. Each event
keeps one contiguous segment of the sequence, in batch order. ``TokenSequence``
records, per kind, each token's source index, its slot in the sequence and the
per-kind event offsets, so objectives can run on each kind separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from npfm.events.loader import PackedBatch
from npfm.model.objectives import BatchInfo
from npfm.model.serialize import event_index


@dataclass
class TokenPart:
    """The tokens of one kind (hits or objects), in serialised order.

    source: (n,) int64 packed index in the loader's batch of that kind; slots: (n,) int64
    position in the combined sequence; cu_seqlens: (B+1,) offsets per event (events
    tokenised by the other kind have empty segments); features: (n, F) float32 inputs.
    """

    source: torch.Tensor
    slots: torch.Tensor
    cu_seqlens: torch.Tensor
    features: torch.Tensor


@dataclass
class TokenSequence:
    """tokens (N, d) of the combined sequence, its cu_seqlens (B+1,) and its parts
    (``cells`` None for a model without cell tokens)."""

    tokens: torch.Tensor
    cu_seqlens: torch.Tensor
    hits: TokenPart
    objects: TokenPart
    cells: TokenPart | None = None


def cut(perm: torch.Tensor, cu_seqlens: torch.Tensor,
        max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``max_tokens`` of each event of a serialisation ``perm`` (which keeps
    every event inside its segment) and the new ``cu_seqlens``."""
    counts = cu_seqlens[1:] - cu_seqlens[:-1]
    kept = counts.clamp_max(max_tokens)
    event = event_index(cu_seqlens)
    rank = torch.arange(len(perm), device=perm.device) - cu_seqlens[:-1][event]
    new_cu = torch.cat([cu_seqlens.new_zeros(1), torch.cumsum(kept, 0)])
    return perm[rank < kept[event]], new_cu


def objects_of_hitless_events(hits: PackedBatch, objects: PackedBatch) -> PackedBatch:
    """The objects of the events of ``hits`` that have no hit (others get none).

    ``objects`` must hold the same events in the same order (run and event numbers are
    checked); its ``event_fields`` are kept.
    """
    if not (torch.equal(hits.run.cpu(), objects.run.cpu())
            and torch.equal(hits.event.cpu(), objects.event.cpu())):
        raise ValueError("the hit and object batches hold different events; load both with "
                         "the same corpus, batch size, shuffle, seed, rank and epoch")
    hitless = hits.cu_seqlens[1:] == hits.cu_seqlens[:-1]
    cu = objects.cu_seqlens.to(hitless.device)
    counts = torch.where(hitless, cu[1:] - cu[:-1], 0)
    keep = hitless[event_index(cu)]
    return PackedBatch({k: v[keep.to(v.device)] for k, v in objects.fields.items()},
                       torch.cat([cu.new_zeros(1), torch.cumsum(counts, 0)]),
                       objects.run, objects.event, objects.event_fields)


def slots(part_cu: torch.Tensor, sequence_cu: torch.Tensor,
          offset: torch.Tensor) -> torch.Tensor:
    """Sequence position of each element of a part: its event's start in the sequence,
    plus ``offset`` (B,) (tokens of the event placed before this part), plus its rank."""
    event = event_index(part_cu)
    rank = torch.arange(len(event), device=part_cu.device) - part_cu[:-1][event]
    return sequence_cu[:-1][event] + offset[event] + rank


def combine_parts(parts: list[tuple[torch.Tensor, torch.Tensor]]
                  ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """(tokens, cu_seqlens, slots of each part): per event, the tokens of each part
    ((tokens, cu_seqlens) pairs over the same events) in the order given."""
    counts = [cu[1:] - cu[:-1] for _, cu in parts]
    total = torch.stack(counts).sum(0)
    cu = torch.cat([total.new_zeros(1), torch.cumsum(total, 0)])
    first = parts[0][0]
    tokens = first.new_zeros(int(cu[-1]), first.shape[1])
    offset, out = torch.zeros_like(total), []
    for (part, part_cu), count in zip(parts, counts, strict=True):
        out.append(slots(part_cu, cu, offset))
        tokens = tokens.index_copy(0, out[-1], part.to(tokens.dtype))
        offset = offset + count
    return tokens, cu, out


def combine(hit_tokens: torch.Tensor, hits_cu: torch.Tensor, object_tokens: torch.Tensor,
            objects_cu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                               torch.Tensor]:
    """(tokens, cu_seqlens, hit slots, object slots): each event's hit tokens, then its
    object tokens, events in batch order."""
    tokens, cu, (hit_slots, object_slots) = combine_parts([(hit_tokens, hits_cu),
                                                          (object_tokens, objects_cu)])
    return tokens, cu, hit_slots, object_slots


def object_info(part: TokenPart, mask: torch.Tensor | None = None) -> BatchInfo:
    """Objective inputs for object tokens (features and ``mask`` for masked modelling).

    kNNN: each object predicts the (eta, wrapped phi, log_pt) differences to its k
    nearest harder (larger pT) objects (standardised; ``KNNNObjective``), nearest in
    (eta, phi) with the azimuth wrapped: distance^2 = (d eta / ETA_MAX)^2
    + (2 sin(d phi / 2) / pi)^2, the hits' (eta / ETA_MAX, phi / pi) metric for small
    d phi."""
    feats = part.features
    phi = feats[:, 1] * math.pi
    pos = torch.stack([feats[:, 0], torch.sin(phi) / math.pi, torch.cos(phi) / math.pi], 1)
    return BatchInfo(pos=pos, r=feats[:, 2], cu_seqlens=part.cu_seqlens, features=feats,
                     mask=mask, target=feats[:, :3])
