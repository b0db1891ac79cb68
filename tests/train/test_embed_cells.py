"""Frozen per-hit and per-cell embeddings from a tiny run pretrained with calorimeter cells,
on ePIC multi-particle events simulated by the project (hits, cells, two-ended BIC
waveforms) and toy events without cells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from small_corpora import toy_hit_events, write_events

from npfm.detectors.production import SimulationJob, run_job
from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.loader import EventLoader, PackedBatch
from npfm.events.metadata import Citation, Provenance
from npfm.events.writer import CorpusWriter
from npfm.model.cells import CELL_COLUMNS, waveforms_of
from npfm.model.foundation import FoundationModel
from npfm.train.config import PretrainConfig
from npfm.train.embed import embed, load_model
from npfm.train.loop import pretrain

MAX_HITS = 64
WIDTH = 32
GUN = {"pdg": (11, 211), "p_range": (0.5, 2.0), "eta_range": (-0.9, 0.9), "count": 12,
       "facility": "EIC"}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``epic``: 4 simulated gun events (one of ~900 hits and ~190 cells); ``mixed``: the
    same events (alternately train and test) then 2 toy test events without cells;
    ``toy``: toy events only (no cells)."""
    out = tmp_path_factory.mktemp("embed_cells")
    run_job(SimulationJob("epic", "gun", 4, seed=5, shard_events=4, run=5,
                          physics_options=GUN), out / "epic")
    simulated = pq.read_table(out / "epic" / "shards")
    at = simulated.column_names.index("split")
    simulated = simulated.set_column(at, "split", pa.array(
        ["train", "test"] * 2, simulated.schema.field("split").type))
    toy_events = toy_hit_events(2, seed=7, run=9)
    for event in toy_events:
        event["split"] = "test"
    toy = events_to_table(toy_events)
    with CorpusWriter(out / "mixed", name="mixed", citation=Citation(title="mixed"),
                      provenance=Provenance(command="pytest"), shard_events=4) as writer:
        writer.write(simulated)
        writer.write(toy.select(simulated.column_names).cast(simulated.schema))
    write_events(out / "toy", [toy_hit_events(3, seed=8)])
    return {name: out / name for name in ("epic", "mixed", "toy")}


@pytest.fixture(scope="module")
def run(corpora: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 steps with cells (attention backbone: hits and cells share patches, so a hit's
    embedding depends on the cells in its sequence)."""
    config = PretrainConfig(corpora=({"path": str(corpora["epic"]), "name": "gun"},),
                            size="tiny", backbone="attention", objective="masked",
                            batch_events=4, steps=2, warmup=1, checkpoint_every=2,
                            max_hits=MAX_HITS, cells=True)
    path = tmp_path_factory.mktemp("embed_cells") / "run"
    pretrain(config, path)
    return path


def _table(out: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(out.glob("part-*.parquet")))


def _counts(corpus: Path) -> dict[tuple[int, int], tuple[int, int]]:
    table = pq.read_table(corpus / "shards", columns=["run", "event", "hit_x", "cell_x"])
    return {(r["run"], r["event"]): (len(r["hit_x"]), len(r["cell_x"] or []))
            for r in table.to_pylist()}


def test_every_hit_and_cell_embedded_once(tmp_path: Path, corpora: dict[str, Path],
                                          run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[tuple[int, int]] = []
    layers = FoundationModel.layers

    def counted(self: FoundationModel, batch: PackedBatch, *args: Any, **kwargs: Any) -> Any:
        cells = kwargs["cells"]
        passes.append((int(batch.cu_seqlens[-1]), int(cells.cu_seqlens[-1])))
        return layers(self, batch, *args, **kwargs)

    monkeypatch.setattr(FoundationModel, "layers", counted)
    # Batches of 3: the simulated events, then one mixing a simulated and two toy events.
    summary = embed(run, corpora["mixed"], tmp_path / "emb", batch_events=3)
    # Bounded forward passes: at most batch_events * max_hits tokens of each kind.
    assert max(h for h, _ in passes) <= 3 * MAX_HITS
    assert MAX_HITS < max(c for _, c in passes) <= 3 * MAX_HITS
    assert summary == json.loads((tmp_path / "emb" / "embeddings.json").read_text())
    table = _table(tmp_path / "emb")
    assert table.column_names == [
        "run", "event", "n_hits", "n_windows", "hit_index", "hit_window", "embedding",
        "n_cells", "cell_index", "cell_window", "cell_embedding"]
    assert table.schema.field("n_cells").type == pa.int32()
    assert table.schema.field("cell_index").type == pa.list_(pa.int32())
    expected = _counts(corpora["mixed"])
    assert table.num_rows == len(expected) == 6
    assert summary["cells"] is True
    assert summary["columns"] == ["embedding"]
    assert summary["cell_columns"] == ["cell_embedding"]
    assert summary["n_cells"] == summary["embedded_cells"] == sum(c for _, c in
                                                                   expected.values())
    assert summary["hits"] == summary["embedded_hits"] == sum(h for h, _ in expected.values())
    windowed = empty = 0
    for row in table.to_pylist():
        n_hits, n_cells = expected[(row["run"], row["event"])]
        assert (row["n_hits"], row["n_cells"]) == (n_hits, n_cells)
        assert row["hit_index"] == list(range(n_hits))
        assert row["cell_index"] == list(range(n_cells))  # every cell, exactly once
        cell_windows = row["cell_window"]
        assert set(cell_windows) | set(row["hit_window"]) <= set(range(row["n_windows"]))
        assert all(cell_windows.count(w) <= MAX_HITS for w in set(cell_windows))
        emb = np.array(row["cell_embedding"], dtype=np.float32).reshape(n_cells, WIDTH)
        assert np.isfinite(emb).all()
        assert len(np.unique(emb.round(5), axis=0)) == n_cells  # cells are told apart
        if n_cells > MAX_HITS:  # cells beyond the budget: windowed, none dropped
            assert row["n_windows"] > 1
            assert len(set(cell_windows)) > 1
            windowed += 1
        if n_cells == 0:
            assert row["cell_window"] == []
            assert row["cell_embedding"] == []
            empty += 1
    assert windowed >= 1
    assert empty == 2  # the toy events


def test_a_split_keeps_its_events_cells(tmp_path: Path, corpora: dict[str, Path],
                                        run: Path) -> None:
    embed(run, corpora["mixed"], tmp_path / "whole", batch_events=2)
    rows = {(r["run"], r["event"]): r for r in _table(tmp_path / "whole").to_pylist()}
    summary = embed(run, corpora["mixed"], tmp_path / "test", split="test", batch_events=2)
    part = _table(tmp_path / "test")
    assert part.num_rows == summary["events"] == 4  # 2 simulated, 2 toy
    assert summary["n_cells"] == summary["embedded_cells"] == sum(part.column(
        "n_cells").to_pylist()) > 0
    for row in part.to_pylist():
        same = rows[(row["run"], row["event"])]
        for name in ("n_hits", "n_cells", "n_windows", "hit_window", "cell_window"):
            assert row[name] == same[name], name
        for name in ("embedding", "cell_embedding"):
            np.testing.assert_allclose(np.array(row[name], dtype=np.float32).reshape(-1),
                                       np.array(same[name], dtype=np.float32).reshape(-1),
                                       atol=5e-4, rtol=0)


def _event(corpus: Path, key: tuple[int, int], group: str, **kwargs: Any) -> PackedBatch:
    for batch in EventLoader(Corpus.open(corpus), 1, group=group, **kwargs):
        if (int(batch.run[0]), int(batch.event[0])) == key:
            return batch
    raise AssertionError(f"event {key} not in {corpus}")


def _subset(batch: PackedBatch, keep: torch.Tensor) -> PackedBatch:
    """The elements of a one-event batch where ``keep``, in their order."""
    return PackedBatch({k: v[keep] for k, v in batch.fields.items()},
                       torch.tensor([0, int(keep.sum())]), batch.run, batch.event,
                       batch.event_fields)


def test_cell_and_hit_embeddings_equal_a_direct_forward_pass(
        tmp_path: Path, corpora: dict[str, Path], run: Path) -> None:
    """One window of the event beyond the budget, fed to ``model.layers`` by hand."""
    embed(run, corpora["mixed"], tmp_path / "all", layers="all", batch_events=1)
    table = _table(tmp_path / "all")
    row = max(table.to_pylist(), key=lambda r: r["n_cells"])
    assert row["n_cells"] > MAX_HITS
    assert row["n_windows"] > 1
    key = (row["run"], row["event"])
    model, _ = load_model(run)
    hits = _event(corpora["mixed"], key, "hit", event_columns=("geometry_id", "data_level"))
    cells = _event(corpora["mixed"], key, "cell", columns=CELL_COLUMNS)
    waves = waveforms_of(cells, _event(corpora["mixed"], key, "waveform"),
                         _event(corpora["mixed"], key, "sample"))
    # The window holding most cells; its hits and cells keep their order in the event.
    cell_window = torch.tensor(row["cell_window"])
    window = int(torch.bincount(cell_window).argmax())
    in_cells, in_hits = cell_window == window, torch.tensor(row["hit_window"]) == window
    assert 0 < int(in_cells.sum()) <= MAX_HITS
    assert 0 < int(in_hits.sum()) <= MAX_HITS
    first = torch.cat([in_cells.nonzero().flatten(), (~in_cells).nonzero().flatten()])
    window_waves = waves.reindexed(first).of_cells(0, int(in_cells.sum()))
    assert len(window_waves.cell) > 0  # the BIC's two-ended readout
    outs, perm, _ = model.layers(_subset(hits, in_hits), cells=_subset(cells, in_cells),
                                 waveforms=window_waves)
    hit_ids, cell_ids = in_hits.nonzero().flatten(), in_cells.nonzero().flatten()
    n_hits = len(hit_ids)
    is_cell = perm >= n_hits
    alone, perm_alone, _ = model.layers(_subset(hits, in_hits))  # without the cells
    for i, out in enumerate(outs):
        got_cells = np.array(row[f"cell_layer_{i:02d}"], dtype=np.float32)
        got_hits = np.array(row[f"layer_{i:02d}"], dtype=np.float32)
        np.testing.assert_allclose(got_cells[cell_ids[perm[is_cell] - n_hits]],
                                   out[is_cell].numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(got_hits[hit_ids[perm[~is_cell]]], out[~is_cell].numpy(),
                                   atol=1e-5, rtol=1e-5)
    # The hit embeddings were computed with the window's cells in the sequence: they
    # differ from a forward pass of the window's hits alone.
    last = np.array(row[f"layer_{len(outs) - 1:02d}"], dtype=np.float32)
    assert np.abs(last[hit_ids[perm_alone]] - alone[-1].numpy()).max() > 1e-3


def test_cells_run_on_a_corpus_without_cells(tmp_path: Path, corpora: dict[str, Path],
                                             run: Path) -> None:
    with pytest.raises(NpfmError) as error:
        embed(run, corpora["toy"], tmp_path / "x")
    message = str(error.value)
    assert "\n" not in message
    assert str(corpora["toy"]) in message
    assert "holds no calorimeter cells" in message
    assert "embed a corpus with calorimeter cells" in message
    assert "cells: false" in message
    assert not (tmp_path / "x").exists()
