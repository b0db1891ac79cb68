"""Catalog registration of corpora, runs, geometries and PROV files written by npfm,
on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SPHENIX, write_toy_corpus
from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.models import (
    Checkpoint,
    Dataset,
    DatasetFacet,
    File,
    Geometry,
    ProvenanceEdge,
    open_catalog,
)
from npfm.catalog.register import register
from npfm.catalog.standard import validate_record
from npfm.events.errors import NpfmError
from npfm.events.writer import file_record


def rows(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Catalog content without database ids or local timestamps."""
    return {
        "datasets": [(d.name, d.manifest_sha256, d.events, d.hits, d.path, d.record)
                     for d in session.scalars(select(Dataset).order_by(Dataset.name))],
        "files": sorted((f.path, f.sha256, f.bytes, f.events, f.adler32)
                        for f in session.scalars(select(File))),
        "checkpoints": [(c.model_sha256, c.step, c.config)
                        for c in session.scalars(select(Checkpoint))],
        "geometries": [(g.geometry_id, g.sha256) for g in session.scalars(select(Geometry))],
        "edges": sorted((e.source_kind, e.source_id, e.target_kind, e.target_id, e.relation)
                        for e in session.scalars(select(ProvenanceEdge))),
    }


def test_corpus_files_facets_record_and_reregistering_adds_nothing(
        db_url: str, toy_corpus: Path) -> None:
    manifest = json.loads((toy_corpus / "manifest.json").read_text())
    with open_catalog(db_url)() as session:
        read: list[int] = []
        (message,) = register(toy_corpus, session, read.append)
        assert "3 file(s), 12 events" in message
        assert sum(read) == sum(s["bytes"] for s in manifest["shards"])
        dataset = session.scalars(select(Dataset)).one()
        assert dataset.title == "toy corpus"
        assert dataset.hits == manifest["hits"]
        assert dataset.identifier == "urn:npfm:corpus:toy"
        assert [(f.path, f.sha256, f.bytes, f.events) for f in dataset.files] == [
            (s["path"], s["sha256"], s["bytes"], s["events"]) for s in manifest["shards"]]
        assert all(f.replicas[0].url.startswith("file://") for f in dataset.files)
        assert all(len(f.adler32 or "") == 8 for f in dataset.files)
        # facets come from the shards' event-level columns
        assert (dataset.facility, dataset.experiment, dataset.collision_system,
                dataset.energy_gev, dataset.detector, dataset.data_level) == (
            "RHIC", "sPHENIX", "pp", 200.0, "sphenix", "simulated")
        facets = {(f.facet, f.value) for f in session.scalars(select(DatasetFacet))}
        assert ("energy_gev", "200") in facets
        assert ("experiment", "sPHENIX") in facets
        validate_record(dataset.record)
        assert dataset.record["provenance"]["command"] == "pytest"
        assert dataset.record["provenance"]["inputs"][0]["sha256"] == file_record(
            SPHENIX)["sha256"]
        before = rows(session)
        (again,) = register(toy_corpus, session)
        assert "already registered" in again
        assert rows(session) == before


def test_facet_search_uses_bound_columns(db_url: str, toy_corpus: Path) -> None:
    with open_catalog(db_url)() as session:
        register(toy_corpus, session)
        hit = session.scalars(select(Dataset).join(DatasetFacet).where(
            DatasetFacet.facet == "collision_system", DatasetFacet.value == "pp")).all()
        miss = session.scalars(select(Dataset).where(Dataset.energy_gev > 1000.0)).all()
        text = session.scalars(select(Dataset).where(Dataset.title.ilike("%TOY%"))).all()
        assert [d.name for d in hit] == ["toy"]
        assert miss == []
        assert len(text) == 1


def test_run_is_trained_on_its_registered_corpus(db_url: str, toy_corpus: Path,
                                                 toy_run: Path) -> None:
    with open_catalog(db_url)() as session:
        register(toy_corpus, session)
        messages = register(toy_run, session)
        assert any("trained_on dataset toy" in m for m in messages)
        ckpt = session.scalars(select(Checkpoint)).one()
        assert ckpt.step == 7
        assert ckpt.config["corpora"] == [{"path": str(toy_corpus)}]
        edge = session.scalars(select(ProvenanceEdge)).one()
        dataset = session.scalars(select(Dataset)).one()
        assert (edge.source_id, edge.target_id, edge.relation) == (
            ckpt.model_sha256, dataset.manifest_sha256, "trained_on")
        assert not any("edge" in m for m in register(toy_run, session))
        assert len(session.scalars(select(ProvenanceEdge)).all()) == 1


def test_a_resumed_run_is_trained_on_its_earlier_corpora_too(tmp_path: Path,
                                                            toy_corpus: Path) -> None:
    import torch

    from npfm.train import checkpoint

    other = write_toy_corpus(tmp_path / "other", events=6)
    model = torch.nn.Linear(3, 2)
    config = {"corpora": [{"path": str(other)}], "history": [
        {"until_step": 4, "changed": ["corpora"], "config": {"corpora": [
            {"path": str(toy_corpus)}]}}]}
    checkpoint.save(tmp_path / "run", 9, model, torch.optim.AdamW(model.parameters()),
                    config, {})
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        register(toy_corpus, session)
        register(other, session)
        messages = register(tmp_path / "run", session)
        assert sum("trained_on dataset" in m for m in messages) == 2
        assert len(session.scalars(select(ProvenanceEdge)).all()) == 2


def test_run_with_unregistered_corpus_gets_no_edge(tmp_path: Path, toy_corpus: Path,
                                                   toy_run: Path) -> None:
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        messages = register(toy_run, session)
        assert any("is not registered" in m and str(toy_corpus) in m for m in messages)
        assert session.scalars(select(ProvenanceEdge)).all() == []
        assert len(session.scalars(select(Checkpoint)).all()) == 1


def test_geometry_and_prov_files(tmp_path: Path, toy_corpus: Path) -> None:
    manifest = json.loads((toy_corpus / "manifest.json").read_text())
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        (message,) = register(SPHENIX, session)
        assert message.startswith("geometry sphenix")
        geometry = session.scalars(select(Geometry)).one()
        assert (geometry.geometry_id, geometry.experiment) == ("sphenix", "sPHENIX")
        assert "already registered" in register(SPHENIX, session)[0]
        assert "3 derived_from" in register(toy_corpus / "prov.json", session)[0]
        edges = rows(session)["edges"]
    source = file_record(SPHENIX)["sha256"]
    assert edges == sorted(("sha256", s["sha256"], "sha256", source, "derived_from")
                           for s in manifest["shards"])


def test_unknown_path_is_an_npfm_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        for path in (tmp_path / "notes.txt", tmp_path):
            with pytest.raises(NpfmError, match="not a corpus directory"):
                register(path, session)
        with pytest.raises(NpfmError, match=r"field path: .*missing does not exist"):
            register(tmp_path / "missing", session)


def test_second_catalog_gets_the_same_rows(db_url: str, tmp_path: Path, toy_corpus: Path,
                                           toy_run: Path) -> None:
    contents = []
    for url in (db_url, f"sqlite:///{tmp_path}/b.sqlite"):
        with open_catalog(url)() as session:
            for path in (toy_corpus, toy_run, SPHENIX, toy_corpus / "prov.json"):
                register(path, session)
        with open_catalog(url)() as session:
            contents.append(rows(session))
    assert contents[0] == contents[1]
    assert all(contents[0].values())
