"""Alembic environment of the catalog: runs online, on the engine given by
``npfm.catalog.migrate`` or on the URL of ``-x url=...`` (else ``sqlalchemy.url``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from npfm.catalog.models import Base

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
    "sqlalchemy.url") or "sqlite:///npfm-catalog.sqlite"
engine = config.attributes.get("engine") or create_engine(url)

try:
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
finally:
    if "engine" not in config.attributes:
        engine.dispose()
