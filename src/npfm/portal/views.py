"""Catalog look-ups shared by the pages and the API: files, results as JSON."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from npfm.catalog.models import BenchmarkResult, File
from npfm.portal.downloads import Adler32Cache, contained_path

T = TypeVar("T")


def file_entries(session: Session, dataset_id: int, limit: int, offset: int,
                 adler32: Adler32Cache) -> list[dict[str, Any]]:
    """One page of a dataset's files: sha256, adler32 (catalog, replica or computed from
    the local copy), size in bytes, replicas and the download link."""
    files = session.scalars(select(File).where(File.dataset_id == dataset_id)
                            .options(selectinload(File.replicas), selectinload(File.dataset))
                            .order_by(File.id).limit(limit).offset(offset))
    out = []
    for file in files:
        adler = file.adler32 or next((r.adler32 for r in file.replicas if r.adler32), None)
        if adler is None:
            try:
                adler = adler32.get(contained_path(file.dataset.path, file.path))
            except (HTTPException, OSError):  # no local copy: the checksum stays unknown
                adler = None
        out.append({"id": file.id, "path": file.path, "bytes": file.bytes,
                    "events": file.events, "sha256": file.sha256, "adler32": adler,
                    "download": f"/files/{file.id}",
                    "replicas": [{"site": r.site, "url": r.url, "status": r.status}
                                 for r in file.replicas]})
    return out


def result_dict(result: BenchmarkResult) -> dict[str, Any]:
    """A benchmark result as JSON-ready values (interval ``lo``..``hi``)."""
    return {"id": result.id, "name": result.name, "task": result.task,
            "metric": result.metric, "value": result.value, "lo": result.lo,
            "hi": result.hi, "seeds": result.seeds, "dataset_id": result.dataset_id,
            "checkpoint_id": result.checkpoint_id, "report_path": result.report_path,
            "created": result.created.isoformat() if result.created else None,
            "link": f"/results/{result.id}"}


def row_or_404(session: Session, model: type[T], row_id: int, what: str) -> T:
    """The ``model`` row with id ``row_id``, else HTTP 404 ``no WHAT ROW_ID``."""
    row = session.get(model, row_id)
    if row is None:
        raise HTTPException(404, f"no {what} {row_id}")
    return row
