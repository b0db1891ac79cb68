"""Split events into eta-phi windows of at most ``max_tokens`` hits, nothing dropped.

A central Pb+Pb event leaves ~10^5-10^6 TPC hits, far beyond a sequence model's budget.
``split(batch, max_tokens)`` turns each event of a hit ``PackedBatch`` into windows, each
a segment of the returned batch, with every hit in exactly one window:

- an event of n hits needs w = ceil(n / max_tokens) windows; it gets n_eta =
  ceil(sqrt(w)) pseudorapidity bands of equal hit count (hit eta seen from the origin),
  and each band ceil(band / max_tokens) azimuthal wedges of equal count: tiles in the
  detector's own (eta, phi) coordinates (the TPC reads out pad rows inside phi sectors),
  each holding at most ``max_tokens`` hits, w to w + n_eta of them (rounding per band);
  an event with no hit is one empty window (its objects stay with it); inside a window
  hits keep their order in the event;
- the tiles are compact in eta and phi, so a track from the vertex (constant eta,
  helix in phi) stays in one tile unless it crosses a tile edge; the model sees each
  window as its own sequence (no context across windows).

``Windows`` records the split: each window's event (``owner``, index in the original
batch), its index within the event and the event's window count, and ``source``, each
windowed hit's packed index in the original batch (so results map back to hits).
``rebatch`` regroups a stream of windowed (hits, objects) batches into batches of a fixed
number of windows, for training.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from npfm.events.errors import NpfmError
from npfm.events.loader import PackedBatch


@dataclass
class Windows:
    """batch: one segment per window (run, event, event_fields repeated per window);
    source (N,), owner, index, count (W,): int64 tensors, see the module docstring."""

    batch: PackedBatch
    source: torch.Tensor
    owner: torch.Tensor
    index: torch.Tensor
    count: torch.Tensor

    @property
    def n_windows(self) -> int:
        return len(self.owner)

    def slice(self, start: int, stop: int) -> Windows:
        """Windows ``start:stop`` (their hits and records)."""
        cu = self.batch.cu_seqlens
        lo, hi = int(cu[start]), int(cu[stop])
        return Windows(_slice(self.batch, start, stop), self.source[lo:hi],
                       self.owner[start:stop], self.index[start:stop], self.count[start:stop])


def _slice(batch: PackedBatch, start: int, stop: int) -> PackedBatch:
    cu = batch.cu_seqlens
    lo, hi = int(cu[start]), int(cu[stop])
    return PackedBatch({k: v[lo:hi] for k, v in batch.fields.items()},
                       cu[start:stop + 1] - cu[start], batch.run[start:stop],
                       batch.event[start:stop],
                       {k: v[start:stop] for k, v in batch.event_fields.items()})


def _concat(batches: list[PackedBatch]) -> PackedBatch:
    if len(batches) == 1:
        return batches[0]
    counts = torch.cat([b.cu_seqlens[1:] - b.cu_seqlens[:-1] for b in batches])
    return PackedBatch({k: torch.cat([b.fields[k] for b in batches]) for k in batches[0].fields},
                       torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]),
                       torch.cat([b.run for b in batches]), torch.cat([b.event for b in batches]),
                       {k: [x for b in batches for x in b.event_fields[k]]
                        for k in batches[0].event_fields})


def _ranks(key: torch.Tensor, group: torch.Tensor, starts: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Order sorting by (``group``, ``key``) and each element's rank inside its group
    (in that order); ``starts``: each group's first position."""
    order = torch.argsort(key, stable=True)
    order = order[torch.argsort(group[order], stable=True)]
    rank = torch.arange(len(order), device=key.device) - starts[group[order]]
    return order, rank


def _exclusive(counts: torch.Tensor) -> torch.Tensor:
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


def split(batch: PackedBatch, max_tokens: int) -> Windows:
    """Each event of ``batch`` (hits with ``hit_x/y/z``) as eta-phi windows of at most
    ``max_tokens`` hits; events within the budget are one window, hits unchanged."""
    if max_tokens < 1:
        raise NpfmError(f"max_tokens {max_tokens}", "must be >= 1", "give a positive budget")
    cu = batch.cu_seqlens
    device = cu.device
    counts = cu[1:] - cu[:-1]
    n_events = len(counts)
    x, y, z = (batch.fields[k].double() for k in ("hit_x", "hit_y", "hit_z"))
    eta = torch.asinh(z / torch.hypot(x, y).clamp_min(1e-9))
    phi = torch.atan2(y, x)
    event = torch.repeat_interleave(torch.arange(n_events, device=device), counts)
    # Bands in eta: ceil(sqrt(needed windows)) per event, one (empty) for a hitless event.
    needed = torch.div(counts + max_tokens - 1, max_tokens, rounding_mode="floor")
    n_eta = torch.where(counts > 0, torch.ceil(torch.sqrt(needed.double())).long(), 1)
    band_start = _exclusive(n_eta)
    order, rank = _ranks(eta, event, cu[:-1])
    ev = event[order]
    band = torch.empty_like(event)
    band[order] = band_start[ev] + torch.div(rank * n_eta[ev], counts[ev].clamp_min(1),
                                             rounding_mode="floor")
    n_bands = int(band_start[-1])
    band_size = torch.bincount(band, minlength=n_bands)
    band_owner = torch.repeat_interleave(torch.arange(n_events, device=device), n_eta)
    # Wedges in phi inside each band.
    n_phi = torch.div(band_size + max_tokens - 1, max_tokens, rounding_mode="floor")
    n_phi = n_phi.clamp_min(1)
    wedge_start = _exclusive(n_phi)
    order, rank = _ranks(phi, band, _exclusive(band_size)[:-1])
    b = band[order]
    window = torch.empty_like(band)
    window[order] = wedge_start[b] + torch.div(rank * n_phi[b], band_size[b],
                                               rounding_mode="floor")
    order = torch.argsort(window, stable=True)  # hits keep their order inside a window
    n_windows = int(wedge_start[-1])
    owner = torch.repeat_interleave(band_owner, n_phi)
    per_event = torch.bincount(owner, minlength=n_events)
    first = _exclusive(per_event)[:-1]
    sizes = torch.bincount(window, minlength=n_windows)
    idx = owner.tolist()
    out = PackedBatch({k: v[order] for k, v in batch.fields.items()}, _exclusive(sizes),
                      batch.run[owner], batch.event[owner],
                      {k: [v[i] for i in idx] for k, v in batch.event_fields.items()})
    index = torch.arange(n_windows, device=device) - first[owner]
    return Windows(out, order, owner, index, per_event[owner])


def with_objects(windows: Windows, objects: PackedBatch) -> PackedBatch:
    """The object batch of the same events laid out per window: each event's objects go
    with its first window, the others get none (objects stand in for hitless events)."""
    counts = (objects.cu_seqlens[1:] - objects.cu_seqlens[:-1]).to(windows.owner.device)
    per_window = torch.where(windows.index == 0, counts[windows.owner], 0)
    idx = windows.owner.tolist()
    owner = windows.owner.to(objects.run.device)
    return PackedBatch(objects.fields, _exclusive(per_window).to(objects.cu_seqlens.device),
                       objects.run[owner], objects.event[owner],
                       {k: [v[i] for i in idx] for k, v in objects.event_fields.items()})


Pair = tuple[PackedBatch, PackedBatch | None]


def rebatch(pairs: Iterable[Pair], max_tokens: int, windows_per_batch: int) -> Iterator[Pair]:
    """(hit, object) batches of ``windows_per_batch`` windows of at most ``max_tokens``
    hits, from a stream of (hit batch, object batch of the same events or None); the
    windows left at the end of the stream come as one smaller batch."""
    queue: list[Pair] = []
    queued = 0
    for hits, objects in pairs:
        win = split(hits, max_tokens)
        queue.append((win.batch, None if objects is None else with_objects(win, objects)))
        queued += win.n_windows
        while queued >= windows_per_batch:
            yield _take(queue, windows_per_batch)
            queued -= windows_per_batch
    if queued:
        yield _take(queue, queued)


def _take(queue: list[Pair], n: int) -> Pair:
    """The first ``n`` windows of ``queue`` (removed from it)."""
    hits: list[PackedBatch] = []
    objects: list[PackedBatch] = []
    while n:
        head, obj = queue[0]
        take = min(n, head.n_events)
        hits.append(_slice(head, 0, take))
        if obj is not None:
            objects.append(_slice(obj, 0, take))
        if take == head.n_events:
            queue.pop(0)
        else:
            queue[0] = (_slice(head, take, head.n_events),
                        None if obj is None else _slice(obj, take, obj.n_events))
        n -= take
    return _concat(hits), _concat(objects) if objects else None
