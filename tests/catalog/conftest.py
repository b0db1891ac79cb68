"""Catalog fixtures: a real PostgreSQL server on loopback, and a fresh catalog database
per test on SQLite and on PostgreSQL (the ``db_url`` fixture is parametrised over both).

The server is Debian's PostgreSQL 15 (``make sysdeps`` installs it). It runs as the
``postgres`` system user when the tests run as root (PostgreSQL refuses root). If it
cannot start, the tests that need it fail with the reason; they are never skipped.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from npfm.catalog.models import close_catalogs

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_counter = itertools.count()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user(args: list[str]) -> list[str]:
    """Run as ``postgres`` when we are root (initdb and postgres refuse root)."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Start PostgreSQL on 127.0.0.1:<free port>; yields the admin URL, stops it after."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 not found at {PG_BIN}; run `make sysdeps` "
                    "(Debian package postgresql)")
    data = Path(tempfile.mkdtemp(prefix="npfm-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(data, entry.pw_uid, entry.pw_gid)
    init = subprocess.run(_as_user([str(PG_BIN / "initdb"), "-D", str(data / "db"), "-U",
                                    "npfm", "--auth=trust", "-E", "UTF8", "--no-sync"]),
                          capture_output=True, text=True, timeout=120)
    if init.returncode:
        pytest.fail(f"initdb failed: {init.stderr.strip()[-500:]}")
    port = _free_port()
    log = data / "server.log"
    log_file = log.open("w")
    server = subprocess.Popen(
        _as_user([str(PG_BIN / "postgres"), "-D", str(data / "db"), "-p", str(port), "-k",
                  str(data), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
        stdout=log_file, stderr=subprocess.STDOUT)
    url = f"postgresql://npfm@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            break
        except psycopg.OperationalError as err:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"PostgreSQL did not start on port {port}: {err}; "
                            f"{log.read_text()[-500:]}")
            time.sleep(0.1)
    yield url
    # "fast" shutdown: no waiting for idle clients (SIGTERM would wait for them)
    subprocess.run(_as_user([str(PG_BIN / "pg_ctl"), "stop", "-m", "fast", "-D",
                             str(data / "db")]), capture_output=True, timeout=60, check=False)
    server.wait(timeout=30)
    log_file.close()
    shutil.rmtree(data, ignore_errors=True)


def new_pg_database(admin_url: str) -> str:
    """Create an empty database on the test server; returns its SQLAlchemy URL."""
    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: digits and letters only
    return admin_url.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] \
        + f"/{name}"


@pytest.fixture(autouse=True)
def _close_catalogs() -> Iterator[None]:
    """Close the catalog engines a test opened (no connection outlives its test)."""
    yield
    close_catalogs()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty catalog database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.sqlite"
    return new_pg_database(request.getfixturevalue("pg_server"))


SPHENIX = Path(__file__).resolve().parents[2] / "src/npfm/detectors/geometries/sphenix.yaml"


def write_toy_corpus(path: Path, events: int = 12) -> Path:
    """A small sPHENIX pp corpus written with the real writer (shards of <= 5 events)."""
    from npfm.events.build import events_to_table
    from npfm.events.metadata import Citation, Provenance
    from npfm.events.sample import sample_events
    from npfm.events.writer import CorpusWriter, file_record

    table_events = sample_events(events, seed=1, mean_tracks=3, noise_hits=2)
    for event in table_events:
        event["geometry_id"] = "sphenix"
    with CorpusWriter(path, name=path.name, citation=Citation(title=f"{path.name} corpus"),
                      provenance=Provenance(command="pytest", inputs=(file_record(SPHENIX),)),
                      shard_events=5) as writer:
        writer.write(events_to_table(table_events))
    return path


def write_toy_run(path: Path, corpus: Path) -> Path:
    """A pretraining run directory with one checkpoint (step 7) trained on ``corpus``."""
    import torch

    from npfm.train import checkpoint

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    checkpoint.save(path, 7, model, optimizer, {"corpora": [{"path": str(corpus)}]}, {})
    return path


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus shared by the tests that only read it."""
    return write_toy_corpus(tmp_path_factory.mktemp("corpora") / "toy")


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory: pytest.TempPathFactory, toy_corpus: Path) -> Path:
    return write_toy_run(tmp_path_factory.mktemp("runs") / "run", toy_corpus)
