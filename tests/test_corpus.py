"""Corpus writing: layout, checksums, metadata, atomicity and resume after a kill."""

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from npfm.events import shards
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.metadata import Citation, Provenance
from npfm.events.shards import ROW_GROUP_HITS, row_group_events, sha256_file
from npfm.events.writer import CorpusWriter, file_record, write_indexed_shard


def _writer(path: Path, **kwargs) -> CorpusWriter:
    return CorpusWriter(path, name="t", citation=Citation(title="t"),
                        provenance=Provenance(command="pytest"), shard_events=30, **kwargs)


def test_layout_manifest_and_checksums(corpus_dir: Path, sample_table: pa.Table) -> None:
    corpus = Corpus.open(corpus_dir)
    m = corpus.manifest
    assert m["schema_version"] == 1
    assert m["format"] == "npfm-corpus"
    assert [s["events"] for s in m["shards"]] == [40, 40, 20]
    assert m["events"] == 100
    assert m["hits"] == sum(len(x) for x in sample_table.column("hit_x").to_pylist())
    for shard in m["shards"]:
        assert sha256_file(corpus_dir / shard["path"]) == shard["sha256"]
        assert shard["splits"] == {"train": shard["events"]}
    assert sorted(p.name for p in corpus_dir.iterdir()) == [
        "croissant.json", "datacite.json", "manifest.json", "prov.json", "shards"]
    assert not list(corpus_dir.rglob("*.tmp")), "temporary files left behind"
    assert corpus.validate() == {"events": 100, "hits": m["hits"], "particles": m["particles"],
                                 "objects": 0}


def test_row_groups_are_sized_for_streaming(tmp_path: Path, sample_table: pa.Table,
                                            monkeypatch: pytest.MonkeyPatch,
                                            make_corpus: Callable[..., Path]) -> None:
    hits_per_event = Corpus.open(make_corpus(tmp_path / "a", sample_table)).manifest["hits"] / 100
    assert row_group_events(sample_table) == int(ROW_GROUP_HITS / hits_per_event)
    monkeypatch.setattr(shards, "ROW_GROUP_HITS", 20_000)
    corpus = make_corpus(tmp_path / "b", sample_table, shard_events=100)
    meta = pq.ParquetFile(corpus / "shards/part-00000.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 100
    assert len(sizes) == 5
    assert Corpus.open(corpus).validate()["events"] == 100


def test_citation_and_provenance(tmp_path: Path, sample_table: pa.Table) -> None:
    source = tmp_path / "input.txt"
    source.write_text("raw data")
    w = CorpusWriter(tmp_path / "c", name="prov-test", citation=Citation(
        title="A corpus", creators=("A. Physicist",), year=2026),
        provenance=Provenance(command="npfm build x.yaml", config={"events": 100},
                              inputs=(file_record(source),)))
    w.write(sample_table)
    manifest = w.close()
    assert manifest["citation"]["identifier"] == "urn:npfm:corpus:prov-test"
    datacite = json.loads((tmp_path / "c/datacite.json").read_text())
    assert datacite["titles"] == [{"title": "A corpus"}]
    assert datacite["creators"] == [{"name": "A. Physicist"}]
    assert datacite["publicationYear"] == 2026
    prov = json.loads((tmp_path / "c/prov.json").read_text())
    (activity,) = prov["activity"].values()
    assert activity["npfm:command"] == "npfm build x.yaml"
    assert activity["npfm:config"] == {"events": 100}
    (used,) = [e for e in prov["entity"].values() if e["prov:type"] == "npfm:InputFile"]
    assert used["npfm:sha256"] == sha256_file(source)
    (agent,) = prov["agent"].values()
    assert agent["prov:type"] == "prov:SoftwareAgent"
    assert "npfm:npfm" in agent


def test_resume_after_kill_matches_uninterrupted_build(tmp_path: Path,
                                                       sample_table: pa.Table) -> None:
    whole = _writer(tmp_path / "whole")
    whole.write(sample_table)
    reference = whole.close()

    killed = _writer(tmp_path / "resumed")
    killed.write(sample_table.slice(0, 70))  # two shards finished, 10 events buffered
    del killed  # the process dies: no close(), no manifest
    with pytest.raises(NpfmError, match="unfinished build"):
        Corpus.open(tmp_path / "resumed")

    resumed = _writer(tmp_path / "resumed")
    assert resumed.events_done == 60
    resumed.write(sample_table.slice(resumed.events_done))
    manifest = resumed.close()
    assert [s["sha256"] for s in manifest["shards"]] == \
        [s["sha256"] for s in reference["shards"]]
    assert manifest["events"] == 100
    Corpus.open(tmp_path / "resumed").validate()


def test_resume_refuses_a_different_configuration(tmp_path: Path,
                                                  sample_table: pa.Table) -> None:
    w = _writer(tmp_path / "c")
    w.write(sample_table.slice(0, 40))
    del w
    with pytest.raises(NpfmError, match="different configuration"):
        CorpusWriter(tmp_path / "c", name="t", citation=Citation(title="t"),
                     provenance=Provenance(command="other"), shard_events=30)


def test_writer_refuses_to_overwrite_a_finished_corpus(corpus_dir: Path) -> None:
    with pytest.raises(NpfmError, match="already holds a finished corpus"):
        _writer(corpus_dir)


def test_bad_input_leaves_nothing_written(tmp_path: Path, sample_table: pa.Table) -> None:
    bad = sample_table.slice(0, 10).to_pylist()
    bad[3]["hit_z"][0] = float("nan")
    table = pa.Table.from_pylist(bad, schema=sample_table.schema)
    w = _writer(tmp_path / "c")
    with pytest.raises(NpfmError, match=r"input row 3 column hit_z: non-finite value nan"):
        w.write(table)
    assert not list((tmp_path / "c").rglob("*.parquet"))
    assert not (tmp_path / "c/manifest.json").exists()


def test_parallel_shards_out_of_order_resume_and_gap(tmp_path: Path,
                                                     sample_table: pa.Table) -> None:
    parts = [sample_table.slice(i * 25, 25) for i in range(4)]
    w = _writer(tmp_path / "c")
    for index in (2, 0):  # workers finish in any order
        w.record(write_indexed_shard(w.path, index, parts[index]))
    write_indexed_shard(w.path, 3, parts[3])  # finished on disk, killed before recording
    del w
    resumed = _writer(tmp_path / "c")
    assert resumed.done_indices == {0, 2}
    assert not (tmp_path / "c/shards/part-00003.parquet").exists()  # unrecorded: redone
    resumed.record(write_indexed_shard(resumed.path, 3, parts[3]))
    with pytest.raises(NpfmError, match=r"shard\(s\) \[1\] were never written"):
        resumed.close()
    resumed.record(write_indexed_shard(resumed.path, 1, parts[1]))
    manifest = resumed.close()
    assert [s["path"] for s in manifest["shards"]] == [
        f"shards/part-{i:05d}.parquet" for i in range(4)]
    assert Corpus.open(tmp_path / "c").validate()["events"] == 100
