"""mlcroissant reads the records of a corpus through its Croissant description."""

import itertools
import json
from pathlib import Path

import mlcroissant as mlc
import numpy as np
import pyarrow as pa
import pytest

from npfm.events.metadata import GROUP_RECORD_SETS
from npfm.events.schema import COLUMNS


@pytest.mark.filterwarnings("ignore")
def test_mlcroissant_reads_records(corpus_dir: Path, sample_table: pa.Table) -> None:
    dataset = mlc.Dataset(str(corpus_dir / "croissant.json"))
    records = list(itertools.islice(dataset.records("events"), 45))
    assert len(records) == 45
    by_event = {r["events/event"]: r for r in records}
    for i in (0, 41):  # first shard and second shard
        row = sample_table.slice(i, 1).to_pylist()[0]
        record = by_event[i]
        assert record["events/experiment"] == b"sPHENIX"
        np.testing.assert_allclose(record["events/hit_x"], np.float32(row["hit_x"]))
        assert [s.decode() for s in record["events/hit_subsystem"]] == row["hit_subsystem"]
        assert record["events/hit_t"] is None  # null stays null


def test_croissant_lists_shards_with_checksums_and_all_fields(corpus_dir: Path) -> None:
    doc = json.loads((corpus_dir / "croissant.json").read_text())
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    files = {d["contentUrl"]: d["sha256"] for d in doc["distribution"]
             if d["@type"] == "cr:FileObject"}
    assert files == {s["path"]: s["sha256"] for s in manifest["shards"]}
    fields = {f["name"] for f in doc["recordSet"][0]["field"]}
    nested = {"particle_nhits", "object_nhits"}  # lists of lists: not a Croissant field
    own = set(GROUP_RECORD_SETS)  # cells, their truth, waveforms: own record sets
    assert fields == {c.name for c in COLUMNS if c.level not in own} - nested
    assert doc["license"]
    assert doc["citeAs"]
    assert doc["conformsTo"].endswith("croissant/1.1")
