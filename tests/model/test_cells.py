"""Calorimeter-cell and waveform tokens, and hits and cells in one backbone sequence."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus
from npfm.events.loader import EventLoader, PackedBatch
from npfm.events.sample import sample_events
from npfm.model.cells import (
    CELL_COLUMNS,
    CELL_FEATURES,
    CellTokenizer,
    WaveformEncoder,
    Waveforms,
    calo_frequencies,
    cell_features,
    waveforms_of,
)
from npfm.model.foundation import FoundationModel
from npfm.train import checkpoint
from npfm.train.config import PretrainConfig
from npfm.train.embed import load_model

PULSE = np.array([0.0, 0.2, 1.0, 0.7, 0.4, 0.2, 0.1, 0.0])  # shape of a SiPM-like pulse


def _with_cells(event: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Three cells; the first two read out at both ends with 8-sample waveforms."""
    pe = rng.uniform(20, 200, 4)
    adc = [int(v) for p in pe for v in np.round(100 + 8 * p * PULSE)]
    return {**event, "geometry_id": "sphenix", "cell_id": [5, 9, 12],
            "cell_subsystem": ["CEMC", "CEMC", "HCALIN"],
            "cell_layer": [0, 1, 0], "cell_x": [95.0, 97.0, 120.0], "cell_y": [1.0, 2.0, 3.0],
            "cell_z": [3.0, 4.0, -5.0], "cell_energy": [1.5, 0.3, 0.2],
            "cell_time": [3.3, 3.5, 4.0], "cell_truth_cell": [0, 1, 2],
            "cell_truth_particle": [0, 0, 1], "cell_truth_fraction": [1.0, 1.0, 1.0],
            "waveform_cell": [0, 0, 1, 1], "waveform_end": [0, 1, 0, 1],
            "waveform_n_samples": [8] * 4, "waveform_period_ns": [2.0] * 4,
            "waveform_pedestal": [100.0] * 4, "waveform_gain": [8.0] * 4, "sample_adc": adc}


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    rng = np.random.default_rng(4)
    return [_with_cells(e, rng) if i % 3 else {**e, "geometry_id": "sphenix"}
            for i, e in enumerate(sample_events(6, seed=5))]


@pytest.fixture
def loaded(tmp_path: Path, events: list[dict[str, Any]], make_corpus: Callable[..., Path]
           ) -> tuple[PackedBatch, PackedBatch, Waveforms]:
    corpus = Corpus.open(make_corpus(tmp_path / "c", events_to_table(events), 6))
    meta = ("geometry_id", "data_level")
    hits = next(iter(EventLoader(corpus, 6, event_columns=meta)))
    cells = next(iter(EventLoader(corpus, 6, group="cell", columns=CELL_COLUMNS,
                                  event_columns=meta)))
    waves = waveforms_of(cells, next(iter(EventLoader(corpus, 6, group="waveform"))),
                         next(iter(EventLoader(corpus, 6, group="sample"))))
    return hits, cells, waves


def test_cell_features_are_finite_and_scaled(loaded: tuple[PackedBatch, ...]) -> None:
    _, cells, _ = loaded
    feats = cell_features(cells.fields, cells.cu_seqlens, cells.event_fields["geometry_id"])
    assert feats.shape == (len(cells.fields["cell_x"]), len(CELL_FEATURES))
    assert torch.isfinite(feats).all()
    assert (feats[:, 3] < 1).all()  # r over the outermost calorimeter's outer radius
    fields = {**cells.fields, "cell_time": torch.full_like(cells.fields["cell_x"], torch.nan)}
    missing = cell_features(fields, cells.cu_seqlens, cells.event_fields["geometry_id"])
    assert (missing[:, 8] == 1).all()
    assert (missing[:, 7] == 0).all()
    freq = calo_frequencies("sphenix", 6)
    assert torch.equal(freq[1], freq[1].round())  # whole azimuthal harmonics
    assert freq[0, -1] == pytest.approx(2 * torch.pi / (2 * 1.1 / 96), rel=1e-5)


def test_waveforms_are_unpacked_per_channel(loaded: tuple[PackedBatch, ...],
                                            events: list[dict[str, Any]]) -> None:
    _, cells, waves = loaded
    assert len(waves.cell) == 4 * sum(1 for e in events if "waveform_cell" in e)
    first = next(e for e in events if "sample_adc" in e)
    np.testing.assert_array_equal(waves.samples[0].numpy(), first["sample_adc"][:8])
    cell_event = torch.repeat_interleave(torch.arange(6), cells.cu_seqlens.diff())
    assert (cell_event[waves.cell] == torch.tensor([1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4,
                                                    5, 5, 5, 5])).all()


def test_waveform_encoder_subtracts_pedestal_and_divides_by_gain() -> None:
    torch.manual_seed(0)
    encoder = WaveformEncoder(16)
    pe = torch.tensor(60 * PULSE, dtype=torch.float32)[None]
    one = torch.ones(1)

    def wave(pedestal: float, gain: float) -> Waveforms:
        return Waveforms(torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                         pedestal + gain * pe, torch.tensor([8]), 2 * one, pedestal * one,
                         gain * one)

    a, b = encoder(wave(0.0, 1.0)), encoder(wave(250.0, 12.5))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    bigger = Waveforms(**{**dataclasses.asdict(wave(0.0, 1.0)), "samples": 3 * pe})
    assert not torch.allclose(encoder(bigger), a)


def test_cell_tokens_are_subsystem_aware_and_take_waveforms(
        loaded: tuple[PackedBatch, ...]) -> None:
    _, cells, waves = loaded
    torch.manual_seed(0)
    tokenizer = CellTokenizer(24)
    plain = tokenizer(cells)
    assert plain.shape == (len(cells.fields["cell_x"]), 24)
    assert torch.isfinite(plain).all()
    other = dataclasses.replace(cells, fields={**cells.fields, "cell_subsystem":
                                               torch.full_like(cells.fields["cell_subsystem"],
                                                               25)})
    assert not torch.allclose(tokenizer(other), plain)
    with_waves = tokenizer(cells, waveforms=waves)
    touched = torch.zeros(len(plain), dtype=torch.bool)
    touched[waves.cell] = True
    torch.testing.assert_close(with_waves[~touched], plain[~touched])
    assert not torch.allclose(with_waves[touched], plain[touched])
    with_waves.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in tokenizer.waveform.parameters())


def _config(**changes: Any) -> PretrainConfig:
    base = PretrainConfig(corpora=({"path": "x", "name": "x"},), size="tiny", max_hits=5000,
                          seed=3)
    return dataclasses.replace(base, **changes)


def test_hits_and_cells_share_one_sequence(loaded: tuple[PackedBatch, ...]) -> None:
    hits, cells, waves = loaded
    torch.manual_seed(0)
    model = FoundationModel(_config(cells=True))
    _layers, perm, cu = model.layers(hits, cells=cells, waveforms=waves)
    n_hits, n_cells = len(hits.fields["hit_x"]), len(cells.fields["cell_x"])
    assert len(perm) == n_hits + n_cells
    assert sorted(perm.tolist()) == list(range(n_hits + n_cells))
    assert cu.diff().tolist() == (hits.cu_seqlens.diff() + cells.cu_seqlens.diff()).tolist()
    event = torch.repeat_interleave(torch.arange(6), cu.diff())
    cell_rows = perm >= n_hits
    for e in range(6):  # each event's cells follow its hits, inside its own segment
        rows = torch.nonzero(event == e).flatten()
        kinds = cell_rows[rows].int()
        assert kinds.tolist() == sorted(kinds.tolist())
    loss, metrics = model(hits, 0, cells=cells, waveforms=waves)
    assert torch.isfinite(loss)
    assert 0 < float(metrics["cell_token_fraction"]) < 1
    loss.backward()
    assert model.cell_tokenizer is not None
    assert model.token_type is not None
    assert model.cell_tokenizer.waveform.out.weight.grad is not None
    assert model.token_type.weight.grad is not None
    model.zero_grad()
    empty = dataclasses.replace(cells, fields={k: v[:0] for k, v in cells.fields.items()},
                                cu_seqlens=torch.zeros_like(cells.cu_seqlens))
    loss, metrics = model(hits, 1, cells=empty)
    loss.backward()  # no cell in the batch: the cell head still gets a (zero) gradient
    assert "cell_token_fraction" not in metrics
    assert model.cell_objective is not None
    assert all(p.grad is not None and not p.grad.any() for p in model.cell_objective.parameters())


def test_models_without_cells_are_unchanged(tmp_path: Path,
                                            loaded: tuple[PackedBatch, ...]) -> None:
    hits, cells, _ = loaded
    torch.manual_seed(0)
    old = FoundationModel(_config())
    torch.manual_seed(0)
    new = FoundationModel(_config(cells=True))
    extra = set(new.state_dict()) - set(old.state_dict())
    assert extra
    assert all(k.split(".")[0] in ("cell_tokenizer", "token_type", "cell_objective")
                         for k in extra)
    for name, value in old.state_dict().items():  # cell modules are built last
        torch.testing.assert_close(new.state_dict()[name], value)
    with pytest.raises(ValueError, match="without cell tokens"):
        old.layers(hits, cells=cells)
    # A checkpoint from before cell tokens (no "cells" in its config) loads as it was.
    saved = checkpoint.save(tmp_path, 1, old, torch.optim.AdamW(old.parameters()),
                            old.config.as_dict(), {}) / "config.json"
    raw = json.loads(saved.read_text())
    raw.pop("cells")
    saved.write_text(json.dumps(raw))
    loaded_model, _ = load_model(tmp_path)
    assert loaded_model.cell_tokenizer is None
    assert loaded_model.token_type is None
    old.eval()
    with torch.no_grad():
        want = old.layers(hits)[0][-1]
        got = loaded_model.layers(hits)[0][-1]
    torch.testing.assert_close(got, want)
