"""Hits and calorimeter cells split into the same eta-phi windows: every hit and every
cell exactly once, at most ``max_tokens`` of each per window, cells by position."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from npfm.events.cell_windows import split_cells
from npfm.events.errors import NpfmError
from npfm.events.loader import PackedBatch
from npfm.events.windows import split, with_objects
from npfm.model.cells import Waveforms


def _batch(kind: str, points: list[list[tuple[float, float]]], r: float) -> PackedBatch:
    """One segment per event of points (eta, phi rad) at radius ``r`` cm."""
    flat = np.array([p for event in points for p in event], dtype=float).reshape(-1, 2)
    eta, phi = flat[:, 0], flat[:, 1]
    fields = {f"{kind}_x": torch.tensor(r * np.cos(phi)),
              f"{kind}_y": torch.tensor(r * np.sin(phi)),
              f"{kind}_z": torch.tensor(r * np.sinh(eta)), f"{kind}_id": torch.arange(len(flat))}
    cu = torch.tensor(np.concatenate([[0], np.cumsum([len(e) for e in points])]))
    n = len(points)
    return PackedBatch(fields, cu, torch.ones(n, dtype=torch.int64), torch.arange(n),
                       {"geometry_id": ["sphenix"] * n})


def _random(counts: list[int], seed: int, spread: float = 1.0) -> list[list[tuple[float, float]]]:
    rng = np.random.default_rng(seed)
    return [[(float(rng.normal(0, spread)), float(rng.uniform(-math.pi, math.pi)))
             for _ in range(n)] for n in counts]


@pytest.mark.parametrize("max_tokens", [1, 3, 16, 1000])
def test_every_hit_and_cell_in_one_window_within_both_budgets(max_tokens: int) -> None:
    hits = _batch("hit", _random([0, 40, 7, 300, 2], 1), 50.0)
    # Cells clustered in eta (showers), so hit windows overflow with cells.
    cells = _batch("cell", _random([25, 90, 0, 150, 60], 2, spread=0.1), 120.0)
    win = split_cells(hits, cells, max_tokens)
    n_win = win.hits.n_windows
    hit_sizes, cell_sizes = win.hits.batch.cu_seqlens.diff(), win.cells.cu_seqlens.diff()
    assert len(cell_sizes) == n_win
    assert int(hit_sizes.max()) <= max_tokens
    assert int(cell_sizes.max()) <= max_tokens
    assert torch.equal(torch.sort(win.hits.source).values, torch.arange(349))  # exactly once
    assert torch.equal(torch.sort(win.cell_source).values, torch.arange(325))
    assert torch.equal(win.cells.fields["cell_id"], win.cell_source)
    # Each window's cells come from its own event; windows of an event are numbered.
    cell_event = torch.repeat_interleave(torch.arange(5), cells.cu_seqlens.diff())
    window_of_cell = torch.repeat_interleave(torch.arange(n_win), cell_sizes)
    assert torch.equal(cell_event[win.cell_source], win.hits.owner[window_of_cell])
    assert torch.equal(win.cells.event, win.hits.batch.event)
    for e in range(5):
        mine = win.hits.owner == e
        assert torch.equal(win.hits.index[mine], torch.arange(int(mine.sum())))
    need = [max(1, math.ceil(max(h, c) / max_tokens)) for h, c in
            zip(hits.cu_seqlens.diff().tolist(), cells.cu_seqlens.diff().tolist(), strict=True)]
    assert torch.bincount(win.hits.owner, minlength=5).ge(torch.tensor(need)).all()


def test_cells_go_to_the_window_of_their_band_and_wedge_or_the_nearest() -> None:
    # 2 eta bands (hits at eta -1, -0.8 and 0.5, 1.0) x 2 phi wedges, two hits per window.
    tiles = [(-1.0, 0.1), (-0.8, 2.0), (0.5, -3.0), (1.0, 3.0)]
    hits = _batch("hit", [[p for p in tiles for _ in range(2)]], 50.0)
    assert split(hits, 2).n_windows == 4
    cells = _batch("cell", [[(-0.9, 1.0),    # inside the low band, nearer wedge phi 0.1
                             (-0.1, 0.5),    # in the eta gap, nearer the high band
                             (-3.0, -2.5),   # below every band; across -pi, nearer 2.0
                             (5.0, -3.1)]],  # above every band; nearer -3.0 than 3.0
                   120.0)
    win = split_cells(hits, cells, 2)
    assert win.hits.n_windows == 4  # the hit windows stand: no window overflows
    assert torch.equal(win.hits.batch.fields["hit_id"], split(hits, 2).batch.fields["hit_id"])
    window_of_cell = torch.repeat_interleave(torch.arange(4), win.cells.cu_seqlens.diff())
    assert dict(zip(win.cell_source.tolist(), window_of_cell.tolist(), strict=True)) == {
        0: 0, 1: 3, 2: 1, 3: 2}


def test_events_within_budget_are_unchanged() -> None:
    hits = _batch("hit", _random([10, 0, 20], 3), 50.0)
    cells = _batch("cell", _random([5, 9, 20], 4), 120.0)
    win = split_cells(hits, cells, 20)
    assert torch.equal(win.hits.batch.cu_seqlens, hits.cu_seqlens)
    assert torch.equal(win.hits.source, torch.arange(30))
    assert torch.equal(win.cells.cu_seqlens, cells.cu_seqlens)
    assert torch.equal(win.cell_source, torch.arange(34))


def test_objects_go_with_the_first_window_holding_hits() -> None:
    # Event 0: 2 hits, 9 cells in a cluster elsewhere; event 1: no hit, 9 cells.
    hits = _batch("hit", [[(2.0, 3.0), (2.1, 3.0)], []], 50.0)
    cells = _batch("cell", [[(-2.0, 0.0)] * 9, [(0.0, 0.0)] * 9], 120.0)
    win = split_cells(hits, cells, 3)
    objects = PackedBatch({"object_px": torch.arange(5.0)}, torch.tensor([0, 2, 5]),
                          hits.run, hits.event, {})
    laid = with_objects(win.hits, objects)
    per_window = laid.cu_seqlens.diff()
    has_hits = win.hits.batch.cu_seqlens.diff() > 0
    assert int(per_window.sum()) == 5
    first_with_hits = int(torch.nonzero((win.hits.owner == 0) & has_hits)[0])
    assert int(per_window[first_with_hits]) == 2
    assert int(per_window[int(torch.nonzero(win.hits.owner == 1)[0])]) == 3


def test_waveforms_follow_their_cells() -> None:
    hits = _batch("hit", _random([50, 30], 5), 50.0)
    cells = _batch("cell", _random([40, 35], 6, spread=0.2), 120.0)
    n_cells = 75
    cell = torch.arange(n_cells).repeat_interleave(2)  # both ends of every cell
    length = 4
    waves = Waveforms(cell, torch.arange(2 * n_cells) % 2,
                      cell.float()[:, None].expand(-1, length).clone(),
                      torch.full((2 * n_cells,), length), torch.ones(2 * n_cells),
                      torch.zeros(2 * n_cells), torch.ones(2 * n_cells))
    win = split_cells(hits, cells, 8)
    moved = waves.reindexed(win.cell_source)
    ids = win.cells.fields["cell_id"]
    assert torch.equal(ids[moved.cell], moved.samples[:, 0].long())  # samples carry the id
    cu = win.cells.cu_seqlens
    cut = 5
    parts = [moved.of_cells(0, int(cu[cut])), moved.of_cells(int(cu[cut]), int(cu[-1]))]
    back = Waveforms.concat(parts, [int(cu[cut]), int(cu[-1] - cu[cut])])
    assert len(back.cell) == 2 * n_cells
    assert torch.equal(ids[back.cell], back.samples[:, 0].long())


def test_mismatched_events_and_bad_budget_are_refused() -> None:
    hits = _batch("hit", _random([3, 3], 7), 50.0)
    cells = _batch("cell", _random([3], 8), 120.0)
    with pytest.raises(ValueError, match="different events"):
        split_cells(hits, cells, 4)
    with pytest.raises(NpfmError, match="max_tokens"):
        split_cells(hits, _batch("cell", _random([1, 1], 8), 120.0), 0)
