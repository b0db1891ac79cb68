"""The REST API under ``/api/v1``: public reads, token-scoped writes, paginated listings."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from npfm.catalog import federation
from npfm.catalog.exports import schema_org_jsonld
from npfm.catalog.facets import normalise
from npfm.catalog.models import ApiToken, BenchmarkResult, Dataset, DatasetFacet, File
from npfm.catalog.results import derived_results
from npfm.catalog.standard import dataset_record, fair_score
from npfm.portal import curation, events_view, provenance
from npfm.portal.app import db, state
from npfm.portal.auth import require
from npfm.portal.cache import cached
from npfm.portal.schemas import (
    MAX_LIMIT,
    MAX_OFFSET,
    AnnotationIn,
    FileEntry,
    Page,
    ReplicaIn,
    SearchPage,
    SearchQuery,
)
from npfm.portal.search import Query as SearchSpec
from npfm.portal.search import search, summary
from npfm.portal.views import file_entries, result_dict, row_or_404

router = APIRouter(tags=["catalog"])
#: Annotated fields that are also search facets (their facet rows follow the column).
FACET_FIELDS = ("facility", "experiment", "collision_system", "energy_gev", "detector",
                "data_level", "license")
DB = Annotated[Session, Depends(db)]
DatasetId = Annotated[int, Path(ge=1, le=2**62, description="catalog dataset id")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def next_link(request: Request, total: int, limit: int, offset: int) -> str | None:
    """The URL of the next page, or None on the last page."""
    if offset + limit >= total:
        return None
    params = dict(request.query_params)
    params.update(limit=str(limit), offset=str(offset + limit))
    return f"{request.url.path}?{urlencode(params)}"


def dataset_or_404(session: Session, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise HTTPException(404, f"no dataset {dataset_id}")
    return dataset


def dataset_with_files(session: Session, dataset_id: int) -> Dataset:
    """The dataset with its files, their replicas and its facet rows loaded in 3 queries
    (the standard record reads them all)."""
    dataset = session.scalar(select(Dataset).where(Dataset.id == dataset_id).options(
        selectinload(Dataset.files).selectinload(File.replicas),
        selectinload(Dataset.facets)))
    if dataset is None:
        raise HTTPException(404, f"no dataset {dataset_id}")
    return dataset


@router.get("/search", response_model=SearchPage)
async def search_datasets(params: SearchQuery, request: Request) -> Response:
    """Faceted full-text (``mode=text``) or semantic (``mode=semantic``) dataset search."""
    portal = state(request)

    def reply(session: Session, generation: int) -> bytes:
        spec = SearchSpec(params.q, params.mode, params.filters(), params.limit, params.offset)
        found = search(session, spec, portal.facets.at(session, generation), portal.vectors)
        return SearchPage.model_validate({
            "total": found.total, "limit": params.limit, "offset": params.offset,
            "next": next_link(request, found.total, params.limit, params.offset),
            "items": found.items, "facets": found.facets}).model_dump_json().encode()

    body = await cached(portal.replies, portal.sessions, ("api", request.url.query), reply,
                        portal.quick(params.mode, params.q))
    return Response(body, media_type="application/json")


@router.get("/datasets/{dataset_id}")
def get_dataset(dataset_id: DatasetId, session: DB) -> dict[str, Any]:
    """The dataset's standard record, FAIR score and schema.org JSON-LD."""
    dataset = dataset_with_files(session, dataset_id)
    record = dataset_record(dataset)
    return {"id": dataset.id, "record": record, "fair": fair_score(record),
            "jsonld": schema_org_jsonld(dataset)}


@router.get("/datasets/{dataset_id}/files", response_model=Page)
def list_files(dataset_id: DatasetId, request: Request, session: DB, limit: Limit = 50,
               offset: Offset = 0) -> dict[str, Any]:
    """The dataset's files with sha256, adler32, replicas and download links."""
    dataset_or_404(session, dataset_id)
    total = session.scalar(select(func.count(File.id)).where(File.dataset_id == dataset_id))
    items = [FileEntry(**f) for f in file_entries(session, dataset_id, limit, offset,
                                                  state(request).adler32)]
    return {"total": total, "limit": limit, "offset": offset,
            "next": next_link(request, total or 0, limit, offset), "items": items}


@router.get("/datasets/{dataset_id}/events")
def dataset_events(dataset_id: DatasetId, session: DB,
                   n: Annotated[int, Query(ge=1, le=events_view.MAX_EVENTS)] = 3
                   ) -> list[dict[str, Any]]:
    """Sample events for the event display: hit x, y, z (cm), subsystem, track id."""
    return events_view.sample_events(dataset_or_404(session, dataset_id).path, n)


@router.get("/datasets/{dataset_id}/provenance")
def dataset_provenance(dataset_id: DatasetId, session: DB) -> dict[str, Any]:
    """Nodes and edges of the provenance graph around the dataset."""
    graph = provenance.dataset_graph(session, dataset_or_404(session, dataset_id))
    return {"nodes": [{"kind": k, "id": i, "label": label, "link": graph.links.get((k, i))}
                      for (k, i), label in sorted(graph.labels.items())],
            "edges": [{"source": s[1], "target": t[1], "relation": r}
                      for s, t, r in sorted(graph.edges)], "truncated": graph.truncated}


@router.get("/datasets/{dataset_id}/results")
def dataset_results(dataset_id: DatasetId, session: DB) -> list[dict[str, Any]]:
    """Benchmark results derived from the dataset (directly or through a checkpoint)."""
    return [result_dict(r) for r in derived_results(session,
                                                    dataset_or_404(session, dataset_id))]


@router.get("/datasets/{dataset_id}/locate")
def locate_dataset(dataset_id: DatasetId, session: DB) -> list[dict[str, Any]]:
    """One reachable replica per file, at the most preferred site."""
    dataset_or_404(session, dataset_id)
    return [{"file_id": r.file_id, "path": r.file.path, "site": r.site, "url": r.url}
            for r in federation.locate(session, dataset_id)]


@router.get("/datasets/{dataset_id}/suggestions")
def dataset_suggestions(dataset_id: DatasetId, request: Request,
                        session: DB) -> list[dict[str, Any]]:
    """Suggested values for missing metadata, by an embedding-neighbour vote, with evidence."""
    return curation.suggestions(session, dataset_or_404(session, dataset_id),
                                state(request).vectors)


@router.get("/curation/duplicates")
def duplicates(request: Request, session: DB,
               threshold: Annotated[float, Query(ge=0.5, le=1.0)] = curation.DUPLICATE_COSINE
               ) -> list[dict[str, Any]]:
    """Pairs of near-duplicate datasets (cosine similarity of their embeddings)."""
    return curation.near_duplicates(session, state(request).vectors,
                                    threshold)


@router.get("/results/{result_id}")
def get_result(result_id: Annotated[int, Path(ge=1, le=2**62)], session: DB
               ) -> dict[str, Any]:
    """One benchmark result with its interval, seeds and origins."""
    return result_dict(row_or_404(session, BenchmarkResult, result_id, "result"))


@router.post("/datasets/{dataset_id}/annotations", status_code=200)
def annotate(dataset_id: DatasetId, body: AnnotationIn, session: DB,
             token: Annotated[ApiToken, Depends(require("curate"))]) -> dict[str, Any]:
    """Set curated metadata values (scope ``curate``); facet rows follow the columns."""
    dataset = dataset_or_404(session, dataset_id)
    changes = body.model_dump(exclude_none=True)
    rows = {}
    for name, value in changes.items():
        if name in FACET_FIELDS:
            for row in [f for f in dataset.facets if f.facet == name]:
                dataset.facets.remove(row)
            rows[name] = f"{value:g}" if isinstance(value, float) else normalise(name, value)
            if name not in ("license", "energy_gev"):  # the licence column keeps its URL
                value = rows[name]
        setattr(dataset, name, value)
    session.flush()  # old rows go before new ones arrive (a value may be set again)
    dataset.facets.extend(DatasetFacet(facet=k, value=v) for k, v in rows.items())
    dataset.record = {**(dataset.record or {}), "curated_by": token.name}
    session.commit()
    return summary(dataset)


@router.post("/replicas", status_code=201)
def register_replica(body: ReplicaIn, session: DB,
                     token: Annotated[ApiToken, Depends(require("replica"))]
                     ) -> dict[str, Any]:
    """Record a copy of a catalogued file at a registered site (scope ``replica``)."""
    file = session.get(File, body.file_id)
    if file is None:
        raise HTTPException(404, f"no file {body.file_id}")
    replica = federation.add_replica(session, file.dataset_id, file.path, body.site, body.url,
                                     body.adler32, body.sha256)
    return {"id": replica.id, "file_id": replica.file_id, "site": replica.site,
            "url": replica.url, "status": replica.status, "registered_by": token.name}
