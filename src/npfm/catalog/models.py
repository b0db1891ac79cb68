"""SQLAlchemy models of the npfm catalog and ``open_catalog``.

Types are portable (String with lengths, BigInteger, JSON), so the same models run on
SQLite and PostgreSQL. Identity is content: a dataset is its manifest's sha256, a
checkpoint its weights' sha256, a geometry its YAML file's sha256.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

from npfm.catalog.migrate import upgrade

SHA256 = String(64)
PATH = String(1024)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of all catalog tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    """A corpus directory, identified by the sha256 of its ``manifest.json``."""

    __tablename__ = "dataset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    title: Mapped[str] = mapped_column(String(1024))
    identifier: Mapped[str] = mapped_column(String(512))
    schema_version: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(BigInteger)
    license: Mapped[str] = mapped_column(String(512))
    creators: Mapped[list[Any]]
    created: Mapped[str] = mapped_column(String(64))  # ISO 8601, as in the manifest
    path: Mapped[str] = mapped_column(PATH)
    manifest_sha256: Mapped[str] = mapped_column(SHA256, unique=True)
    # Search facets and free text (the metadata standard, docs/metadata-standard.md).
    description: Mapped[str] = mapped_column(String(8192), default="")
    facility: Mapped[str | None] = mapped_column(String(128), index=True)  # RHIC, LEP, ...
    experiment: Mapped[str | None] = mapped_column(String(128), index=True)  # sPHENIX, ...
    collision_system: Mapped[str | None] = mapped_column(String(64), index=True)  # pp, e+e-
    energy_gev: Mapped[float | None] = mapped_column(Float)  # centre-of-mass energy, GeV
    detector: Mapped[str | None] = mapped_column(String(128), index=True)  # geometry id
    data_level: Mapped[str | None] = mapped_column(String(64), index=True)  # hits, objects
    keywords: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(64), default="npfm")  # npfm, cern-opendata
    record: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # full metadata

    files: Mapped[list[File]] = relationship(back_populates="dataset",
                                             cascade="all, delete-orphan")
    facets: Mapped[list[DatasetFacet]] = relationship(back_populates="dataset",
                                                      cascade="all, delete-orphan")


class DatasetFacet(Base):
    """One value of a search facet of a dataset; a mixed corpus has several per facet.

    ``facet`` is a Dataset facet column name (facility, experiment, collision_system,
    energy_gev, detector, data_level, license); ``value`` its text (energies in GeV).
    """

    __tablename__ = "dataset_facet"
    __table_args__ = (UniqueConstraint("dataset_id", "facet", "value", name="uq_facet"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id"), index=True)
    facet: Mapped[str] = mapped_column(String(32), index=True)
    value: Mapped[str] = mapped_column(String(256), index=True)

    dataset: Mapped[Dataset] = relationship(back_populates="facets")


class DatasetSearch(Base):
    """The search index row of a dataset (``npfm.catalog.search_index``): stemmed terms of
    its head and body text, and the unit embedding (float32 x 384) of its summary text."""

    __tablename__ = "dataset_search"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id"), primary_key=True)
    head: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(SHA256)  # of the embedded text
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class CatalogState(Base):
    """One row: ``generation`` grows with every flush that changes the catalog, so readers
    can keep answers until it moves (the portal's response cache)."""

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


class File(Base):
    """One shard of a dataset, as listed in its manifest."""

    __tablename__ = "file"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id"), index=True)
    path: Mapped[str] = mapped_column(PATH)  # relative to the dataset directory
    sha256: Mapped[str] = mapped_column(SHA256, index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(BigInteger)
    adler32: Mapped[str | None] = mapped_column(String(8))  # 8 hex digits, when known

    dataset: Mapped[Dataset] = relationship(back_populates="files")
    replicas: Mapped[list[Replica]] = relationship(back_populates="file",
                                                   cascade="all, delete-orphan")


class Site(Base):
    """A storage endpoint (a Rucio RSE); lower ``priority`` is preferred by ``locate``."""

    __tablename__ = "site"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    url_prefix: Mapped[str] = mapped_column(String(2048))  # file://..., https://...
    kind: Mapped[str] = mapped_column(String(32), default="posix")  # posix, http, rucio
    priority: Mapped[int] = mapped_column(Integer, default=100)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Replica(Base):
    """A copy of a file at a storage site (a Rucio RSE, or ``local``)."""

    __tablename__ = "replica"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("file.id"), index=True)
    site: Mapped[str] = mapped_column(String(256), index=True)  # Site.name
    url: Mapped[str] = mapped_column(String(2048))  # physical file name (PFN)
    adler32: Mapped[str | None] = mapped_column(String(8))
    sha256: Mapped[str | None] = mapped_column(SHA256)
    status: Mapped[str] = mapped_column(String(32), default="available")  # or bad, missing
    checked: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    file: Mapped[File] = relationship(back_populates="replicas")


class Geometry(Base):
    """A detector geometry YAML file."""

    __tablename__ = "geometry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    geometry_id: Mapped[str] = mapped_column(String(128))  # the YAML's ``id``
    version: Mapped[str] = mapped_column(String(64))
    experiment: Mapped[str] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(PATH)
    sha256: Mapped[str] = mapped_column(SHA256, unique=True)


class Checkpoint(Base):
    """The latest checkpoint of a pretraining run, identified by its weights' sha256."""

    __tablename__ = "checkpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_path: Mapped[str] = mapped_column(PATH)
    step: Mapped[int] = mapped_column(BigInteger)
    model_sha256: Mapped[str] = mapped_column(SHA256, unique=True)
    config: Mapped[dict[str, Any]]


class BenchmarkResult(Base):
    """One benchmark metric with its interval and seeds."""

    __tablename__ = "benchmark_result"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    task: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    lo: Mapped[float | None] = mapped_column(Float)
    hi: Mapped[float | None] = mapped_column(Float)
    seeds: Mapped[list[Any]]
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoint.id"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id"))
    report_path: Mapped[str | None] = mapped_column(PATH)  # the results JSON or report
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # config, n, ...
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ApiToken(Base):
    """A write token: only its sha256 is stored; ``scopes`` e.g. ["register", "replica"]."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    token_sha256: Mapped[str] = mapped_column(SHA256, unique=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class ProvenanceEdge(Base):
    """``source`` --relation--> ``target``; kinds are table names or ``sha256``."""

    __tablename__ = "provenance_edge"
    __table_args__ = (UniqueConstraint("source_kind", "source_id", "target_kind",
                                       "target_id", "relation", name="uq_edge"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_kind: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(128))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(128))
    relation: Mapped[str] = mapped_column(String(64))  # derived_from, trained_on, ...


_ENGINES: dict[str, Engine] = {}


def driver_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs get the installed driver (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def open_catalog(url: str = "sqlite:///npfm-catalog.sqlite") -> sessionmaker[Session]:
    """A session factory for the catalog at ``url``, upgraded to the newest schema.

    The schema is managed by Alembic (``npfm.catalog.migrations``): an empty database gets
    every table, an older one is migrated in place, keeping its rows. One engine (and
    connection pool) is kept per URL until ``close_catalogs``. Sessions keep the search
    index current (``search_index.watch``).
    """
    from npfm.catalog import search_index

    engine = _ENGINES.get(url)
    if engine is None:
        engine = create_engine(driver_url(url))
        upgrade(engine)
        search_index.fill_missing(engine)
        _ENGINES[url] = engine
    sessions = sessionmaker(engine)
    search_index.watch(sessions)
    return sessions


def close_catalogs() -> None:
    """Dispose every engine opened by ``open_catalog`` (closes pooled connections)."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()
