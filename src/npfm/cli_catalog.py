"""Commands of the catalog: ``npfm catalog ...`` and ``npfm locate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from npfm.catalog import exports, federation
from npfm.catalog.inventory import register_inventory
from npfm.catalog.models import open_catalog
from npfm.catalog.opendata import import_opendata
from npfm.catalog.register import register
from npfm.catalog.standard import dataset_record, fair_score
from npfm.catalog.tokens import create_token, revoke_token
from npfm.cli_common import clean_errors, console, progress_bar
from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_json

DB_DEFAULT = "sqlite:///npfm-catalog.sqlite"
Db = Annotated[str, typer.Option(help="SQLAlchemy URL of the catalog (sqlite:///FILE or "
                                      "postgresql+psycopg://...)")]
Dataset = Annotated[str, typer.Argument(help="dataset name, id, manifest sha256 or DOI/URN")]
FORMATS = ("record", "croissant", "datacite", "schema-org", "fair", "ro-crate")

app = typer.Typer(help="The catalog of corpora, runs, geometries, results and provenance.",
                  no_args_is_help=True)
site_app = typer.Typer(help="Storage sites (endpoints).", no_args_is_help=True)
replica_app = typer.Typer(help="Replicas of catalogued files at sites.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for writes through the portal.", no_args_is_help=True)
app.add_typer(site_app, name="site")
app.add_typer(replica_app, name="replica")
app.add_typer(token_app, name="token")


@app.command("register")
@clean_errors
def catalog_register(
    paths: Annotated[list[Path], typer.Argument(help="corpus, ensemble or run dirs, geometry "
                                                "YAML, results JSON, PROV-JSON files")],
    db: Db = DB_DEFAULT,
) -> None:
    """Import what other commands produce, without retyping it."""
    with open_catalog(db)() as session, progress_bar(bytes_=True) as bar:
        task = bar.add_task("reading shards", total=None)
        for path in paths:
            for message in register(path, session, lambda n: bar.advance(task, n)):
                console.print(message)


@app.command("import-opendata")
@clean_errors
def catalog_import_opendata(
    paths: Annotated[list[Path], typer.Argument(help="CERN Open Data record JSON files")],
    db: Db = DB_DEFAULT,
) -> None:
    """Import CERN Open Data portal records (datasets, files, replicas)."""
    with open_catalog(db)() as session:
        for path in paths:
            for message in import_opendata(path, session):
                console.print(message)


@app.command("register-inventory")
@clean_errors
def catalog_register_inventory(
    file: Annotated[Path | None, typer.Option(help="inventory YAML (default: the public "
                                              "datasets shipped with npfm)")] = None,
    db: Db = DB_DEFAULT,
) -> None:
    """Register the inventory of real public datasets (metadata only: DOI, landing page,
    how npfm imports each); running it again adds nothing."""
    with open_catalog(db)() as session:
        for message in register_inventory(session, file):
            console.print(message)


@app.command("export")
@clean_errors
def catalog_export(
    dataset: Dataset,
    fmt: Annotated[str, typer.Option("--format", help=" | ".join(FORMATS))] = "record",
    out: Annotated[Path | None, typer.Option(help="output file (directory for ro-crate); "
                                             "default: print")] = None,
    db: Db = DB_DEFAULT,
) -> None:
    """Export a dataset's metadata: standard record, Croissant, DataCite, schema.org,
    FAIR score or an RO-Crate directory."""
    if fmt not in FORMATS:
        raise NpfmError("--format", f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    with open_catalog(db)() as session:
        found = federation.find_dataset(session, dataset)
        if fmt == "ro-crate":
            if out is None:
                raise NpfmError("--out", "ro-crate needs a directory", "pass --out DIR")
            console.print(f"RO-Crate written to {exports.ro_crate(found, out)}")
            return
        doc = {"record": dataset_record, "croissant": exports.croissant,
               "datacite": exports.datacite, "schema-org": exports.schema_org_jsonld,
               "fair": lambda d: fair_score(dataset_record(d))}[fmt](found)
    if out is None:
        print(json.dumps(doc, indent=1, default=str))
    else:
        atomic_write_json(out, doc)
        console.print(f"{fmt} written to {out}")


@app.command("verify")
@clean_errors
def catalog_verify(
    dataset: Annotated[str | None, typer.Argument(help="dataset (default: all)")] = None,
    site: Annotated[str | None, typer.Option(help="only replicas at this site")] = None,
    db: Db = DB_DEFAULT,
) -> None:
    """Re-read replicas, recompute adler32 and sha256, mark bad or missing ones."""
    with open_catalog(db)() as session, progress_bar(bytes_=True) as bar:
        task = bar.add_task("verifying", total=None)
        report = federation.verify(session, dataset, site,
                                   progress=lambda n: bar.advance(task, n))
    for url in report.bad:
        console.print(f"[red]bad[/] {url}")
    for url in report.missing:
        console.print(f"[yellow]missing[/] {url}")
    console.print(f"{report.checked} replica(s) checked: {report.ok} ok, "
                  f"{len(report.bad)} bad, {len(report.missing)} missing"
                  + (f"; {len(report.skipped)} skipped (scheme not readable here)"
                     if report.skipped else ""))
    if report.bad or report.missing:
        raise typer.Exit(1)


@site_app.command("add")
@clean_errors
def site_add(
    name: Annotated[str, typer.Argument(help="site name (a Rucio RSE name for rucio sites)")],
    url_prefix: Annotated[str, typer.Argument(help="file:///..., https://..., root://...")],
    kind: Annotated[str, typer.Option(help="posix, http or rucio")] = "posix",
    priority: Annotated[int, typer.Option(help="lower is preferred by locate")] = 100,
    db: Db = DB_DEFAULT,
) -> None:
    """Add or update a storage site."""
    with open_catalog(db)() as session:
        site = federation.add_site(session, name, url_prefix, kind, priority)
        console.print(f"site {site.name} ({site.kind}, priority {site.priority})")


@replica_app.command("add")
@clean_errors
def replica_add(
    dataset: Dataset,
    path: Annotated[str, typer.Argument(help="file path relative to the dataset")],
    site: Annotated[str, typer.Argument(help="site name")],
    url: Annotated[str, typer.Argument(help="URL of the copy")],
    db: Db = DB_DEFAULT,
) -> None:
    """Record a copy of a catalogued file at a site."""
    with open_catalog(db)() as session:
        replica = federation.add_replica(session, dataset, path, site, url)
        console.print(f"replica of {path} at {replica.site}: {replica.url}")


@token_app.command("create")
@clean_errors
def token_create(
    name: Annotated[str, typer.Argument(help="unique token name")],
    scope: Annotated[list[str], typer.Option(help="register, replica, site, verify, curate "
                                             "or admin (repeat for several)")],
    db: Db = DB_DEFAULT,
) -> None:
    """Create an API token; the secret is printed once and only its sha256 is kept."""
    with open_catalog(db)() as session:
        print(create_token(session, name, scope))


@token_app.command("revoke")
@clean_errors
def token_revoke(name: Annotated[str, typer.Argument(help="token name")],
                 db: Db = DB_DEFAULT) -> None:
    """Revoke an API token (it stays listed, and is refused from now on)."""
    with open_catalog(db)() as session:
        revoke_token(session, name)
        console.print(f"token {name} revoked")


@clean_errors
def locate_command(dataset: Dataset, db: Db = DB_DEFAULT) -> None:
    """Print, per file of DATASET, a reachable replica URL at the most preferred site."""
    with open_catalog(db)() as session:
        for replica in federation.locate(session, dataset):
            print(f"{replica.file.path}\t{replica.site}\t{replica.url}")
