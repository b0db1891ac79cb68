"""Commands of the catalog: ``npfm catalog ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from npfm.catalog.models import open_catalog
from npfm.catalog.register import register
from npfm.cli_common import clean_errors, console

app = typer.Typer(help="The catalog of corpora, runs, geometries and provenance.",
                  no_args_is_help=True)


@app.command("register")
@clean_errors
def catalog_register(
    paths: Annotated[list[Path], typer.Argument(help="corpus dirs, run dirs, geometry YAML, "
                                                "PROV-JSON files")],
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the catalog")] =
        "sqlite:///npfm-catalog.sqlite",
) -> None:
    """Import what other commands produce, without retyping it."""
    session_factory = open_catalog(db)
    with session_factory() as session:
        for path in paths:
            for message in register(path, session):
                console.print(message)
