"""The portal's FastAPI application: ``create_app(catalog_url)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from npfm import __version__
from npfm.catalog.models import open_catalog
from npfm.events.errors import NpfmError
from npfm.portal.cache import ReplyCache
from npfm.portal.downloads import Adler32Cache
from npfm.portal.facet_index import FacetIndexes
from npfm.portal.search import VectorIndex
from npfm.portal.security import Guard, docs_policy, invalid_request, short

HERE = Path(__file__).parent
OPENAPI, DOCS = "/api/v1/openapi.json", "/api/v1/docs"


@dataclass
class PortalState:
    """What the routes share: the catalog sessions, templates and in-memory caches."""

    sessions: sessionmaker[Session]
    templates: Jinja2Templates
    vectors: VectorIndex = field(default_factory=VectorIndex)
    facets: FacetIndexes = field(default_factory=FacetIndexes)
    replies: ReplyCache = field(default_factory=ReplyCache)
    adler32: Adler32Cache = field(default_factory=Adler32Cache.empty)

    def quick(self, mode: str, text: str) -> Callable[[int], bool]:
        """Whether a search reply is quick to compute at a generation: not semantic (the
        model runs), and its facet index is built."""
        return lambda generation: ((mode != "semantic" or not text.strip())
                                   and self.facets.holds(generation))

    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session


def create_app(catalog_url: str) -> FastAPI:
    """The portal over the catalog at ``catalog_url`` (a SQLAlchemy URL)."""
    from npfm.portal import api, checkpoints, pages, routes_files

    app = FastAPI(title="npfm discovery portal", version=__version__,
                  description="Search, inspect and download the datasets of the npfm "
                  "catalog. Reads are public; writes need `Authorization: Bearer <token>`.",
                  openapi_url=OPENAPI, docs_url=None, redoc_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    app.state.portal = PortalState(open_catalog(catalog_url), templates)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(checkpoints.router)
    app.include_router(routes_files.router)
    app.include_router(api.router, prefix="/api/v1")
    docs = get_swagger_ui_html(openapi_url=OPENAPI, title=f"{app.title} API").body

    @app.get(DOCS, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(docs)

    app.add_middleware(Guard, policies={DOCS: docs_policy(bytes(docs).decode())})
    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.exception_handler(NpfmError)
    async def npfm_error(request: Request, exc: NpfmError) -> JSONResponse:
        return JSONResponse({"detail": short(str(exc))}, 422)

    return app


def state(request: Request) -> PortalState:
    """The portal state of the application serving ``request``."""
    portal: PortalState = request.app.state.portal
    return portal


def db(request: Request) -> Iterator[Session]:
    """A catalog session for one request (a FastAPI dependency)."""
    yield from state(request).session()
