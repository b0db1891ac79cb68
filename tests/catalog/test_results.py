"""Benchmark results JSON in the catalog, with the chain result -> checkpoint -> dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.models import BenchmarkResult, Checkpoint, Dataset, ProvenanceEdge, open_catalog
from npfm.catalog.register import register
from npfm.events.errors import NpfmError


def _results(path: Path, checkpoint: str, dataset: str) -> Path:
    path.write_text(json.dumps({"study": "tracking", "results": [
        {"name": "m-tiny ARI", "task": "tracking", "metric": "ari_event_mean", "value": 0.71,
         "lo": 0.69, "hi": 0.73, "seeds": [0, 1, 2], "checkpoint_sha256": checkpoint,
         "dataset_manifest_sha256": dataset, "config": {"head": "mask2former"}, "n": 300},
        {"name": "m-tiny PID", "task": "pid", "metric": "accuracy", "value": 0.8,
         "seeds": [0], "checkpoint_sha256": checkpoint, "dataset_manifest_sha256": dataset},
    ]}))
    return path


def _walk(session: Session, kind: str, ident: str) -> list[tuple[str, str]]:
    """Follow the first outgoing provenance edge of each node until there is none."""
    chain = [(kind, ident)]
    while True:
        edge = session.scalars(select(ProvenanceEdge).where(
            ProvenanceEdge.source_kind == kind, ProvenanceEdge.source_id == ident)
            .order_by(ProvenanceEdge.relation.desc())).first()
        if edge is None:
            return chain
        kind, ident = edge.target_kind, edge.target_id
        chain.append((kind, ident))


def test_results_link_to_checkpoint_and_dataset(db_url: str, tmp_path: Path,
                                                toy_corpus: Path, toy_run: Path) -> None:
    with open_catalog(db_url)() as session:
        register(toy_corpus, session)
        register(toy_run, session)
        ckpt = session.scalars(select(Checkpoint)).one()
        dataset = session.scalars(select(Dataset)).one()
        path = _results(tmp_path / "results.json", ckpt.model_sha256, dataset.manifest_sha256)
        assert register(path, session) == [f"{path}: 2 result(s) added of 2"]
        ari = session.scalars(select(BenchmarkResult).where(
            BenchmarkResult.metric == "ari_event_mean")).one()
        assert (ari.value, ari.lo, ari.hi, ari.seeds) == (0.71, 0.69, 0.73, [0, 1, 2])
        assert (ari.checkpoint_id, ari.dataset_id) == (ckpt.id, dataset.id)
        assert ari.details["config"] == {"head": "mask2former"}
        assert ari.details["n"] == 300
        assert ari.report_path == str(path.resolve())
        # result -evaluates-> checkpoint -trained_on-> dataset
        assert _walk(session, "benchmark_result", str(ari.id)) == [
            ("benchmark_result", str(ari.id)), ("checkpoint", ckpt.model_sha256),
            ("dataset", dataset.manifest_sha256)]
        evaluated_on = session.scalars(select(ProvenanceEdge).where(
            ProvenanceEdge.relation == "evaluated_on")).all()
        assert len(evaluated_on) == 2
        assert register(path, session)[0] == f"{path}: 0 result(s) added of 2"
        assert len(session.scalars(select(BenchmarkResult)).all()) == 2


def test_unregistered_references_and_bad_entries(tmp_path: Path) -> None:
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        path = _results(tmp_path / "r.json", "c" * 64, "d" * 64)
        messages = register(path, session)
        assert any("checkpoint cccccccccccc is not registered" in m for m in messages)
        assert session.scalars(select(BenchmarkResult.checkpoint_id)).all() == [None, None]
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"results": [{"name": "x", "task": "t", "metric": "m",
                                                "value": "high"}]}))
        with pytest.raises(NpfmError, match=r"bad.json: results\[0\]: field value"):
            register(bad, session)


def test_ensemble_directory_goes_to_the_lattice_registrar(tmp_path: Path) -> None:
    (tmp_path / "ens").mkdir()
    (tmp_path / "ens" / "ensemble.json").write_text(json.dumps({"schema": "something-else"}))
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session, \
            pytest.raises(NpfmError, match=r"ensemble.json: not an"):
        register(tmp_path / "ens", session)
