"""Events split into eta-phi windows under a token budget: every hit exactly once."""

import itertools
import math

import numpy as np
import pytest
import torch

from npfm.events.errors import NpfmError
from npfm.events.loader import PackedBatch
from npfm.events.windows import rebatch, split, with_objects


def _batch(counts: list[int], seed: int = 0) -> PackedBatch:
    rng = np.random.default_rng(seed)
    n = sum(counts)
    r = rng.uniform(30, 80, n)
    phi = rng.uniform(-math.pi, math.pi, n)
    fields = {"hit_x": torch.tensor(r * np.cos(phi), dtype=torch.float32),
              "hit_y": torch.tensor(r * np.sin(phi), dtype=torch.float32),
              "hit_z": torch.tensor(rng.uniform(-100, 100, n), dtype=torch.float32),
              "hit_layer": torch.arange(n)}
    cu = torch.tensor(np.concatenate([[0], np.cumsum(counts)]), dtype=torch.int64)
    b = len(counts)
    return PackedBatch(fields, cu, torch.ones(b, dtype=torch.int64), torch.arange(b),
                       {"geometry_id": [f"g{i}" for i in range(b)]})


@pytest.mark.parametrize("max_tokens", [1, 7, 50, 1000])
def test_every_hit_in_one_window_within_budget(max_tokens):
    batch = _batch([0, 5, 120, 1, 333])
    win = split(batch, max_tokens)
    sizes = win.batch.cu_seqlens[1:] - win.batch.cu_seqlens[:-1]
    assert int(sizes.max()) <= max_tokens
    assert torch.equal(torch.sort(win.source).values, torch.arange(459))  # exactly once
    for name, values in batch.fields.items():
        assert torch.equal(win.batch.fields[name], values[win.source])
    counts = batch.cu_seqlens[1:] - batch.cu_seqlens[:-1]
    # Each window's hits come from its own event; the records add up per event.
    event_of_hit = torch.repeat_interleave(torch.arange(5), counts)
    window_of_hit = torch.repeat_interleave(torch.arange(win.n_windows), sizes)
    assert torch.equal(event_of_hit[win.source], win.owner[window_of_hit])
    for e in range(5):
        mine = win.owner == e
        n_win = int(mine.sum())
        needed = max(1, math.ceil(int(counts[e]) / max_tokens))
        assert needed <= n_win <= needed + math.ceil(math.sqrt(needed))  # band rounding
        assert torch.equal(win.index[mine], torch.arange(n_win))
        assert bool((win.count[mine] == n_win).all())
    assert torch.equal(win.batch.event, batch.event[win.owner])
    assert win.batch.event_fields["geometry_id"] == [f"g{int(e)}" for e in win.owner]


def test_small_events_are_unchanged_and_windows_are_eta_phi_tiles():
    batch = _batch([10, 20])
    win = split(batch, 20)
    assert torch.equal(win.source, torch.arange(30))
    assert torch.equal(win.batch.cu_seqlens, batch.cu_seqlens)
    big = split(_batch([4000], seed=3), 1000)  # 2 eta bands x 2 phi wedges
    assert big.n_windows == 4
    x, y, z = (big.batch.fields[k].double() for k in ("hit_x", "hit_y", "hit_z"))
    eta, phi = torch.asinh(z / torch.hypot(x, y)), torch.atan2(y, x)
    cu = big.batch.cu_seqlens.tolist()
    parts = [(eta[a:b], phi[a:b]) for a, b in itertools.pairwise(cu)]
    assert [len(e) for e, _ in parts] == [1000] * 4
    assert parts[0][0].max() <= parts[2][0].min()  # band 0 below band 1 in eta
    assert parts[0][1].max() <= parts[1][1].min()  # wedges ordered in phi within a band


def test_rebatch_keeps_objects_with_hitless_events_and_drops_nothing():
    hits = [_batch([0, 30, 3], seed=s) for s in range(3)]
    objects = [PackedBatch({"object_px": torch.arange(6.0)}, torch.tensor([0, 2, 5, 6]),
                           h.run, h.event, {}) for h in hits]
    out = list(rebatch(zip(hits, objects, strict=True), 10, 4))
    # 1 + 4 (2 eta bands x 2 phi wedges) + 1 windows per input batch, 18 in all
    assert [b.n_events for b, _ in out] == [4, 4, 4, 4, 2]
    assert sum(int(b.cu_seqlens[-1]) for b, _ in out) == 99
    assert sum(int(o.cu_seqlens[-1]) for _, o in out if o is not None) == 18
    windows = split(hits[0], 10)
    laid = with_objects(windows, objects[0])
    assert (laid.cu_seqlens[1:] - laid.cu_seqlens[:-1]).tolist() == [2, 3, 0, 0, 0, 1]
    assert torch.equal(laid.event, windows.batch.event)
    assert all(o is None for _, o in rebatch(((h, None) for h in hits), 10, 4))
    with pytest.raises(NpfmError, match="max_tokens 0"):
        split(hits[0], 0)
