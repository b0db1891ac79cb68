"""Descriptions and keywords generated from what a corpus holds, at registration."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import select

from npfm.catalog.models import Dataset, open_catalog
from npfm.catalog.register import register
from npfm.catalog.standard import fair_score


def test_registration_describes_the_corpus_from_its_content(toy_corpus: Path,
                                                            tmp_path: Path) -> None:
    first = pq.read_table(sorted((toy_corpus / "shards").glob("*.parquet"))[0])
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        register(toy_corpus, session)
        dataset = session.scalars(select(Dataset)).one()
        content = dataset.record["content"]
    subsystems = {s for row in first.column("hit_subsystem").to_pylist() for s in row}
    assert set(content["hits_per_event"]) == subsystems
    total = sum(content["hits_per_event"].values()) * content["events"]
    assert abs(total - dataset.hits) <= 0.05 * content["events"] * len(subsystems) + 1
    assert "hit_track_id" in content["labels"]
    for name in subsystems:
        assert name in dataset.description
        assert name in dataset.keywords
    assert "tracking" in dataset.keywords  # tracker subsystems with truth track labels
    assert "sPHENIX" in dataset.description
    assert "200 GeV" in dataset.description
    assert "truth track of each hit" in dataset.description
    missing = {m["field"] for m in fair_score(dataset.record)["missing"]}
    assert not missing & {"description", "keywords"}
