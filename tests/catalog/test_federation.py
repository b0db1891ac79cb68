"""Sites, replicas, ``locate`` over file:// and HTTP on loopback, and verification."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.federation import add_replica, add_site, locate, reachable, verify
from npfm.catalog.models import Dataset, Replica, open_catalog
from npfm.catalog.register import register
from npfm.events.errors import NpfmError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path, toy_corpus: Path) -> Iterator[tuple[Path, str]]:
    """A copy of the toy corpus served over HTTP on 127.0.0.1; yields (dir, base URL)."""
    root = tmp_path / "mirror"
    shutil.copytree(toy_corpus, root)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _mirror_replicas(session: Session, base: str) -> None:
    dataset = session.scalars(select(Dataset)).one()
    for file in dataset.files:
        add_replica(session, "toy", file.path, "mirror", f"{base}/{file.path}")


def test_locate_prefers_reachable_replicas_at_preferred_sites(
        db_url: str, tmp_path: Path, toy_corpus: Path, mirror: tuple[Path, str]) -> None:
    corpus = Path(shutil.copytree(toy_corpus, tmp_path / "toy"))
    _, base = mirror
    with open_catalog(db_url)() as session:
        register(corpus, session)
        add_site(session, "mirror", base, kind="http", priority=10)
        add_site(session, "dead", "http://127.0.0.1:9", kind="http", priority=1)
        _mirror_replicas(session, base)
        dataset = session.scalars(select(Dataset)).one()
        for file in dataset.files:  # most preferred site, but nothing listens there
            add_replica(session, "toy", file.path, "dead", f"http://127.0.0.1:9/{file.path}")
        chosen = locate(session, "toy")
        assert [r.site for r in chosen] == ["mirror"] * 3
        assert [r.file.path for r in chosen] == [f.path for f in dataset.files]
        add_site(session, "mirror", base, kind="http", priority=10, enabled=False)
        assert {r.site for r in locate(session, dataset.manifest_sha256)} == {"local"}
        (corpus / dataset.files[1].path).unlink()
        with pytest.raises(NpfmError, match=f"file {dataset.files[1].path}: no reachable "
                           "replica .tried: dead, local"):
            locate(session, str(dataset.id))


def test_verify_marks_bad_and_missing_replicas(db_url: str, tmp_path: Path, toy_corpus: Path,
                                               mirror: tuple[Path, str]) -> None:
    corpus = Path(shutil.copytree(toy_corpus, tmp_path / "toy"))
    root, base = mirror
    with open_catalog(db_url)() as session:
        register(corpus, session)
        add_site(session, "mirror", base, kind="http", priority=10)
        _mirror_replicas(session, base)
        dataset = session.scalars(select(Dataset)).one()
        first, second = dataset.files[0].path, dataset.files[1].path
        data = bytearray((root / first).read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte on the mirror
        (root / first).write_bytes(bytes(data))
        (corpus / second).unlink()  # gone from the local disk
        seen: list[int] = []
        report = verify(session, "toy", progress=seen.append)
        assert report.checked == 6
        assert report.ok == 4
        assert report.bad == [f"{base}/{first}"]
        assert report.missing == [(corpus / second).resolve().as_uri()]
        assert sum(seen) == 2 * sum(f.bytes for f in dataset.files) - dataset.files[1].bytes
        status = {(r.site, r.file.path): r.status for r in session.scalars(select(Replica))}
        assert status[("mirror", first)] == "bad"
        assert status[("local", second)] == "missing"
        assert all(r.checked is not None for r in session.scalars(select(Replica)))
        chosen = {r.file.path: r.site for r in locate(session, "toy")}
        assert chosen[first] == "local"
        assert chosen[second] == "mirror"


def test_reachable_and_replica_input_errors(tmp_path: Path, toy_corpus: Path) -> None:
    assert reachable((toy_corpus / "manifest.json").as_uri())
    assert not reachable((tmp_path / "nothing").as_uri())
    assert not reachable("http://127.0.0.1:9/x")
    assert not reachable("gopher://example.org/x")
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        register(toy_corpus, session)
        with pytest.raises(NpfmError, match="site nowhere: not in the catalog"):
            add_replica(session, "toy", "shards/part-00000.parquet", "nowhere", "file:///x")
        add_site(session, "s1", "file:///data")
        with pytest.raises(NpfmError, match=r"file shards/nope.parquet: not in the dataset"):
            add_replica(session, "toy", "shards/nope.parquet", "s1", "file:///x")
        with pytest.raises(NpfmError, match="dataset other: not in the catalog"):
            locate(session, "other")
        with pytest.raises(NpfmError, match=r"field url: .*URL must start with"):
            add_replica(session, "toy", "shards/part-00000.parquet", "s1", "javascript:x")
