"""Alembic schema migrations of the catalog, run from Python (no alembic.ini needed).

``upgrade(engine)`` brings any catalog database to the newest revision. A database made
before migrations existed (tables present, no ``alembic_version``) holds exactly the
initial revision's tables and is stamped with it first.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
INITIAL = "0001"


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration for the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of ``engine`` to ``revision`` (default: the newest)."""
    config = alembic_config(engine)
    tables = set(inspect(engine).get_table_names())
    if "alembic_version" not in tables and "dataset" in tables:
        command.stamp(config, INITIAL)
    command.upgrade(config, revision)


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an unmanaged one."""
    with engine.connect() as connection:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()
