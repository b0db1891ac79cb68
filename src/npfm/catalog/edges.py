"""Provenance edges of the catalog, added once each."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.models import ProvenanceEdge


def add_edge(session: Session, source_kind: str, source_id: str, target_kind: str,
             target_id: str, relation: str) -> bool:
    """Add a provenance edge unless present (autoflush sees pending ones); True if added."""
    key = {"source_kind": source_kind, "source_id": source_id, "target_kind": target_kind,
           "target_id": target_id, "relation": relation}
    if session.scalar(select(ProvenanceEdge).filter_by(**key)) is not None:
        return False
    session.add(ProvenanceEdge(**key))
    return True
