"""A curated inventory of real public datasets, registered as metadata-only records.

``public_datasets.yaml`` (beside this module) lists datasets others publish, each with
its DOI or why it has none, landing page, licence, size, the public pages its facts come
from (``sources``) and how npfm imports it (``npfm_import``). ``load_inventory``
validates the file; ``register_inventory`` adds one Dataset per record, without files,
with facets normalised and keywords made from the record's content as for other
registrations; the search index and embeddings follow on flush. A record is identified
by its key: registering again adds nothing, and an edited record is updated in place.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.facets import apply_facets
from npfm.catalog.inputs import parse
from npfm.catalog.models import Dataset, DatasetFacet
from npfm.catalog.standard import data_levels, dataset_record, load_schema, validate_record
from npfm.events.errors import NpfmError

#: DOI syntax of the metadata standard (``10.`` + registrant code, ``/``, suffix).
DOI: str = load_schema()["properties"]["doi"]["pattern"]
_URL = re.compile(r"^https?://\S+$")
#: Dataset columns copied from a fresh record onto an existing one when it changed.
_COLUMNS = ("name", "title", "identifier", "events", "license", "creators", "created",
            "path", "description", "keywords", "facility", "experiment", "collision_system",
            "energy_gev", "detector", "data_level")


def default_path() -> Path:
    """The inventory shipped with npfm."""
    return Path(str(resources.files("npfm.catalog") / "public_datasets.yaml"))


def _urls(values: list[str]) -> list[str]:
    bad = [v for v in values if not _URL.match(v)]
    if bad:
        raise ValueError(f"not an http(s) URL: {bad[0]}")
    return values


class Related(BaseModel):
    """A publication or page the dataset relates to (DataCite relation types)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relation: str = Field(min_length=1)
    identifier: str = Field(min_length=1)


class InventoryRecord(BaseModel):
    """One public dataset of the inventory (metadata only)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=128)
    title: str = Field(min_length=1, max_length=1024)
    creators: list[str] = Field(min_length=1)
    publisher: str = Field(min_length=1)
    facility: str | None = None
    experiment: str | None = None
    detector: str | None = None
    collision_system: str | None = None
    energy_gev: list[float] = Field(default_factory=list)
    data_level: list[str] = Field(min_length=1)
    doi: str | None = Field(default=None, pattern=DOI)
    landing_page: str
    related: list[Related] = Field(default_factory=list)
    license: str = Field(min_length=1)  # licence URI, SPDX id, or NOASSERTION (not found)
    created: str = ""
    events: int = Field(default=0, ge=0)
    format: str = Field(min_length=1)
    description: str = Field(min_length=50, max_length=8192)
    keywords: list[str] = Field(default_factory=list)
    npfm_import: str = Field(min_length=20)
    notes: str = ""
    sources: list[str] = Field(min_length=1)

    @field_validator("landing_page")
    @classmethod
    def _landing(cls, value: str) -> str:
        return _urls([value])[0]

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        return _urls(value)

    @field_validator("data_level")
    @classmethod
    def _levels(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - data_levels())
        if unknown:
            raise ValueError(f"unknown data level {unknown[0]!r}; use one of "
                             f"{', '.join(sorted(data_levels()))}")
        return value

    @field_validator("energy_gev")
    @classmethod
    def _energies(cls, value: list[float]) -> list[float]:
        if any(e <= 0 for e in value):
            raise ValueError("energies are sqrt(s) in GeV, above 0")
        return value

    @model_validator(mode="after")
    def _doi_or_why(self) -> InventoryRecord:
        if self.doi is None and "doi" not in self.notes.lower():
            raise ValueError(f"{self.key}: no doi, and the notes do not say why")
        return self


class Inventory(BaseModel):
    """The inventory file: a list of records with unique keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    records: list[InventoryRecord] = Field(min_length=1)

    @field_validator("records")
    @classmethod
    def _unique(cls, value: list[InventoryRecord]) -> list[InventoryRecord]:
        keys = [r.key for r in value]
        doubled = sorted({k for k in keys if keys.count(k) > 1})
        if doubled:
            raise ValueError(f"key {doubled[0]!r} is used twice")
        return value


def load_inventory(path: Path | None = None) -> list[InventoryRecord]:
    """The validated records of the inventory at ``path`` (default: the shipped one)."""
    path = Path(path) if path is not None else default_path()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise NpfmError(str(path), f"unreadable inventory ({err})",
                        "pass a YAML file like npfm/catalog/public_datasets.yaml") from None
    if not isinstance(doc, dict):
        raise NpfmError(str(path), "not a YAML mapping", "write `records: [...]`")
    return parse(Inventory, str(path), **doc).records


def _keywords(record: InventoryRecord) -> list[str]:
    """Keywords from the record's content: experiment, facility, system, level, format."""
    words = [record.experiment, record.facility, record.collision_system, *record.data_level,
             record.format.split(" (")[0], *record.keywords, "metadata only"]
    return list(dict.fromkeys(w for w in words if w))


def _fresh(record: InventoryRecord, source: str) -> Dataset:
    """A transient Dataset holding ``record`` (facets, keywords, standard record)."""
    digest = hashlib.sha256(f"npfm-inventory:{record.key}".encode()).hexdigest()
    dataset = Dataset(
        name=record.key, title=record.title, identifier=record.doi or record.landing_page,
        schema_version=0, events=record.events, hits=0, license=record.license,
        creators=list(record.creators), created=record.created, path=source,
        manifest_sha256=digest, description=record.description,
        keywords=_keywords(record), source="inventory", facets=[])
    facets: dict[str, list[Any]] = {
        "facility": [record.facility], "experiment": [record.experiment],
        "collision_system": [record.collision_system], "detector": [record.detector],
        "energy_gev": list(record.energy_gev), "data_level": list(record.data_level)}
    apply_facets(dataset, {k: v for k, v in facets.items() if v and all(v)})
    carried: dict[str, Any] = {
        "publisher": record.publisher, "landing_page": record.landing_page,
        "format": {"name": record.format}, "npfm_import": record.npfm_import,
        "sources": list(record.sources),
        "content": {"search_terms": [record.format, record.publisher]}}
    if record.doi:
        carried["doi"] = record.doi
    if record.related:
        carried["related"] = [r.model_dump() for r in record.related]
    if record.notes:
        carried["notes"] = record.notes
    dataset.record = carried
    dataset.record = dataset_record(dataset)
    validate_record(dataset.record)
    return dataset


def _register(record: InventoryRecord, session: Session, source: str) -> str:
    fresh = _fresh(record, source)
    found = session.scalar(select(Dataset).where(
        Dataset.manifest_sha256 == fresh.manifest_sha256))
    if found is None:
        session.add(fresh)
        return f"inventory record {record.key}: {record.title}"
    if found.record == fresh.record:
        return f"inventory record {record.key} already registered"
    found.facets.clear()
    session.flush()  # old facet rows go before the new ones are written
    for column in _COLUMNS:
        setattr(found, column, getattr(fresh, column))
    found.facets.extend(DatasetFacet(facet=f.facet, value=f.value) for f in fresh.facets)
    found.record = fresh.record
    return f"inventory record {record.key} updated"


def register_inventory(session: Session, path: Path | None = None) -> list[str]:
    """Add or update every record of the inventory at ``path``; commits; messages."""
    path = Path(path) if path is not None else default_path()
    records = load_inventory(path)
    messages = [_register(record, session, str(path.resolve())) for record in records]
    session.commit()
    return messages
