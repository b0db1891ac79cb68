"""Server-rendered pages: search, dataset, curation and benchmark result."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from npfm.catalog.exports import schema_org_jsonld
from npfm.catalog.models import BenchmarkResult, File
from npfm.catalog.results import derived_results
from npfm.catalog.standard import dataset_record, fair_score
from npfm.portal import curation, provenance, result_plot
from npfm.portal.api import dataset_or_404, dataset_with_files
from npfm.portal.app import db, state
from npfm.portal.cache import cached
from npfm.portal.schemas import SearchParams, SearchQuery
from npfm.portal.search import FACETS, search
from npfm.portal.search import Query as SearchSpec
from npfm.portal.views import file_entries, result_dict, row_or_404

router = APIRouter(include_in_schema=False)
DB = Annotated[Session, Depends(db)]
DatasetId = Annotated[int, Path(ge=1, le=2**62)]
#: Files listed on a dataset page (the API pages through all of them).
PAGE_FILES = 50
FACET_TITLES = {"facility": "Facility", "experiment": "Experiment",
                "collision_system": "Collision system", "energy_gev": "√s (GeV)",
                "detector": "Detector", "data_level": "Data level", "license": "License"}


def jsonld_script(doc: dict[str, Any]) -> Markup:
    """JSON for a <script> element: '<', '>' and '&' escaped so no text can close it."""
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, code)
    return Markup(text)


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    return state(request).templates.TemplateResponse(request, name, context)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, params: SearchQuery) -> HTMLResponse:
    """Search page: query box, text/semantic switch, facets with counts, one page of hits."""
    portal = state(request)
    body = await cached(portal.replies, portal.sessions, ("page", request.url.query),
                        lambda session, generation: bytes(
                            _search_page(request, params, session, generation).body),
                        portal.quick(params.mode, params.q))
    return HTMLResponse(body)


def _search_page(request: Request, params: SearchParams, session: Session,
                 generation: int) -> HTMLResponse:
    portal = state(request)
    spec = SearchSpec(params.q, params.mode, params.filters(), params.limit, params.offset)
    found = search(session, spec, portal.facets.at(session, generation), portal.vectors)
    current = {k: v for k, v in request.query_params.items() if k != "offset"}

    def link(**change: Any) -> str:
        merged = {**current, **{k: v for k, v in change.items() if v is not None}}
        for key in [k for k, v in change.items() if v is None]:
            merged.pop(key, None)
        return "/?" + urlencode(merged)

    nxt = params.offset + params.limit
    return _render(request, "index.html", {
        "params": params, "results": found, "facets": found.facets,
        "titles": FACET_TITLES, "active": params.filters(), "link": link,
        "next": link(offset=nxt) if nxt < found.total else None,
        "prev": link(offset=max(0, params.offset - params.limit)) if params.offset else None,
        "order": list(FACETS)})


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(dataset_id: DatasetId, request: Request, session: DB) -> HTMLResponse:
    """Metadata, FAIR score, JSON-LD, provenance graph, files, results, event display."""
    dataset = dataset_with_files(session, dataset_id)
    record = dataset_record(dataset)
    graph = provenance.dataset_graph(session, dataset)
    n_files = session.scalar(select(func.count(File.id)).where(File.dataset_id == dataset.id))
    return _render(request, "dataset.html", {
        "d": dataset, "record": record, "fair": fair_score(record),
        "jsonld": jsonld_script(schema_org_jsonld(dataset)),
        "graph_svg": Markup(provenance.render_svg(graph)), "graph": graph,
        "files": file_entries(session, dataset.id, PAGE_FILES, 0, state(request).adler32),
        "n_files": n_files or 0, "page_files": PAGE_FILES,
        "results": [result_dict(r) for r in derived_results(session, dataset)]})


@router.get("/datasets/{dataset_id}/curation", response_class=HTMLResponse)
def curation_page(dataset_id: DatasetId, request: Request, session: DB) -> HTMLResponse:
    """Suggested values for the dataset's missing metadata and its near-duplicates."""
    dataset = dataset_or_404(session, dataset_id)
    vectors = state(request).vectors
    pairs = [p for p in curation.near_duplicates(session, vectors)
             if dataset.id in (p["a"]["id"], p["b"]["id"])]
    return _render(request, "curation.html", {
        "d": dataset, "fields": curation.field_values(dataset),
        "suggestions": curation.suggestions(session, dataset, vectors),
        "duplicates": pairs, "threshold": curation.DUPLICATE_COSINE})


@router.get("/results/{result_id}", response_class=HTMLResponse)
def result_page(result_id: Annotated[int, Path(ge=1, le=2**62)], request: Request,
                session: DB) -> HTMLResponse:
    """One benchmark result with its interval, seeds and the dataset it came from, and
    the plot of it beside its siblings in the same report (``result_plot``)."""
    result = row_or_404(session, BenchmarkResult, result_id, "result")
    rows = result_plot.siblings(session, result)
    plot = result_plot.forest_svg(rows, result.id)
    return _render(request, "result.html", {"r": result_dict(result),
                                            "plot": Markup(plot) if plot else None,
                                            "n_siblings": len(rows),
                                            "details": result.details})
