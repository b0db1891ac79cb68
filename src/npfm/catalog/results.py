"""Benchmark results JSON -> BenchmarkResult rows with provenance edges.

A results file is ``{"results": [{"name", "task", "metric", "value", "lo", "hi",
"seeds", "checkpoint_sha256", "dataset_manifest_sha256", "config", ...}, ...]}``, as the
studies write it. Each result gets ``evaluates`` -> checkpoint and ``evaluated_on`` ->
dataset edges (kinds ``benchmark_result``/``checkpoint``/``dataset``, ids: the result's
row id and the sha256s), so the chain result -> checkpoint -> dataset can be walked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from npfm.catalog.edges import add_edge
from npfm.catalog.inputs import ResultInput, parse
from npfm.catalog.models import BenchmarkResult, Checkpoint, Dataset, ProvenanceEdge
from npfm.events.errors import NpfmError
from npfm.events.shards import read_json


def is_results(doc: Any) -> bool:
    """True for a results JSON document (a dict with a list ``results``)."""
    return isinstance(doc, dict) and isinstance(doc.get("results"), list)


def register_results(path: Path, session: Session) -> list[str]:
    """Add every result of the file (once: a result already there is skipped)."""
    doc = read_json(path, "results JSON")
    if not is_results(doc):
        raise NpfmError(str(path), "no 'results' list", "write {\"results\": [...]}")
    report = str(Path(path).resolve())
    added, messages = 0, []
    for i, raw in enumerate(doc["results"]):
        if not isinstance(raw, dict):
            raise NpfmError(f"{path}: results[{i}]", "not an object", "give a JSON object")
        entry = parse(ResultInput, f"{path}: results[{i}]", **raw)
        checkpoint = dataset = None
        if entry.checkpoint_sha256:
            checkpoint = session.scalar(select(Checkpoint).where(
                Checkpoint.model_sha256 == entry.checkpoint_sha256))
        if entry.dataset_manifest_sha256:
            dataset = session.scalar(select(Dataset).where(
                Dataset.manifest_sha256 == entry.dataset_manifest_sha256))
        same = select(BenchmarkResult).where(
            BenchmarkResult.name == entry.name, BenchmarkResult.task == entry.task,
            BenchmarkResult.metric == entry.metric, BenchmarkResult.report_path == report)
        if session.scalar(same) is not None:
            continue
        extra = entry.model_extra or {}
        result = BenchmarkResult(
            name=entry.name, task=entry.task, metric=entry.metric, value=entry.value,
            lo=entry.lo, hi=entry.hi, seeds=entry.seeds, report_path=report,
            checkpoint_id=checkpoint.id if checkpoint else None,
            dataset_id=dataset.id if dataset else None,
            details={"config": entry.config, **extra,
                     "checkpoint_sha256": entry.checkpoint_sha256,
                     "dataset_manifest_sha256": entry.dataset_manifest_sha256})
        session.add(result)
        session.flush()
        added += 1
        if entry.checkpoint_sha256:
            add_edge(session, "benchmark_result", str(result.id), "checkpoint",
                     entry.checkpoint_sha256, "evaluates")
            if checkpoint is None:
                messages.append(f"{entry.name}: checkpoint {entry.checkpoint_sha256[:12]} "
                                "is not registered (edge kept; register the run)")
        if entry.dataset_manifest_sha256:
            add_edge(session, "benchmark_result", str(result.id), "dataset",
                     entry.dataset_manifest_sha256, "evaluated_on")
            if dataset is None:
                messages.append(f"{entry.name}: dataset {entry.dataset_manifest_sha256[:12]}"
                                " is not registered (edge kept; register the corpus)")
    return [f"{path}: {added} result(s) added of {len(doc['results'])}", *messages]


def derived_results(session: Session, dataset: Dataset) -> list[BenchmarkResult]:
    """Results evaluated on the dataset, or evaluating a checkpoint trained on it."""
    sha = dataset.manifest_sha256
    checkpoints = set(session.scalars(select(ProvenanceEdge.source_id).where(
        ProvenanceEdge.source_kind == "checkpoint", ProvenanceEdge.target_kind == "dataset",
        ProvenanceEdge.target_id == sha)))
    result_ids = {int(i) for i in session.scalars(select(ProvenanceEdge.source_id).where(
        ProvenanceEdge.source_kind == "benchmark_result", or_(
            (ProvenanceEdge.target_kind == "dataset") & (ProvenanceEdge.target_id == sha),
            (ProvenanceEdge.target_kind == "checkpoint")
            & ProvenanceEdge.target_id.in_(checkpoints)))) if i.isdigit()}
    checkpoint_ids = select(Checkpoint.id).where(Checkpoint.model_sha256.in_(checkpoints))
    return list(session.scalars(select(BenchmarkResult).where(or_(
        BenchmarkResult.id.in_(result_ids), BenchmarkResult.dataset_id == dataset.id,
        BenchmarkResult.checkpoint_id.in_(checkpoint_ids))).order_by(BenchmarkResult.id)))
