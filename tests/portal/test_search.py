"""Search: facets with counts, full text, semantic ranking, pagination and its limits."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient
from tests.portal.conftest import Portal


def names(response_json: dict) -> list[str]:
    return [item["name"] for item in response_json["items"]]


def test_facets_count_datasets_per_value(client: TestClient) -> None:
    body = client.get("/api/v1/search").json()
    assert body["total"] == 5
    facets = {name: dict(values) for name, values in body["facets"].items()}
    assert facets["facility"] == {"RHIC": 2, "LEP": 1, "HERA": 1}  # the copy lacks it
    assert facets["experiment"] == {"sPHENIX": 3, "ALEPH": 1, "ZEUS": 1}
    assert facets["collision_system"] == {"pp": 2, "AuAu": 1, "e+e-": 1, "ep": 1}
    assert facets["energy_gev"] == {"200": 3, "91.2": 1, "318": 1}
    assert facets["data_level"] == {"simulated": 5}
    assert sum(facets["license"].values()) == 4


def test_facet_filters_combine_and_counts_drill_sideways(client: TestClient) -> None:
    body = client.get("/api/v1/search", params={"experiment": "sPHENIX",
                                               "collision_system": "pp"}).json()
    assert sorted(names(body)) == ["sphenix-pp200", "sphenix-pp200-copy"]
    # The experiment facet still counts the other experiments under the other filter.
    assert dict(body["facets"]["collision_system"]) == {"pp": 2, "AuAu": 1}
    energy = client.get("/api/v1/search", params={"energy_gev": 91.2}).json()
    assert names(energy) == ["aleph-z"]


def test_full_text_matches_every_word_in_title_description_keywords(
        client: TestClient) -> None:
    assert names(client.get("/api/v1/search", params={"q": "deep inelastic"}).json()) == [
        "zeus-dis"]
    assert names(client.get("/api/v1/search", params={"q": "LEP1"}).json()) == ["aleph-z"]
    both = client.get("/api/v1/search", params={"q": "sphenix tracking"}).json()
    assert both["total"] == 3
    assert client.get("/api/v1/search", params={"q": "sphenix ALEPH"}).json()["total"] == 0


def test_like_wildcards_are_literal(client: TestClient) -> None:
    assert client.get("/api/v1/search", params={"q": "%"}).json()["total"] == 0
    assert client.get("/api/v1/search", params={"q": "_"}).json()["total"] == 0


def test_semantic_search_ranks_by_meaning(client: TestClient) -> None:
    body = client.get("/api/v1/search", params={
        "q": "e+e- collisions on the Z resonance", "mode": "semantic"}).json()
    assert names(body)[0] == "aleph-z"
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert -1 <= scores[-1] <= scores[0] <= 1
    dis = client.get("/api/v1/search", params={"q": "deep inelastic scattering at HERA",
                                               "mode": "semantic", "limit": 1}).json()
    assert names(dis) == ["zeus-dis"]
    assert dis["total"] == 5


def test_pagination_has_total_and_next_link(client: TestClient) -> None:
    first = client.get("/api/v1/search", params={"limit": 2}).json()
    assert (first["total"], len(first["items"]), first["offset"]) == (5, 2, 0)
    seen = names(first)
    page = first
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += names(page)
    assert len(seen) == len(set(seen)) == 5
    assert page["next"] is None


@pytest.mark.parametrize("params", [
    {"limit": 101}, {"limit": 0}, {"offset": -1}, {"offset": 10**7}, {"mode": "regex"},
    {"q": "x" * 201}, {"energy_gev": "abc"}, {"energy_gev": -1}, {"facility": "x" * 129},
    {"unknown": "1"}])
def test_out_of_range_parameters_are_rejected(client: TestClient,
                                              params: dict[str, object]) -> None:
    response = client.get("/api/v1/search", params=params)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("attack", [
    "'; DROP TABLE dataset; --", "x' OR '1'='1", "\" OR 1=1 --", "1); DELETE FROM file; --",
    "%' UNION SELECT token_sha256 FROM api_token --"])
def test_sql_injection_finds_nothing_and_leaves_tables(client: TestClient, portal: Portal,
                                                       attack: str) -> None:
    for params in ({"q": attack}, {"facility": attack}, {"license": attack},
                   {"q": attack, "experiment": attack}):
        body = client.get("/api/v1/search", params=params).json()
        assert body["total"] == 0
        assert body["items"] == []
    assert client.get("/", params={"q": attack}).status_code == 200
    with sqlite3.connect(portal.db) as conn:
        assert conn.execute("SELECT count(*) FROM dataset").fetchone()[0] == 5
        assert conn.execute("SELECT count(*) FROM file").fetchone()[0] == 15


def test_search_page_shows_facets_and_results(client: TestClient) -> None:
    html = client.get("/", params={"q": "sPHENIX"}).text
    assert "3 datasets" in html
    assert 'data-facet="experiment"' in html
    assert "ALEPH" not in html.split("results")[-1]
    assert html.count('class="hit"') == 3
    attack = client.get("/", params={"q": "<script>alert(1)</script>"}).text
    assert "<script>alert(1)</script>" not in attack
    assert "&lt;script&gt;" in attack
