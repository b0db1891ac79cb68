"""Pydantic models of the REST API: validated inputs and documented outputs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from npfm.catalog.facets import normalise
from npfm.catalog.inputs import NAME, URL_SCHEMES

#: Page size cap of every listing.
MAX_LIMIT = 100
#: Largest offset accepted (deeper pages: narrow the search instead).
MAX_OFFSET = 1_000_000
Label = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^<>\x00-\x1f]+$")]


class SearchParams(BaseModel):
    """Query parameters of a search: text, mode, facet filters and the page."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field("", max_length=200, description="free text")
    mode: Literal["text", "semantic"] = "text"
    facility: str | None = Field(None, max_length=128)
    experiment: str | None = Field(None, max_length=128)
    collision_system: str | None = Field(None, max_length=64)
    energy_gev: float | None = Field(None, ge=0, le=1e7, allow_inf_nan=False,
                                     description="sqrt(s), GeV")
    detector: str | None = Field(None, max_length=128)
    data_level: str | None = Field(None, max_length=64)
    license: str | None = Field(None, max_length=512)
    limit: int = Field(20, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)

    def filters(self) -> dict[str, str]:
        """Active facet filters as text (energies formatted as the facet values are)."""
        out = {}
        for name in ("facility", "experiment", "collision_system", "energy_gev", "detector",
                     "data_level", "license"):
            value = getattr(self, name)
            if value is not None and value != "":
                out[name] = f"{value:g}" if isinstance(value, float) else normalise(name, value)
        return out


SearchQuery = Annotated[SearchParams, Query()]


class DatasetSummary(BaseModel):
    """A dataset in a listing (sizes: events, hits, files)."""

    id: int
    name: str
    title: str
    description: str
    events: int
    hits: int
    license: str
    facility: str | None
    experiment: str | None
    collision_system: str | None
    energy_gev: float | None = Field(description="centre-of-mass energy, GeV")
    detector: str | None
    data_level: str | None
    keywords: list[Any]
    source: str
    created: str
    files: int
    score: float | None = Field(None, description="cosine similarity (semantic mode)")


class Page(BaseModel):
    """One page of a listing with the total count and the link to the next page."""

    total: int
    limit: int
    offset: int
    next: str | None
    items: list[Any]


class SearchPage(Page):
    items: list[DatasetSummary]
    facets: dict[str, list[tuple[str, int]]] = Field(default_factory=dict)


class FileEntry(BaseModel):
    """A file of a dataset with its checksums and download link (bytes: size)."""

    id: int
    path: str
    bytes: int
    events: int
    sha256: str
    adler32: str | None
    download: str
    replicas: list[dict[str, Any]]


class AnnotationIn(BaseModel):
    """Curated values for a dataset's metadata; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str | None = Field(None, min_length=1, max_length=8192)
    facility: Label | None = None
    experiment: Label | None = None
    collision_system: Annotated[str, Field(min_length=1, max_length=64,
                                           pattern=r"^[A-Za-z0-9+\-]+$")] | None = None
    energy_gev: float | None = Field(None, gt=0, le=1e7, allow_inf_nan=False,
                                     description="sqrt(s), GeV")
    detector: Label | None = None
    data_level: Label | None = None
    license: Annotated[str, Field(min_length=1, max_length=512,
                                  pattern=r"^https?://[^\s<>\"]+$")] | None = None
    keywords: list[Label] | None = Field(None, max_length=32)


class ReplicaIn(BaseModel):
    """A copy of a catalogued file at a registered site (checksums as lowercase hex)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    file_id: int = Field(ge=1, le=2**62)
    site: str = Field(min_length=1, max_length=256, pattern=NAME)
    url: str = Field(min_length=8, max_length=2048,
                     pattern="^(" + "|".join(s.replace("+", r"\+") for s in URL_SCHEMES)
                     + r")[^\s<>\"]+$")
    adler32: str | None = Field(None, pattern=r"^[0-9a-f]{8}$")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
