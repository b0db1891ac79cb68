"""Writes need a live, scoped bearer token; inputs are validated before any SQL runs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.portal.conftest import Portal

from npfm.catalog.models import Dataset, Replica, open_catalog


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def target(write_portal: tuple) -> tuple[TestClient, str, int]:
    test_client, url, portal = write_portal
    return test_client, url, portal.ids["sphenix-pp200-copy"]


def test_annotation_with_a_curate_token_updates_columns_and_facets(
        target: tuple, tokens: dict[str, str]) -> None:
    test_client, url, dataset_id = target
    response = test_client.post(f"/api/v1/datasets/{dataset_id}/annotations",
                                json={"facility": "RHIC", "keywords": ["tracking", "copy"]},
                                headers=bearer(tokens["curate"]))
    assert response.status_code == 200, response.text
    assert response.json()["facility"] == "RHIC"
    with open_catalog(url)() as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset.facility == "RHIC"
        assert dataset.keywords == ["tracking", "copy"]
        assert dataset.record["curated_by"] == "curator"
    facets = dict(test_client.get("/api/v1/search").json()["facets"]["facility"])
    assert facets["RHIC"] == 3


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), ({"Authorization": "Bearer "}, 401), ({"Authorization": "Basic dXNlcjpwdw=="}, 401),
    ({"Authorization": "Bearer npfm_not-a-real-token"}, 401),
    ({"Authorization": "Bearer " + "x" * 5000}, 401)])
def test_missing_or_unknown_tokens_get_401(target: tuple, tokens: dict[str, str],
                                           headers: dict[str, str], status: int) -> None:
    test_client, url, dataset_id = target
    response = test_client.post(f"/api/v1/datasets/{dataset_id}/annotations",
                                json={"facility": "LEP"}, headers=headers)
    assert response.status_code == status
    assert response.headers["www-authenticate"].startswith("Bearer")
    with open_catalog(url)() as session:
        assert session.get(Dataset, dataset_id).facility is None


@pytest.mark.parametrize("which", ["revoked", "register", "replica"])
def test_revoked_or_out_of_scope_tokens_get_403(target: tuple, tokens: dict[str, str],
                                                which: str) -> None:
    test_client, url, dataset_id = target
    response = test_client.post(f"/api/v1/datasets/{dataset_id}/annotations",
                                json={"facility": "LEP"}, headers=bearer(tokens[which]))
    assert response.status_code == 403
    with open_catalog(url)() as session:
        assert session.get(Dataset, dataset_id).facility is None


@pytest.mark.parametrize("body", [
    {"facility": "LEP", "owner": "me"}, {"energy_gev": -5}, {"energy_gev": "high"},
    {"license": "javascript:alert(1)"}, {"collision_system": "pp'; DROP TABLE dataset;--"},
    {"facility": "<b>LEP</b>"}, {"facility": ""}, {"keywords": ["k"] * 33},
    {"description": "x" * 8193}, {"facility": "x" * 129}, [1, 2], "text"])
def test_invalid_annotations_get_422(target: tuple, tokens: dict[str, str],
                                     body: object) -> None:
    test_client, _, dataset_id = target
    response = test_client.post(f"/api/v1/datasets/{dataset_id}/annotations", json=body,
                                headers=bearer(tokens["curate"]))
    assert response.status_code == 422, response.text


def test_oversized_body_gets_413(target: tuple, tokens: dict[str, str]) -> None:
    test_client, _, dataset_id = target
    response = test_client.post(f"/api/v1/datasets/{dataset_id}/annotations",
                                content=b'{"description": "' + b"x" * 70_000 + b'"}',
                                headers={**bearer(tokens["curate"]),
                                         "Content-Type": "application/json"})
    assert response.status_code == 413


def test_chunked_body_without_length_gets_411(target: tuple, tokens: dict[str, str]) -> None:
    test_client, _, dataset_id = target
    response = test_client.post(f"/api/v1/datasets/{dataset_id}/annotations",
                                content=iter([b'{"facility": ', b'"LEP"}']),
                                headers={**bearer(tokens["curate"]),
                                         "Content-Type": "application/json"})
    assert response.status_code == 411


def test_annotation_of_a_missing_dataset_is_404(target: tuple, tokens: dict[str, str]) -> None:
    test_client, _, _ = target
    response = test_client.post("/api/v1/datasets/999/annotations", json={"facility": "LEP"},
                                headers=bearer(tokens["curate"]))
    assert response.status_code == 404


def test_register_a_replica_with_a_replica_token(write_portal: tuple,
                                                 tokens: dict[str, str]) -> None:
    test_client, url, portal = write_portal
    files = test_client.get(f"/api/v1/datasets/{portal.ids['aleph-z']}/files").json()["items"]
    body = {"file_id": files[0]["id"], "site": "mirror", "adler32": files[0]["adler32"],
            "url": f"https://mirror.example/npfm/aleph-z/{files[0]['path']}"}
    assert test_client.post("/api/v1/replicas", json=body,
                            headers=bearer(tokens["curate"])).status_code == 403
    response = test_client.post("/api/v1/replicas", json=body,
                                headers=bearer(tokens["replica"]))
    assert response.status_code == 201, response.text
    with open_catalog(url)() as session:
        replica = session.scalar(select(Replica).where(Replica.site == "mirror"))
        assert replica is not None
        assert replica.url == body["url"]
        assert replica.adler32 == files[0]["adler32"]
    listed = test_client.get(f"/api/v1/datasets/{portal.ids['aleph-z']}/files").json()
    assert {"site": "mirror", "url": body["url"], "status": "available"} in (
        listed["items"][0]["replicas"])


@pytest.mark.parametrize("change", [
    {"site": "nowhere"}, {"url": "ftp://mirror.example/x"}, {"url": "https://a b"},
    {"adler32": "XYZ"}, {"sha256": "0" * 63}, {"file_id": 0}, {"file_id": 999999},
    {"site": "../etc"}])
def test_bad_replicas_are_refused(write_portal: tuple, tokens: dict[str, str],
                                  change: dict[str, object]) -> None:
    test_client, url, _portal = write_portal
    body = {"file_id": 1, "site": "mirror", "url": "https://mirror.example/npfm/x.parquet",
            **change}
    response = test_client.post("/api/v1/replicas", json=body,
                                headers=bearer(tokens["replica"]))
    assert response.status_code in (404, 422), response.text
    with open_catalog(url)() as session:
        assert session.scalar(select(Replica).where(Replica.site != "local")) is None


def test_reads_need_no_token(client: TestClient, portal: Portal) -> None:
    assert client.get(f"/api/v1/datasets/{portal.ids['aleph-z']}").status_code == 200
    assert client.post("/api/v1/search").status_code == 405
