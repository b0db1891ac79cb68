"""Hostile JSON reaches no route as a 500: non-finite numbers and oversized values get a
short 422 with a JSON error."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from npfm.portal.security import MAX_ECHO


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


@pytest.mark.parametrize("raw", [b'{"energy_gev": NaN}', b'{"energy_gev": Infinity}',
                                 b'{"energy_gev": -Infinity}', b'{"energy_gev": 1e999}'])
def test_non_finite_energy_annotation_is_a_422(write_portal: tuple, tokens: dict[str, str],
                                               raw: bytes) -> None:
    test_client, _, portal = write_portal
    dataset_id = portal.ids["sphenix-pp200-copy"]
    response = test_client.post(f"/api/v1/datasets/{dataset_id}/annotations", content=raw,
                                headers=bearer(tokens["curate"]))
    assert response.status_code == 422, response.text
    assert "energy_gev" in response.text
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("raw", [b'{"file_id": NaN, "site": "mirror", "url": "https://m.x/a"}',
                                 b'{"file_id": 1, "site": "mirror", "url": "https://m.x/a", '
                                 b'"adler32": Infinity}'])
def test_non_finite_replica_is_a_422(write_portal: tuple, tokens: dict[str, str],
                                     raw: bytes) -> None:
    test_client, _, _ = write_portal
    response = test_client.post("/api/v1/replicas", content=raw,
                                headers=bearer(tokens["replica"]))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("query", ["energy_gev=nan", "energy_gev=inf", "energy_gev=-inf"])
def test_non_finite_search_filters_are_a_422(client: TestClient, query: str) -> None:
    response = client.get(f"/api/v1/search?{query}")
    assert response.status_code == 422, response.text
    assert client.get(f"/?{query}").status_code == 422


def test_a_422_does_not_echo_an_oversized_input(write_portal: tuple,
                                                tokens: dict[str, str]) -> None:
    test_client, _, portal = write_portal
    dataset_id = portal.ids["sphenix-pp200-copy"]
    huge = "x" * 60_000
    response = test_client.post(f"/api/v1/datasets/{dataset_id}/annotations",
                                json={"description": huge}, headers=bearer(tokens["curate"]))
    assert response.status_code == 422
    assert len(response.content) < 4 * MAX_ECHO + 2000
    assert "description" in response.text
    search = test_client.get("/api/v1/search?q=" + "y" * 5000)
    assert search.status_code == 422
    assert len(search.content) < 4 * MAX_ECHO + 2000
