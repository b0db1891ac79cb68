"""Catalog registration of corpora, runs, geometries and PROV files written by npfm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from npfm.catalog.models import Checkpoint, Dataset, File, Geometry, ProvenanceEdge, open_catalog
from npfm.catalog.register import register
from npfm.events.build import events_to_table
from npfm.events.errors import NpfmError
from npfm.events.metadata import Citation, Provenance
from npfm.events.sample import sample_events
from npfm.events.writer import CorpusWriter, file_record
from npfm.train import checkpoint

SPHENIX = Path(__file__).resolve().parents[2] / "src/npfm/detectors/geometries/sphenix.yaml"


def write_corpus(path: Path, source: Path) -> Path:
    events = sample_events(12, seed=1, mean_tracks=3, noise_hits=2)
    for event in events:
        event["geometry_id"] = "sphenix"
    with CorpusWriter(path, name=path.name, citation=Citation(title=f"{path.name} corpus"),
                      provenance=Provenance(command="pytest", inputs=(file_record(source),)),
                      shard_events=5) as writer:
        writer.write(events_to_table(events))
    return path


def write_run(path: Path, corpus: Path) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    checkpoint.save(path, 7, model, optimizer, {"corpora": [{"path": str(corpus)}]}, {})
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> sessionmaker[Session]:
    return open_catalog(f"sqlite:///{tmp_path}/c.sqlite")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "toy", SPHENIX)


def rows(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Catalog content without database ids or local timestamps."""
    return {
        "datasets": [(d.name, d.manifest_sha256, d.events, d.hits, d.path)
                     for d in session.scalars(select(Dataset).order_by(Dataset.name))],
        "files": sorted((f.path, f.sha256, f.bytes, f.events)
                        for f in session.scalars(select(File))),
        "checkpoints": [(c.model_sha256, c.step, c.config)
                        for c in session.scalars(select(Checkpoint))],
        "geometries": [(g.geometry_id, g.sha256) for g in session.scalars(select(Geometry))],
        "edges": sorted((e.source_kind, e.source_id, e.target_kind, e.target_id, e.relation)
                        for e in session.scalars(select(ProvenanceEdge))),
    }


def test_corpus_files_match_manifest_and_reregistering_adds_nothing(
        catalog: sessionmaker[Session], corpus: Path) -> None:
    manifest = json.loads((corpus / "manifest.json").read_text())
    with catalog() as session:
        (message,) = register(corpus, session)
        assert "3 file(s), 12 events" in message
        dataset = session.scalars(select(Dataset)).one()
        assert dataset.title == "toy corpus"
        assert dataset.hits == manifest["hits"]
        assert dataset.identifier == "urn:npfm:corpus:toy"
        assert [(f.path, f.sha256, f.bytes, f.events) for f in dataset.files] == [
            (s["path"], s["sha256"], s["bytes"], s["events"]) for s in manifest["shards"]]
        assert all(f.replicas[0].url.startswith("file://") for f in dataset.files)
        before = rows(session)
        (again,) = register(corpus, session)
        assert "already registered" in again
        assert rows(session) == before


def test_run_is_trained_on_its_registered_corpus(catalog: sessionmaker[Session],
                                                 corpus: Path, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", corpus)
    with catalog() as session:
        register(corpus, session)
        messages = register(run, session)
        assert any("trained_on dataset toy" in m for m in messages)
        ckpt = session.scalars(select(Checkpoint)).one()
        assert ckpt.step == 7
        assert ckpt.config["corpora"] == [{"path": str(corpus)}]
        edge = session.scalars(select(ProvenanceEdge)).one()
        dataset = session.scalars(select(Dataset)).one()
        assert (edge.source_id, edge.target_id, edge.relation) == (
            ckpt.model_sha256, dataset.manifest_sha256, "trained_on")
        assert not any("edge" in m for m in register(run, session))
        assert len(session.scalars(select(ProvenanceEdge)).all()) == 1


def test_run_with_unregistered_corpus_gets_no_edge(catalog: sessionmaker[Session],
                                                   corpus: Path, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", corpus)
    with catalog() as session:
        messages = register(run, session)
        assert any("is not registered" in m and str(corpus) in m for m in messages)
        assert session.scalars(select(ProvenanceEdge)).all() == []
        assert len(session.scalars(select(Checkpoint)).all()) == 1


def test_geometry_file(catalog: sessionmaker[Session]) -> None:
    with catalog() as session:
        (message,) = register(SPHENIX, session)
        assert message.startswith("geometry sphenix")
        geometry = session.scalars(select(Geometry)).one()
        assert (geometry.geometry_id, geometry.experiment) == ("sphenix", "sPHENIX")
        assert "already registered" in register(SPHENIX, session)[0]


def test_prov_edges_link_shards_to_inputs(catalog: sessionmaker[Session],
                                          corpus: Path) -> None:
    manifest = json.loads((corpus / "manifest.json").read_text())
    with catalog() as session:
        assert "3 derived_from" in register(corpus / "prov.json", session)[0]
        edges = rows(session)["edges"]
    source = file_record(SPHENIX)["sha256"]
    assert edges == sorted(("sha256", s["sha256"], "sha256", source, "derived_from")
                           for s in manifest["shards"])


def test_unknown_path_is_an_npfm_error(catalog: sessionmaker[Session],
                                       tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with catalog() as session:
        for path in (tmp_path / "notes.txt", tmp_path / "missing", tmp_path):
            with pytest.raises(NpfmError, match="not a corpus directory"):
                register(path, session)


def test_second_catalog_gets_the_same_rows(corpus: Path, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", corpus)
    contents = []
    for name in ("a", "b"):
        with open_catalog(f"sqlite:///{tmp_path}/{name}.sqlite")() as session:
            for path in (corpus, run, SPHENIX, corpus / "prov.json"):
                register(path, session)
        with open_catalog(f"sqlite:///{tmp_path}/{name}.sqlite")() as session:
            contents.append(rows(session))
    assert contents[0] == contents[1]
    assert all(contents[0].values())
