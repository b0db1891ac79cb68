"""Portal fixtures: a catalog of five small real corpora with provenance, results, tokens."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from npfm.catalog.models import (
    BenchmarkResult,
    Checkpoint,
    Dataset,
    ProvenanceEdge,
    Site,
    close_catalogs,
    open_catalog,
)
from npfm.catalog.register import register
from npfm.catalog.tokens import create_token, revoke_token
from npfm.events.build import events_to_table
from npfm.events.metadata import Citation, Provenance
from npfm.events.sample import sample_events
from npfm.events.writer import CorpusWriter
from npfm.portal import create_app

LICENSE = "https://creativecommons.org/licenses/by/4.0/"
# name: (event overrides, title, description, keywords); events are toy tracks in the
# npfm event model with the beams and sqrt(s) of each experiment.
CORPORA: dict[str, tuple[dict[str, Any], str, str, list[str]]] = {
    "sphenix-pp200": (
        {}, "sPHENIX proton-proton collisions at 200 GeV",
        "Simulated sPHENIX proton-proton minimum-bias collisions at RHIC, sqrt(s) = 200 GeV, "
        "with MVTX, INTT and TPC hits and truth tracks for tracking studies.",
        ["tracking", "TPC", "RHIC"]),
    "sphenix-pp200-copy": (
        {}, "sPHENIX proton-proton collisions at 200 GeV (second copy)",
        "Simulated sPHENIX proton-proton minimum-bias collisions at RHIC, sqrt(s) = 200 GeV, "
        "with MVTX, INTT and TPC hits and truth tracks for tracking studies.",
        ["tracking", "TPC", "RHIC"]),
    "sphenix-auau": (
        {"beam1_pdg": 1000791970, "beam2_pdg": 1000791970},
        "sPHENIX gold-gold collisions at 200 GeV per nucleon pair",
        "Simulated sPHENIX Au+Au heavy-ion collisions at RHIC with TPC and silicon tracker "
        "hits, for high-multiplicity tracking.", ["heavy ions", "tracking"]),
    "aleph-z": (
        {"facility": "LEP", "experiment": "ALEPH", "beam1_pdg": 11, "beam2_pdg": -11,
         "beam1_energy": 45.6, "beam2_energy": 45.6, "sqrt_s": 91.2, "geometry_id": "aleph"},
        "ALEPH electron-positron annihilation at the Z pole",
        "Simulated ALEPH e+e- annihilation into hadrons at LEP, sqrt(s) = 91.2 GeV, the Z "
        "boson resonance, with TPC hits.", ["Z boson", "LEP1", "hadronic events"]),
    "zeus-dis": (
        {"facility": "HERA", "experiment": "ZEUS", "beam1_pdg": 11, "beam2_pdg": 2212,
         "beam1_energy": 27.5, "beam2_energy": 920.0, "sqrt_s": 318.0, "geometry_id": "zeus"},
        "ZEUS deep inelastic electron-proton scattering",
        "Simulated ZEUS neutral-current deep inelastic ep scattering at HERA, sqrt(s) = 318 "
        "GeV, with central tracking detector hits.", ["DIS", "structure functions"]),
}


@dataclass(frozen=True)
class Portal:
    """The catalog file, its URL, dataset ids by name and the corpus directories."""

    db: Path
    url: str
    ids: dict[str, int]
    dirs: dict[str, Path]
    result_id: int


def _corpus(path: Path, overrides: dict[str, Any], seed: int) -> Path:
    events = [{**e, **overrides} for e in sample_events(12, seed=seed, mean_tracks=6.0)]
    with CorpusWriter(path, name=path.name, citation=Citation(title=path.name),
                      provenance=Provenance(command="pytest"), shard_events=5) as writer:
        writer.write(events_to_table(events))
    return path


def build_catalog(root: Path, url: str | None = None) -> Portal:
    """Write the corpora, register them, curate their text, add provenance and a result
    (in the SQLite file ``root/catalog.sqlite`` unless another catalog ``url`` is given)."""
    url = url or f"sqlite:///{root / 'catalog.sqlite'}"
    sessions = open_catalog(url)
    ids, dirs = {}, {}
    with sessions() as session:
        for seed, (name, (overrides, title, text, keywords)) in enumerate(CORPORA.items()):
            dirs[name] = _corpus(root / name, overrides, seed)
            register(dirs[name], session)
            dataset = session.scalars(select(Dataset).order_by(Dataset.id.desc())).first()
            assert dataset is not None
            dataset.name, dataset.title, dataset.description = name, title, text
            dataset.keywords, dataset.license = keywords, LICENSE
            ids[name] = dataset.id
        copy = session.get(Dataset, ids["sphenix-pp200-copy"])
        assert copy is not None
        copy.facets = [f for f in copy.facets if f.facet not in ("facility", "license")]
        copy.facility, copy.license = None, ""
        first = session.get(Dataset, ids["sphenix-pp200"])
        assert first is not None
        checkpoint = Checkpoint(run_path=str(root / "run"), step=100, model_sha256="c" * 64,
                                config={"width": 64})
        session.add(checkpoint)
        session.flush()
        result = BenchmarkResult(name="tracking-ari", task="tracking", metric="ari",
                                 value=0.9123, lo=0.90, hi=0.92, seeds=[1, 2, 3],
                                 checkpoint_id=checkpoint.id, details={"events": 12})
        session.add(result)
        session.flush()
        session.add_all([
            ProvenanceEdge(source_kind="checkpoint", source_id="c" * 64,
                           target_kind="dataset", target_id=first.manifest_sha256,
                           relation="trained_on"),
            ProvenanceEdge(source_kind="benchmark_result", source_id=str(result.id),
                           target_kind="checkpoint", target_id="c" * 64,
                           relation="evaluates"),
            Site(name="mirror", url_prefix="https://mirror.example/npfm", kind="http",
                 priority=10)])
        session.commit()
        result_id = result.id
    return Portal(root / "catalog.sqlite", url, ids, dirs, result_id)


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Portal:
    """A read-only catalog shared by the tests (copy it before writing: ``write_portal``)."""
    return build_catalog(tmp_path_factory.mktemp("portal"))


def dispose(app: FastAPI) -> None:
    """Close the pooled connections of an app's catalog engine."""
    app.state.portal.sessions.kw["bind"].dispose()


@pytest.fixture(scope="session")
def client(portal: Portal) -> Iterator[TestClient]:
    app = create_app(portal.url)
    with TestClient(app) as test_client:
        yield test_client
    dispose(app)


@pytest.fixture
def write_portal(portal: Portal, tmp_path: Path) -> Iterator[tuple[TestClient, str, Portal]]:
    """A client on a copy of the catalog, and its URL, for tests that write."""
    db = tmp_path / "catalog.sqlite"
    shutil.copy(portal.db, db)
    url = f"sqlite:///{db}"
    app = create_app(url)
    yield TestClient(app), url, portal
    dispose(app)


@pytest.fixture
def tokens(write_portal: tuple[TestClient, str, Portal]) -> dict[str, str]:
    """Secrets of tokens in the copied catalog: curate, replica, revoked curate, register."""
    _, url, _ = write_portal
    sessions = open_catalog(url)
    with sessions() as session:
        out = {"curate": create_token(session, "curator", ["curate"]),
               "replica": create_token(session, "mover", ["replica"]),
               "revoked": create_token(session, "old-curator", ["curate"]),
               "register": create_token(session, "registrar", ["register"])}
        revoke_token(session, "old-curator")
    return out


@pytest.fixture(autouse=True)
def _close_catalogs() -> Iterator[None]:
    """Dispose the connection pools a test opened (engines reconnect when used again)."""
    yield
    close_catalogs()


@pytest.fixture(scope="session")
def live_server(portal: Portal) -> Iterator[str]:
    """The portal served by uvicorn on a free loopback port, in a thread of this process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(portal.url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    dispose(app)
