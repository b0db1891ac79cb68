"""Split events with hits and calorimeter cells into eta-phi windows, nothing dropped.

``split_cells(hits, cells, max_tokens)`` extends ``npfm.events.windows.split`` to the
cells of the same events; every window holds at most ``max_tokens`` hits *and* at most
``max_tokens`` cells (two budgets, as the model cuts each kind at ``max_hits``: a window
within both is never cut), and every hit and every cell is in exactly one window:

1. the hits are tiled exactly as ``split`` tiles them (equal-count eta bands x phi
   wedges); an event within both budgets stays one window, hits and cells unchanged;
2. each cell goes to the window whose band and wedge contain its (eta, phi) (eta from
   the origin, as for hits). A band spans the eta range of its hits, a wedge the phi
   range of its hits; a cell between or beyond them goes to the *nearest* one: the
   boundary between neighbouring bands is the midpoint of the gap between them (the
   first band reaches down to -inf, the last up to +inf), and between neighbouring
   wedges the midpoint of their phi gap, the last and first wedge of a band meeting at
   the midpoint of the gap across phi = +-pi. A hitless event is one window, which
   takes all its cells;
3. a window left with more than ``max_tokens`` cells (a shower core, or a hitless event)
   is tiled again, by its own cells (equal-count bands x wedges of them, as in step 1),
   and its hits follow the nearest-range rule of step 2 against those sub-tiles; its
   hits stay within the budget (they were within it before).

``CellWindows`` holds the hit ``Windows`` (``index`` and ``count`` number the final
windows of each event), the windowed cell batch (one segment per window, aligned with
the hit batch's) and ``cell_source``, each windowed cell's packed index in the original
cell batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from npfm.events.loader import PackedBatch
from npfm.events.windows import (
    Tiling,
    Windows,
    check_budget,
    eta_phi,
    event_index,
    tile,
    windowed,
)


@dataclass
class CellWindows:
    """Hit windows, the same windows' cells, and each windowed cell's original index."""

    hits: Windows
    cells: PackedBatch
    cell_source: torch.Tensor


def _ranges(key: torch.Tensor, part: torch.Tensor, n_parts: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(lowest, highest) ``key`` of each part's points (+inf, -inf for an empty part)."""
    lo = key.new_full((n_parts,), math.inf).scatter_reduce(0, part, key, "amin")
    hi = key.new_full((n_parts,), -math.inf).scatter_reduce(0, part, key, "amax")
    return lo, hi


def _nearest(key: torch.Tensor, parent: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
             part_parent: torch.Tensor, n_parents: int, periodic: bool) -> torch.Tensor:
    """The part of each point (``key``, ``parent``) among its parent's parts (numbered
    consecutively, ascending in key, spans ``lo``..``hi``): the one whose span is nearest,
    split at the midpoints of the gaps; ``periodic`` (phi): the last and first part also
    meet across +-pi."""
    n = torch.bincount(part_parent, minlength=n_parents)
    first = torch.cumsum(n, 0) - n
    cut = (hi[:-1] + lo[1:]) / 2  # between part j and j + 1 (when of one parent)
    inner = part_parent[:-1] == part_parent[1:]
    slot = torch.arange(len(cut), device=key.device) - first[part_parent[:-1]]
    width = max(int(n.max()) - 1, 0) if len(n) else 0
    cuts = key.new_full((n_parents, width), math.inf)
    cuts[part_parent[:-1][inner], slot[inner]] = cut[inner]
    part = (cuts[parent] <= key[:, None]).sum(1)
    if periodic:
        last = first + n - 1
        wrap = (hi[last] + lo[first] + 2 * math.pi) / 2  # midpoint across +-pi
        several = (n > 1)[parent]
        part = torch.where(several & (key >= wrap[parent]), 0, part)
        part = torch.where(several & (key < wrap[parent] - 2 * math.pi), n[parent] - 1, part)
    return first[parent] + part


def locate(tiles: Tiling, eta: torch.Tensor, phi: torch.Tensor, eta_of: torch.Tensor,
           phi_of: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    """The tile of each point (``eta_of``, ``phi_of``, ``group``) among the ``tiles`` of
    the points (``eta``, ``phi``) they were built from: the nearest band, then the
    nearest wedge in it (module docstring, step 2)."""
    n_bands, n_tiles = len(tiles.band_owner), len(tiles.owner)
    band = _nearest(eta_of, group, *_ranges(eta, tiles.band, n_bands), tiles.band_owner,
                    n_groups, periodic=False)
    return _nearest(phi_of, band, *_ranges(phi, tiles.window, n_tiles), tiles.tile_band,
                    n_bands, periodic=True)


def split_cells(hits: PackedBatch, cells: PackedBatch, max_tokens: int) -> CellWindows:
    """Each event of ``hits`` (``hit_x/y/z``) and ``cells`` (``cell_x/y/z``, the same
    events) as eta-phi windows of at most ``max_tokens`` hits and ``max_tokens`` cells
    (module docstring)."""
    check_budget(max_tokens)
    if not (torch.equal(hits.run.cpu(), cells.run.cpu())
            and torch.equal(hits.event.cpu(), cells.event.cpu())):
        raise ValueError("the hit and cell batches hold different events; load both with "
                         "the same corpus, batch size, shuffle, seed, rank and epoch")
    n_events = hits.n_events
    h_eta, h_phi = eta_phi(*(hits.fields[f"hit_{c}"] for c in "xyz"))
    c_eta, c_phi = eta_phi(*(cells.fields[f"cell_{c}"] for c in "xyz"))
    h_event = event_index(hits.cu_seqlens)
    c_event = event_index(cells.cu_seqlens).to(h_event.device)
    c_eta, c_phi = c_eta.to(h_eta.device), c_phi.to(h_eta.device)
    # Step 1 and 2: tiles of the hits; the cells go to the nearest one.
    tiles = tile(h_eta, h_phi, h_event, n_events, max_tokens)
    hit_tile = tiles.window
    cell_tile = locate(tiles, h_eta, h_phi, c_eta, c_phi, c_event, n_events)
    n_tiles = len(tiles.owner)
    # Step 3: tiles with too many cells, tiled again by their cells.
    cell_count = torch.bincount(cell_tile, minlength=n_tiles)
    full = cell_count > max_tokens
    n_sub = torch.ones_like(cell_count)
    sub_hit, sub_cell = torch.zeros_like(hit_tile), torch.zeros_like(cell_tile)
    if bool(full.any()):
        number = torch.cumsum(full.long(), 0) - 1  # each full tile's index among them
        n_full = int(full.sum())
        in_cells, in_hits = full[cell_tile], full[hit_tile]
        group_c, group_h = number[cell_tile[in_cells]], number[hit_tile[in_hits]]
        e, p = c_eta[in_cells], c_phi[in_cells]
        sub = tile(e, p, group_c, n_full, max_tokens)
        counts = torch.bincount(sub.owner, minlength=n_full)
        first = torch.cumsum(counts, 0) - counts
        n_sub[full] = counts
        sub_cell[in_cells] = sub.window - first[group_c]
        sub_hit[in_hits] = locate(sub, e, p, h_eta[in_hits], h_phi[in_hits], group_h,
                                  n_full) - first[group_h]
    start = torch.cumsum(n_sub, 0) - n_sub
    owner = torch.repeat_interleave(tiles.owner, n_sub)
    hit_windows = windowed(hits, start[hit_tile] + sub_hit, owner)
    cell_windows = windowed(cells, (start[cell_tile] + sub_cell).to(cells.cu_seqlens.device),
                            owner.to(cells.cu_seqlens.device))
    return CellWindows(hit_windows, cell_windows.batch, cell_windows.source)
