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
``tile`` computes the tiles of any points (``npfm.events.cell_windows`` tiles cells with
it too). ``rebatch`` regroups a stream of windowed (hits, objects) batches into batches
of a fixed number of windows, for training (``regroup``: the same for any windowed
batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

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
        return Windows(slice_windows(self.batch, start, stop), self.source[lo:hi],
                       self.owner[start:stop], self.index[start:stop], self.count[start:stop])


def slice_windows(batch: PackedBatch, start: int, stop: int) -> PackedBatch:
    """Segments (windows) ``start:stop`` of ``batch``."""
    cu = batch.cu_seqlens
    lo, hi = int(cu[start]), int(cu[stop])
    return PackedBatch({k: v[lo:hi] for k, v in batch.fields.items()},
                       cu[start:stop + 1] - cu[start], batch.run[start:stop],
                       batch.event[start:stop],
                       {k: v[start:stop] for k, v in batch.event_fields.items()})


def concat_batches(batches: list[PackedBatch]) -> PackedBatch:
    """The segments of ``batches`` (same fields) one after another."""
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


@dataclass
class Tiling:
    """Equal-count eta-phi tiles of points in groups (events): ``window`` (N,), ``band``
    (N,): each point's tile and eta band; ``owner`` (T,), ``tile_band`` (T,): each tile's
    group and band; ``band_owner`` (B,): each band's group. Tiles and bands are numbered
    group by group, bands by ascending eta, tiles inside a band by ascending phi."""

    window: torch.Tensor
    band: torch.Tensor
    owner: torch.Tensor
    tile_band: torch.Tensor
    band_owner: torch.Tensor


def eta_phi(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pseudorapidity seen from the origin and azimuth (rad) of points (cm), float64."""
    x, y, z = x.double(), y.double(), z.double()
    return torch.asinh(z / torch.hypot(x, y).clamp_min(1e-9)), torch.atan2(y, x)


def tile(eta: torch.Tensor, phi: torch.Tensor, group: torch.Tensor, n_groups: int,
         max_tokens: int) -> Tiling:
    """Each group's points as tiles of at most ``max_tokens`` points (module docstring);
    a group without points is one empty tile."""
    device = group.device
    counts = torch.bincount(group, minlength=n_groups)
    needed = torch.div(counts + max_tokens - 1, max_tokens, rounding_mode="floor")
    n_eta = torch.where(counts > 0, torch.ceil(torch.sqrt(needed.double())).long(), 1)
    band_start = _exclusive(n_eta)
    order, rank = _ranks(eta, group, _exclusive(counts)[:-1])
    ev = group[order]
    band = torch.empty_like(group)
    band[order] = band_start[ev] + torch.div(rank * n_eta[ev], counts[ev].clamp_min(1),
                                             rounding_mode="floor")
    band_size = torch.bincount(band, minlength=int(band_start[-1]))
    band_owner = torch.repeat_interleave(torch.arange(n_groups, device=device), n_eta)
    # Wedges in phi inside each band.
    n_phi = torch.div(band_size + max_tokens - 1, max_tokens, rounding_mode="floor")
    n_phi = n_phi.clamp_min(1)
    wedge_start = _exclusive(n_phi)
    order, rank = _ranks(phi, band, _exclusive(band_size)[:-1])
    b = band[order]
    window = torch.empty_like(band)
    window[order] = wedge_start[b] + torch.div(rank * n_phi[b], band_size[b],
                                               rounding_mode="floor")
    tile_band = torch.repeat_interleave(torch.arange(len(n_phi), device=device), n_phi)
    return Tiling(window, band, band_owner[tile_band], tile_band, band_owner)


def split(batch: PackedBatch, max_tokens: int) -> Windows:
    """Each event of ``batch`` (hits with ``hit_x/y/z``) as eta-phi windows of at most
    ``max_tokens`` hits; events within the budget are one window, hits unchanged."""
    check_budget(max_tokens)
    eta, phi = eta_phi(*(batch.fields[k] for k in ("hit_x", "hit_y", "hit_z")))
    tiles = tile(eta, phi, event_index(batch.cu_seqlens), batch.n_events, max_tokens)
    return windowed(batch, tiles.window, tiles.owner)


def check_budget(max_tokens: int) -> None:
    if max_tokens < 1:
        raise NpfmError(f"max_tokens {max_tokens}", "must be >= 1", "give a positive budget")


def event_index(cu_seqlens: torch.Tensor) -> torch.Tensor:
    """(N,) the segment of each packed element."""
    counts = cu_seqlens[1:] - cu_seqlens[:-1]
    return torch.repeat_interleave(torch.arange(len(counts), device=cu_seqlens.device), counts)


def windowed(batch: PackedBatch, window: torch.Tensor, owner: torch.Tensor) -> Windows:
    """``batch`` regrouped by each element's ``window`` (windows of an event consecutive,
    ``owner`` (W,): each window's event); elements keep their order inside a window."""
    order = torch.argsort(window, stable=True)
    n_windows = len(owner)
    per_event = torch.bincount(owner, minlength=batch.n_events)
    first = _exclusive(per_event)[:-1]
    sizes = torch.bincount(window, minlength=n_windows)
    idx = owner.tolist()
    out = PackedBatch({k: v[order] for k, v in batch.fields.items()}, _exclusive(sizes),
                      batch.run[owner], batch.event[owner],
                      {k: [v[i] for i in idx] for k, v in batch.event_fields.items()})
    index = torch.arange(n_windows, device=owner.device) - first[owner]
    return Windows(out, order, owner, index, per_event[owner])


def with_objects(windows: Windows, objects: PackedBatch) -> PackedBatch:
    """The object batch of the same events laid out per window: each event's objects go
    with its first window holding hits (the first window of a hitless event), the others
    get none (objects stand in for hitless events)."""
    counts = (objects.cu_seqlens[1:] - objects.cu_seqlens[:-1]).to(windows.owner.device)
    n_events = len(counts)
    empty = windows.batch.cu_seqlens.diff() == 0
    key = windows.index + torch.where(empty, len(windows.index), 0)
    first = torch.full((n_events,), len(windows.index), dtype=key.dtype, device=key.device)
    first = first.scatter_reduce(0, windows.owner, key, "amin") % max(len(windows.index), 1)
    per_window = torch.where(windows.index == first[windows.owner], counts[windows.owner], 0)
    idx = windows.owner.tolist()
    owner = windows.owner.to(objects.run.device)
    return PackedBatch(objects.fields, _exclusive(per_window).to(objects.cu_seqlens.device),
                       objects.run[owner], objects.event[owner],
                       {k: [v[i] for i in idx] for k, v in objects.event_fields.items()})


Pair = tuple[PackedBatch, PackedBatch | None]
T = TypeVar("T")


def rebatch(pairs: Iterable[Pair], max_tokens: int, windows_per_batch: int) -> Iterator[Pair]:
    """(hit, object) batches of ``windows_per_batch`` windows of at most ``max_tokens``
    hits, from a stream of (hit batch, object batch of the same events or None); the
    windows left at the end of the stream come as one smaller batch."""

    def windowed_pairs() -> Iterator[Pair]:
        for hits, objects in pairs:
            win = split(hits, max_tokens)
            yield win.batch, None if objects is None else with_objects(win, objects)

    return regroup(windowed_pairs(), windows_per_batch, lambda p: p[0].n_events, slice_pair,
                   concat_pairs)


def slice_pair(pair: Pair, start: int, stop: int) -> Pair:
    """Windows ``start:stop`` of a (hit, object or None) pair of windowed batches."""
    hits, objects = pair
    return (slice_windows(hits, start, stop),
            None if objects is None else slice_windows(objects, start, stop))


def concat_pairs(pairs: list[Pair]) -> Pair:
    """(hit, object or None) pairs of windowed batches, one after another."""
    objects = [o for _, o in pairs if o is not None]
    return concat_batches([h for h, _ in pairs]), concat_batches(objects) if objects else None


def regroup(items: Iterable[T], n: int, count: Callable[[T], int],
            cut: Callable[[T, int, int], T], join: Callable[[list[T]], T]) -> Iterator[T]:
    """Batches of ``n`` windows from a stream of windowed batches (``count`` windows each,
    ``cut(item, start, stop)`` takes windows start:stop, ``join`` concatenates); the
    windows left at the end of the stream come as one smaller batch."""
    queue: list[T] = []
    queued = 0
    for item in items:
        queue.append(item)
        queued += count(item)
        while queued >= n:
            yield _take(queue, n, count, cut, join)
            queued -= n
    if queued:
        yield _take(queue, queued, count, cut, join)


def _take(queue: list[T], n: int, count: Callable[[T], int],
          cut: Callable[[T, int, int], T], join: Callable[[list[T]], T]) -> T:
    """The first ``n`` windows of ``queue`` (removed from it)."""
    parts: list[T] = []
    while n:
        head = queue[0]
        size = count(head)
        take = min(n, size)
        parts.append(cut(head, 0, take))
        if take == size:
            queue.pop(0)
        else:
            queue[0] = cut(head, take, size)
        n -= take
    return join(parts)
