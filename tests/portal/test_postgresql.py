"""The portal on a real PostgreSQL server (Debian's, on loopback): the same search, facets,
pages, attacks and writes as on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from tests.catalog.conftest import new_pg_database, pg_server
from tests.portal.conftest import Portal, build_catalog, dispose
from tests.portal.reference_search import use_columns
from tests.portal.test_search_equivalence import assert_same_as_before

from npfm.catalog.models import open_catalog
from npfm.catalog.tokens import create_token
from npfm.portal import create_app

__all__ = ["pg_server"]  # the catalog tests' PostgreSQL server fixture, used here too


@pytest.fixture(scope="module")
def pg_portal(pg_server: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[TestClient, Portal]]:
    portal = build_catalog(tmp_path_factory.mktemp("pg-portal"), new_pg_database(pg_server))
    app = create_app(portal.url)
    with TestClient(app) as test_client:
        yield test_client, portal
    dispose(app)


def _table_counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        datasets = conn.execute("SELECT count(*) FROM dataset").fetchone()
        files = conn.execute("SELECT count(*) FROM file").fetchone()
    assert datasets is not None
    assert files is not None
    return datasets[0], files[0]


@pytest.mark.slow
def test_search_and_facets_match_sqlite(pg_portal: tuple[TestClient, Portal],
                                        client: TestClient) -> None:
    test_client, _ = pg_portal
    for params in ({}, {"q": "sphenix tracking"}, {"experiment": "sPHENIX",
                                                   "collision_system": "pp"},
                   {"energy_gev": 91.2}, {"q": "LEP1"}, {"q": "%"}, {"q": "track"},
                   {"q": "tracked collision"}, {"q": "annihilating"}, {"q": "the Z pole"},
                   {"q": "ari"}, {"q": "RHIC tracking"}, {"q": "heavy ion"},
                   {"q": "e+e-"}, {"experiment": "aleph"}, {"license": "CC-BY-4.0"}):
        on_pg = test_client.get("/api/v1/search", params=params).json()
        on_sqlite = client.get("/api/v1/search", params=params).json()
        assert on_pg["facets"] == on_sqlite["facets"], params
        assert [i["name"] for i in on_pg["items"]] == [i["name"] for i in on_sqlite["items"]]
        assert on_pg["total"] == on_sqlite["total"], params
    semantic = {"q": "electron-positron annihilation", "mode": "semantic"}
    on_pg = test_client.get("/api/v1/search", params=semantic).json()["items"]
    on_sqlite = client.get("/api/v1/search", params=semantic).json()["items"]
    assert [(i["name"], i["score"]) for i in on_pg] == [(i["name"], i["score"])
                                                         for i in on_sqlite]


@pytest.mark.slow
@pytest.mark.parametrize("attack", ["'; DROP TABLE dataset; --", "x' OR '1'='1",
                                    "%' UNION SELECT token_sha256 FROM api_token --"])
def test_sql_injection_on_postgresql(pg_portal: tuple[TestClient, Portal],
                                     attack: str) -> None:
    test_client, portal = pg_portal
    for params in ({"q": attack}, {"facility": attack}, {"license": attack}):
        assert test_client.get("/api/v1/search", params=params).json()["total"] == 0
    assert _table_counts(portal.url) == (5, 15)


@pytest.mark.slow
def test_pages_and_a_scoped_write_on_postgresql(pg_portal: tuple[TestClient, Portal]
                                                ) -> None:
    test_client, portal = pg_portal
    dataset_id = portal.ids["sphenix-pp200"]
    page = test_client.get(f"/datasets/{dataset_id}").text
    assert "run run · step 100" in page
    assert "application/ld+json" in page
    assert test_client.get(f"/files/{dataset_id}", headers={"Range": "bytes=0-3"}
                           ).content == b"PAR1"
    with open_catalog(portal.url)() as session:
        secret = create_token(session, "pg-curator", ["curate"])
    response = test_client.post(f"/api/v1/datasets/{portal.ids['zeus-dis']}/annotations",
                                json={"keywords": ["DIS", "HERA II"]},
                                headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    hits = test_client.get("/api/v1/search", params={"q": "HERA II"}).json()
    assert [i["name"] for i in hits["items"]] == ["zeus-dis"]


@pytest.mark.slow
def test_same_results_as_before_on_postgresql(pg_server: str, tmp_path: Path) -> None:
    portal = build_catalog(tmp_path, new_pg_database(pg_server))
    sessions = open_catalog(portal.url)
    with sessions() as session:
        use_columns(session, portal.ids)
    assert_same_as_before(sessions)


def test_sqlite_catalog_is_a_file(portal: Portal) -> None:
    assert Path(portal.db).is_file()
    with sqlite3.connect(portal.db) as conn:
        assert conn.execute("SELECT count(*) FROM dataset").fetchone()[0] == 5
