"""Alembic migrations: head equals the models, and older databases upgrade in place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from npfm.catalog.migrate import current, upgrade
from npfm.catalog.models import Base, Dataset, open_catalog

DATASET_ROW = {"name": "old", "title": "old corpus", "identifier": "urn:x", "schema_version": 1,
               "events": 5, "hits": 50, "license": "CC0", "creators": "[]",
               "created": "2026-01-01", "path": "/data/old", "manifest_sha256": "a" * 64,
               "description": "", "keywords": "[]", "source": "npfm", "record": "{}"}


#: The full-text index's engine-specific objects, which the models do not describe:
#: SQLite's FTS5 table (and its shadow tables), PostgreSQL's tsvector columns and indexes.
ENGINE_TABLES = "dataset_fts"
ENGINE_COLUMNS = {"head_tsv", "body_tsv"}


def _engine_index(diff: object) -> bool:
    """True for a difference that is one of the engine-specific full-text objects."""
    text_of = repr(diff)
    return ENGINE_TABLES in text_of or any(c in text_of for c in ENGINE_COLUMNS)


def _tables_and_columns(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {t: {c["name"] for c in found.get_columns(t)} - ENGINE_COLUMNS
                for t in found.get_table_names()
                if t != "alembic_version" and not t.startswith(ENGINE_TABLES)}
    finally:
        engine.dispose()


def test_upgrade_head_on_empty_database_matches_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        upgrade(engine)
        assert current(engine) == "0003"
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if not _engine_index(d)] == []
    finally:
        engine.dispose()
    models = {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}
    assert _tables_and_columns(db_url) == models


def test_database_at_the_first_revision_upgrades_keeping_rows(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        upgrade(engine, "0001")
        assert "dataset_facet" not in inspect(engine).get_table_names()
        columns = ", ".join(DATASET_ROW)
        with engine.begin() as connection:
            connection.execute(text(f"INSERT INTO dataset ({columns}) VALUES "
                                    f"({', '.join(':' + k for k in DATASET_ROW)})"),
                               DATASET_ROW)
    finally:
        engine.dispose()
    with open_catalog(db_url)() as session:  # upgrades to head
        dataset = session.query(Dataset).one()
        assert (dataset.name, dataset.events, dataset.facets) == ("old", 5, [])
    assert "adler32" in _tables_and_columns(db_url)["file"]


def test_catalog_made_before_migrations_is_stamped_then_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/legacy.sqlite"
    engine = create_engine(url)
    try:
        upgrade(engine, "0001")  # the tables create_all made before migrations existed
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
        assert current(engine) is None
        upgrade(engine)
        assert current(engine) == "0003"
    finally:
        engine.dispose()


def test_alembic_command_line_upgrades_to_the_models(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/cli.sqlite"  # same migrations as above, by the CLI
    ini = Path(__file__).resolve().parents[2] / "src/npfm/catalog/alembic.ini"
    alembic = Path(sys.executable).with_name("alembic")
    done = subprocess.run([str(alembic), "-c", str(ini), "-x", f"url={db_url}", "upgrade",
                           "head"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    models = {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}
    assert _tables_and_columns(db_url) == models


def test_plain_postgresql_url_uses_psycopg(pg_server: str) -> None:
    assert pg_server.startswith("postgresql://npfm@127.0.0.1:")
    with open_catalog(pg_server)() as session:
        engine = session.get_bind()
        assert engine.dialect.driver == "psycopg"
        assert current(engine) == "0003"  # type: ignore[arg-type]
