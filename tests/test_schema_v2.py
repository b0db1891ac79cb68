"""Schema 2: calorimeter cells, truth contributions and waveforms; version-1 corpora read
unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.loader import EventLoader
from npfm.events.sample import sample_events
from npfm.events.schema import SCHEMA_METADATA_KEY, arrow_schema, columns_of
from npfm.events.shards import sha256_file


def _with_cells(event: dict[str, Any]) -> dict[str, Any]:
    """Two cells (the first shared by particles 0 and 1), two waveforms of 3 samples."""
    return {**event, "cell_id": [5, 9], "cell_subsystem": ["CEMC", "HCALIN"],
            "cell_layer": [0, 0], "cell_x": [95.0, 120.0], "cell_y": [1.0, 2.0],
            "cell_z": [3.0, 4.0], "cell_energy": [1.5, 0.2], "cell_time": [3.2, 4.0],
            "cell_truth_cell": [0, 0, 1], "cell_truth_particle": [0, 1, 1],
            "cell_truth_fraction": [0.75, 0.25, 1.0], "waveform_cell": [0, 0],
            "waveform_end": [0, 1], "waveform_n_samples": [3, 3],
            "waveform_period_ns": [2.0, 2.0], "waveform_pedestal": [100.0, 100.0],
            "waveform_gain": [8.0, 8.0], "sample_adc": [100, 400, 250, 101, 390, 240]}


@pytest.fixture(scope="module")
def cell_events() -> list[dict[str, Any]]:
    return [_with_cells(e) if i % 2 else e for i, e in enumerate(sample_events(6, seed=3))]


def test_cells_round_trip_and_load(tmp_path: Path, cell_events: list[dict[str, Any]],
                                   make_corpus: Callable[..., Path]) -> None:
    corpus = Corpus.open(make_corpus(tmp_path / "c", events_to_table(cell_events), 4))
    assert corpus.manifest["schema_version"] == 3
    assert sum(s["cells"] for s in corpus.shards) == 6
    batch = next(iter(EventLoader(corpus, 6, group="cell")))
    assert batch.cu_seqlens.tolist() == [0, 0, 2, 2, 4, 4, 6]
    np.testing.assert_allclose(batch.fields["cell_energy"][:2].numpy(), [1.5, 0.2])
    assert batch.fields["cell_subsystem"][:2].tolist() == [23, 24]  # vocabulary codes
    hits = next(iter(EventLoader(corpus, 6)))
    assert "hit_x" in hits.fields
    assert len(hits.fields["hit_x"]) > 0


@pytest.mark.parametrize(("column", "value", "match"), [
    ("cell_truth_cell", [0, 0, 2], r"row 0 column cell_truth_cell: index 2 outside \[0, 2\)"),
    ("cell_truth_particle", [0, 1, 10_000],
     r"column cell_truth_particle: index 10000 outside \[0, \d+\)"),
    ("cell_truth_fraction", [0.75, 0.5, 1.0], r"fractions of a cell sum to 1.2500, not 1"),
    ("cell_truth_fraction", [1.5, -0.5, 1.0], r"fraction 1.5 outside \[0, 1\]"),
    ("waveform_end", [0, 2], r"column waveform_end: end 2 is not 0 or 1"),
    ("sample_adc", [1, 2, 3], r"column sample_adc: 3 samples but the waveforms claim 6"),
    ("cell_time", [1.0], r"row 0 column cell_time: cell list length differs from cell_energy"),
    ("cell_x", [float("nan"), 1.0], r"row 0 column cell_x: non-finite value nan"),
])
def test_bad_cells_are_refused_in_one_line(cell_events: list[dict[str, Any]], column: str,
                                           value: list[Any], match: str) -> None:
    table = events_to_table([{**cell_events[1], column: value}])
    with pytest.raises(NpfmError, match=match):
        check_table(table, "f.parquet")


def _as_version_1(corpus: Path) -> None:
    """Rewrite every shard and the manifest as an older npfm wrote them (schema 1)."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    names = [c.name for c in columns_of(1)]
    for entry in manifest["shards"]:
        path = corpus / entry["path"]
        table = pq.read_table(path).select(names)
        pq.write_table(table.replace_schema_metadata({SCHEMA_METADATA_KEY: b"1"}), path)
        entry["sha256"], entry["bytes"] = sha256_file(path), path.stat().st_size
        del entry["cells"]
    manifest["schema_version"] = 1
    manifest["bytes"] = sum(e["bytes"] for e in manifest["shards"])
    (corpus / "manifest.json").write_text(json.dumps(manifest))


def test_version_1_corpus_reads_unchanged(tmp_path: Path, sample_table: pa.Table,
                                          make_corpus: Callable[..., Path]) -> None:
    path = make_corpus(tmp_path / "v1", sample_table.slice(0, 12), 8)
    _as_version_1(path)
    before = {p: sha256_file(p) for p in path.glob("shards/*.parquet")}
    corpus = Corpus.open(path)
    assert corpus.validate()["events"] == 12
    table = next(corpus.iter_tables())
    assert table.schema.names == arrow_schema().names
    assert table.column("cell_energy").null_count == table.num_rows
    assert table.column("hit_x").equals(sample_table.slice(0, 8).column("hit_x"))
    hits = sum(len(b.fields["hit_x"]) for b in EventLoader(corpus, 5))
    assert hits == sum(len(x) for x in sample_table.slice(0, 12).column("hit_x").to_pylist())
    cells = list(EventLoader(corpus, 5, group="cell"))
    assert [b.n_events for b in cells] == [5, 5, 2]
    assert all(
        len(b.fields["cell_energy"]) == 0 for b in cells)
    assert {p: sha256_file(p) for p in path.glob("shards/*.parquet")} == before


def test_version_1_shard_with_version_2_columns_is_refused(sample_table: pa.Table) -> None:
    from npfm.events.checks import check_schema

    schema = sample_table.schema.with_metadata({SCHEMA_METADATA_KEY: b"1"})
    with pytest.raises(NpfmError, match=r"unexpected column\(s\) \['cell_energy'"):
        check_schema(schema, "f.parquet")


def test_croissant_describes_the_calorimeter_record_sets(corpus_dir: Path) -> None:
    doc = json.loads((corpus_dir / "croissant.json").read_text())
    sets = {r["@id"]: r for r in doc["recordSet"]}
    assert set(sets) == {"events", "cells", "cell_truth", "waveforms", "samples"}
    cells = {f["name"] for f in sets["cells"]["field"]}
    assert {"run", "event", "cell_energy", "cell_subsystem"} <= cells
    assert all(f["@id"].startswith("cells/") for f in sets["cells"]["field"])
    assert not any(f["name"].startswith("cell") for f in sets["events"]["field"])


def test_content_hash_of_an_event_without_cells_is_as_under_schema_1() -> None:
    from npfm.curate.splits import content_hashes

    table = events_to_table(sample_events(1, seed=1))  # hash pinned from npfm schema 1
    assert content_hashes(table) == [
        "d58dff4084c33f495c9c85074555fbb1cfed12bf285643420c385859515fd36a"]
    with_cells = events_to_table([_with_cells(sample_events(1, seed=1)[0])])
    assert content_hashes(with_cells) != content_hashes(table)


@pytest.mark.filterwarnings("ignore")
def test_mlcroissant_reads_the_cells_record_set(tmp_path: Path,
                                                cell_events: list[dict[str, Any]],
                                                make_corpus: Callable[..., Path]) -> None:
    import itertools

    import mlcroissant as mlc

    corpus = make_corpus(tmp_path / "c", events_to_table(cell_events), 4)
    records = list(itertools.islice(mlc.Dataset(str(corpus / "croissant.json"))
                                    .records("cells"), 2))
    assert records[1]["cells/cell_id"] == [5, 9]
    assert [s.decode() for s in records[1]["cells/cell_subsystem"]] == ["CEMC", "HCALIN"]
    assert records[0]["cells/cell_energy"] is None  # an event without cells: null
