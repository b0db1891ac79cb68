"""Commands of the discovery portal: ``npfm portal ...``."""

from __future__ import annotations

from typing import Annotated

import typer

from npfm.cli_common import clean_errors, console

app = typer.Typer(help="The web portal over the catalog.", no_args_is_help=True)


@app.command("serve")
@clean_errors
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the catalog")] =
        "sqlite:///npfm-catalog.sqlite",
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the portal (search, dataset pages, REST API under /api/v1) with uvicorn."""
    import uvicorn

    from npfm.portal import create_app

    portal = create_app(db)
    console.print(f"npfm portal: http://{host}:{port}/  (API: http://{host}:{port}/api/v1/docs)")
    uvicorn.run(portal, host=host, port=port, log_level=log_level)
