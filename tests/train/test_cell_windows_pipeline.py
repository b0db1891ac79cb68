"""Pretraining with calorimeter cells on events beyond max_hits: hits and cells split
into the same windows, every hit, cell and waveform in exactly one window."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from npfm.detectors.production import SimulationJob, run_job
from npfm.events.corpus import Corpus
from npfm.events.loader import EventLoader, PackedBatch
from npfm.model.cells import CELL_COLUMNS, Waveforms, waveforms_of
from npfm.train.config import PretrainConfig
from npfm.train.loop import batches, pretrain

MAX_HITS = 48
GUN = {"pdg": (11, 211), "p_range": (0.5, 2.0), "eta_range": (-0.9, 0.9), "count": 12}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 multi-particle gun events each through sPHENIX (hits, cells) and ePIC (hits,
    cells with two-ended BIC waveforms)."""
    out = tmp_path_factory.mktemp("calo")
    for detector, facility in (("sphenix", "RHIC"), ("epic", "EIC")):
        run_job(SimulationJob(detector, "gun", 4, seed=5, shard_events=4, run=5,
                              physics_options={**GUN, "facility": facility}), out / detector)
    return {d: out / d for d in ("sphenix", "epic")}


def _config(path: Path, **changes: Any) -> PretrainConfig:
    settings: dict[str, Any] = {"size": "tiny", "objective": "masked", "batch_events": 4,
                                "steps": 3, "warmup": 1, "checkpoint_every": 3,
                                "max_hits": MAX_HITS, "objects": True, "cells": True}
    return PretrainConfig(corpora=({"path": str(path), "name": "gun"},),
                          **{**settings, **changes})


def _whole(corpus: Path, group: str, **kwargs: Any) -> PackedBatch:
    return next(iter(EventLoader(Corpus.open(corpus), 4, group=group, **kwargs)))


def _cell_keys(cells: PackedBatch) -> list[tuple[Any, ...]]:
    event = torch.repeat_interleave(cells.event, cells.cu_seqlens.diff()).tolist()
    cols = [cells.fields[c].tolist() for c in CELL_COLUMNS]
    return [(e, *row) for e, row in zip(event, zip(*cols, strict=True), strict=True)]


def _wave_keys(cells: PackedBatch, waves: Waveforms) -> Counter[tuple[Any, ...]]:
    keys = _cell_keys(cells)
    return Counter((keys[int(c)], int(end), float(s.sum())) for c, end, s in
                   zip(waves.cell, waves.end, waves.samples, strict=True))


@pytest.mark.parametrize("detector", ["sphenix", "epic"])
def test_one_epoch_holds_every_hit_cell_and_waveform_once(corpora: dict[str, Path],
                                                          detector: str) -> None:
    corpus = corpora[detector]
    hits, cells = _whole(corpus, "hit"), _whole(corpus, "cell", columns=CELL_COLUMNS)
    objects = _whole(corpus, "object")
    waves = waveforms_of(cells, _whole(corpus, "waveform"), _whole(corpus, "sample"))
    n_hits, n_cells = int(hits.cu_seqlens[-1]), int(cells.cu_seqlens[-1])
    assert int(cells.cu_seqlens.diff().max()) > MAX_HITS  # cells beyond the budget
    assert detector == "sphenix" or len(waves.cell) > 0
    seen_hits, seen_cells, seen_objects, windows = 0, [], 0, 0
    seen_waves: Counter[tuple[Any, ...]] = Counter()
    stream = batches(_config(corpus))
    while seen_hits < n_hits or len(seen_cells) < n_cells:  # one epoch
        _, hit, obj, pair = next(stream)
        assert obj is not None
        assert pair is not None
        cell, wave = pair
        assert int(hit.cu_seqlens.diff().max()) <= MAX_HITS
        assert int(cell.cu_seqlens.diff().max()) <= MAX_HITS
        assert torch.equal(hit.event, cell.event)
        assert torch.equal(hit.event, obj.event)
        seen_hits += int(hit.cu_seqlens[-1])
        seen_objects += int(obj.cu_seqlens[-1])
        seen_cells += _cell_keys(cell)
        seen_waves += _wave_keys(cell, wave)
        windows += hit.n_events
    assert seen_hits == n_hits
    assert Counter(seen_cells) == Counter(_cell_keys(cells))  # every cell exactly once
    assert seen_waves == _wave_keys(cells, waves)  # each waveform with its own cell
    assert seen_objects == int(objects.cu_seqlens[-1])
    assert windows >= math.ceil(max(n_hits, n_cells) / MAX_HITS)


def test_pretraining_steps_on_windows_with_cells(corpora: dict[str, Path],
                                                 tmp_path: Path) -> None:
    metrics = pretrain(_config(corpora["sphenix"]), tmp_path / "run")
    assert math.isfinite(metrics["loss"])
    assert metrics["step"] == 3
    assert 0 < metrics["tokens"] <= 4 * MAX_HITS  # 4 windows per step, none over budget
    assert 0 < metrics["cell_token_fraction"] < 1


def test_events_within_budget_give_the_loader_batches(corpora: dict[str, Path]) -> None:
    config = _config(corpora["epic"], max_hits=4000, batch_events=2)
    corpus = Corpus.open(corpora["epic"])

    def loader(group: str, **kwargs: Any) -> EventLoader:
        return EventLoader(corpus, 2, group=group, shuffle=True, seed=config.seed,
                           event_columns=("geometry_id", "data_level"), **kwargs)

    direct = zip(loader("hit"), loader("object"), loader("cell", columns=CELL_COLUMNS),
                 loader("waveform"), loader("sample"), strict=True)
    stream = batches(config)
    for hit, obj, cell, wave, sample in direct:
        _, got_hit, got_obj, pair = next(stream)
        assert got_obj is not None
        assert pair is not None
        for want, got in ((hit, got_hit), (obj, got_obj), (cell, pair[0])):
            assert torch.equal(want.cu_seqlens, got.cu_seqlens)
            assert want.event_fields == got.event_fields
            for name, values in want.fields.items():
                assert torch.equal(values, got.fields[name]), name
        want_waves = waveforms_of(cell, wave, sample)
        for name in ("cell", "end", "samples", "n_samples", "period_ns", "pedestal", "gain"):
            assert torch.equal(getattr(want_waves, name), getattr(pair[1], name)), name
