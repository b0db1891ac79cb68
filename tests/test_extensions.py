"""Extension columns (schema 3): integer hit/particle columns kept as given, declared in
the manifest and Croissant, validated, read by every path; older corpora unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlcroissant as mlc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from npfm.curate.splits import content_hashes
from npfm.events.build import events_to_table
from npfm.events.checks import check_schema, check_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.loader import EventLoader
from npfm.events.metadata import Citation, Provenance
from npfm.events.sample import sample_events
from npfm.events.schema import SCHEMA_METADATA_KEY, columns_of
from npfm.events.shards import sha256_file
from npfm.events.writer import CorpusWriter, write_indexed_shard

DOCS = {"hit_ext_volume_id": "TrackML volume_id", "particle_ext_pwflag": "ALEPH truth pwflag"}


def _with_ext(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, ev in enumerate(events):
        n_hits, n_parts = len(ev["hit_x"]), len(ev["particle_pdg"])
        out.append({**ev, "hit_ext_volume_id": np.arange(n_hits) % 3 + 7 * i,
                    "particle_ext_pwflag": np.full(n_parts, -11 + i), "extensions": DOCS})
    return out


@pytest.fixture(scope="module")
def ext_events() -> list[dict[str, Any]]:
    return _with_ext(sample_events(6, seed=11))


@pytest.mark.filterwarnings("ignore")
def test_round_trip_through_writer_reader_loader_and_awkward(
        tmp_path: Path, ext_events: list[dict[str, Any]]) -> None:
    path = tmp_path / "c"
    writer = CorpusWriter(path, name="t", citation=Citation(title="t"),
                          provenance=Provenance(command="pytest"))
    writer.record(write_indexed_shard(path, 0, events_to_table(ext_events), "a"))
    plain = events_to_table(sample_events(3, seed=12))  # a second source without them
    writer.record(write_indexed_shard(path, 1, plain, "b"))  # as a curation writes
    writer.close()
    corpus = Corpus.open(path)
    assert corpus.manifest["schema_version"] == 3
    assert corpus.extensions == DOCS
    assert corpus.manifest["extensions"]["hit_ext_volume_id"]["group"] == "hit"
    assert corpus.validate()["events"] == 9
    shard0 = pq.read_schema(path / corpus.shards[0]["path"])
    assert shard0.field("particle_ext_pwflag").metadata == {b"npfm.description":
                                                            b"ALEPH truth pwflag"}
    # The shard of the source without extensions was given them as nulls at close, so
    # that every shard has one schema (mlcroissant reads a file set column by column).
    assert pq.read_table(path / corpus.shards[1]["path"]).column(
        "hit_ext_volume_id").to_pylist() == [None] * 3
    records = list(mlc.Dataset(str(path / "croissant.json")).records("events"))
    assert [r["events/particle_ext_pwflag"] is None for r in records] == [False] * 6 + [True] * 3
    events = corpus.to_awkward()
    assert len(events) == 9
    for i, ev in enumerate(ext_events):
        assert events.hit_ext_volume_id[i].to_list() == list(ev["hit_ext_volume_id"])
        assert events.particle_ext_pwflag[i].to_list() == list(ev["particle_ext_pwflag"])
    assert events.hit_ext_volume_id[7] is None  # the source without: null, not zero
    batch = next(iter(EventLoader(corpus, 9, columns=["hit_x", "hit_ext_volume_id"])))
    n0 = len(ext_events[0]["hit_x"])
    assert batch.fields["hit_ext_volume_id"][:n0].tolist() == [v % 3 for v in range(n0)]
    assert (batch.fields["hit_ext_volume_id"][batch.cu_seqlens[6]:] == -100).all()
    doc = json.loads((path / "croissant.json").read_text())
    fields = {f["name"]: f for f in doc["recordSet"][0]["field"]}
    assert fields["hit_ext_volume_id"]["description"] == "TrackML volume_id"
    assert fields["particle_ext_pwflag"]["dataType"] == "sc:Integer"


def test_extension_values_enter_the_content_hash(ext_events: list[dict[str, Any]]) -> None:
    other = [{**ev, "particle_ext_pwflag": ev["particle_ext_pwflag"] + 1} for ev in ext_events]
    assert content_hashes(events_to_table(ext_events[:2])) != \
        content_hashes(events_to_table(other[:2]))
    bare = [{k: v for k, v in ev.items() if "_ext_" not in k and k != "extensions"}
            for ev in ext_events[:2]]
    assert content_hashes(events_to_table(bare)) == \
        content_hashes(events_to_table(sample_events(6, seed=11)[:2]))


@pytest.mark.parametrize(("change", "match"), [
    ({"hit_ext_volume_id": [1.5]}, r"row 0 column hit_ext_volume_id: values of type float64 "
                                   r"are not whole numbers"),
    ({"extensions": {}}, r"row 0 column hit_ext_volume_id: extension column without a "
                         r"description"),
    ({"hit_ext_Volume": [1]}, r"unknown field\(s\) \['hit_ext_Volume'\]"),
    ({"object_ext_x": [1]}, r"unknown field\(s\) \['object_ext_x'\]"),
])
def test_bad_extensions_are_refused_in_one_line(ext_events: list[dict[str, Any]],
                                                change: dict[str, Any], match: str) -> None:
    with pytest.raises(NpfmError, match=match):
        events_to_table([{**ext_events[0], **change}])


def test_length_and_type_checks(ext_events: list[dict[str, Any]]) -> None:
    table = events_to_table([{**ext_events[0], "hit_ext_volume_id": [1, 2]}])
    with pytest.raises(NpfmError, match=r"row 0 column hit_ext_volume_id: hit list length "
                                        r"differs from hit_x \(2 vs \d+\)"):
        check_table(table, "f.parquet")
    table = events_to_table(ext_events[:1])
    retyped = table.set_column(table.schema.get_field_index("hit_ext_volume_id"),
                               "hit_ext_volume_id", table.column("hit_ext_volume_id")
                               .cast(pa.list_(pa.float32())))
    with pytest.raises(NpfmError, match="extension column of type list<item: float>"):
        check_schema(retyped.schema, "f.parquet")
    with pytest.raises(NpfmError, match=r"unexpected column\(s\) \['hit_ext_volume_id', "
                                        r"'particle_ext_pwflag'\]; fix: extension columns "
                                        "need schema 3"):
        check_schema(table.schema.with_metadata({SCHEMA_METADATA_KEY: b"2"}), "f.parquet")


def test_undeclared_extension_is_refused_by_validate(
        tmp_path: Path, ext_events: list[dict[str, Any]],
        make_corpus: Callable[..., Path]) -> None:
    path = make_corpus(tmp_path / "c", events_to_table(ext_events), 10)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["extensions"]["particle_ext_pwflag"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NpfmError, match=r"extension column\(s\) \['particle_ext_pwflag'\] "
                                        "not declared in the manifest"):
        Corpus.open(path).validate()
    manifest["extensions"]["hit_ext_x-y"] = {"group": "hit", "type": "int64",
                                             "description": "d"}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NpfmError, match=r"key extensions.hit_ext_x-y: not an extension "
                                        "column name"):
        Corpus.open(path)


def test_version_2_corpus_reads_unchanged(tmp_path: Path, sample_table: pa.Table,
                                          make_corpus: Callable[..., Path]) -> None:
    path = make_corpus(tmp_path / "v2", sample_table.slice(0, 5), 5)
    manifest = json.loads((path / "manifest.json").read_text())
    for entry in manifest["shards"]:  # as npfm wrote schema 2: same columns, version 2
        shard = path / entry["path"]
        table = pq.read_table(shard).select([c.name for c in columns_of(2)])
        pq.write_table(table.replace_schema_metadata({SCHEMA_METADATA_KEY: b"2"}), shard)
        entry["sha256"], entry["bytes"] = sha256_file(shard), shard.stat().st_size
        del entry["extensions"]
    del manifest["extensions"]
    manifest.update(schema_version=2, bytes=sum(e["bytes"] for e in manifest["shards"]))
    (path / "manifest.json").write_text(json.dumps(manifest))
    corpus = Corpus.open(path)
    assert corpus.extensions == {}
    assert corpus.validate()["events"] == 5
    assert corpus.to_awkward().hit_x.to_list() == sample_table.slice(0, 5).column(
        "hit_x").to_pylist()
