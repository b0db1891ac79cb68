"""The search index: stemmed full text over text, facets and results, normalised facets,
and embeddings precomputed when a dataset is written."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from npfm.catalog.embedding import shared_embedder
from npfm.catalog.facets import collision_system, normalise
from npfm.catalog.models import Dataset, DatasetSearch, open_catalog
from npfm.catalog.search_index import query_terms, terms


def names(client: TestClient, **params: object) -> list[str]:
    return [i["name"] for i in client.get("/api/v1/search", params=params).json()["items"]]


def test_terms_are_stemmed_and_stop_words_dropped() -> None:
    assert terms("Tracking the tracks of Collisions") == ["track", "track", "collis"]
    assert query_terms("the of and") == []
    assert terms("Zürich √s e+e-") == ["zurich", "s", "e", "e"]


@pytest.mark.parametrize(("query", "expected"), [
    # every toy corpus has truth track labels, named in its generated content
    ("track", {"sphenix-pp200", "sphenix-pp200-copy", "sphenix-auau", "zeus-dis",
               "aleph-z"}),
    ("tracked collision", {"sphenix-pp200", "sphenix-pp200-copy", "sphenix-auau"}),
    ("annihilating", {"aleph-z"}),
    ("the Z pole", {"aleph-z"}),
    ("ari", {"sphenix-pp200"}),  # the metric of a result of a checkpoint trained on it
    ("AuAu", {"sphenix-auau"}),  # a facet value
    ("!!!", set()),
])
def test_stemmed_search_finds_words_in_any_form(client: TestClient, query: str,
                                                expected: set[str]) -> None:
    assert set(names(client, q=query)) == expected


def test_title_matches_rank_before_body_matches(client: TestClient) -> None:
    found = names(client, q="heavy ion")
    assert found[0] == "sphenix-auau"  # "heavy ions" is its keyword, not in its title
    assert names(client, q="gold")[0] == "sphenix-auau"
    ranked = names(client, q="RHIC tracking")
    assert set(ranked[:3]) == {"sphenix-pp200", "sphenix-pp200-copy", "sphenix-auau"}


@pytest.mark.parametrize(("facet", "raw", "canonical"), [
    ("experiment", "aleph", "ALEPH"), ("experiment", " sphenix ", "sPHENIX"),
    ("experiment", "EPIC", "ePIC"), ("detector", "ALEPH", "aleph"),
    ("facility", "rhic", "RHIC"), ("collision_system", "au+au", "AuAu"),
    ("license", "https://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0"),
    ("license", "http://creativecommons.org/licenses/by/4.0", "CC-BY-4.0"),
    ("experiment", "MyNewExperiment", "MyNewExperiment")])
def test_facet_values_are_normalised(facet: str, raw: str, canonical: str) -> None:
    assert normalise(facet, raw) == canonical


@pytest.mark.parametrize(("beams", "name"), [
    ((11, 2212), "ep"), ((11, 1000010020), "ed"), ((-11, 1000010020), "ed"),
    ((1000010020, 1000791970), "dAu"), ((1000791970, 1000791970), "AuAu"),
    ((11, -11), "e+e-"), ((2212, 2212), "pp")])
def test_beam_pairs_name_their_collision_system(beams: tuple[int, int], name: str) -> None:
    assert collision_system(*beams) == name
    assert normalise("collision_system", name) == name


def test_annotated_and_filtered_facets_are_normalised(write_portal: tuple,
                                                      tokens: dict[str, str]) -> None:
    test_client, _, portal = write_portal
    response = test_client.post(
        f"/api/v1/datasets/{portal.ids['zeus-dis']}/annotations",
        json={"detector": "ZEUS"}, headers={"Authorization": f"Bearer {tokens['curate']}"})
    assert response.status_code == 200
    facets = test_client.get("/api/v1/search").json()["facets"]
    detectors = [v for v, _ in facets["detector"]]
    assert len(detectors) == len({v.lower() for v in detectors})
    assert ("zeus", 1) in [tuple(v) for v in facets["detector"]]
    assert "CC-BY-4.0" in dict(facets["license"])
    assert names(test_client, experiment="aleph") == ["aleph-z"]
    assert set(names(test_client, license="CC-BY-4.0")) == {
        "sphenix-pp200", "sphenix-auau", "aleph-z", "zeus-dis"}


def test_embeddings_are_stored_at_registration_and_follow_the_text(write_portal: tuple
                                                                   ) -> None:
    _, url, portal = write_portal
    sessions = open_catalog(url)
    with sessions() as session:
        rows = {r.dataset_id: r for r in session.scalars(select(DatasetSearch))}
        assert set(rows) == set(portal.ids.values())
        before = np.frombuffer(rows[portal.ids["zeus-dis"]].embedding, np.float32)
        assert before.shape == (384,)
        assert abs(float(np.linalg.norm(before)) - 1.0) < 1e-5
        dataset = session.get(Dataset, portal.ids["zeus-dis"])
        dataset.description = "Lattice QCD gauge configurations of pure SU(3)."
        session.commit()
    with sessions() as session:
        row = session.get(DatasetSearch, portal.ids["zeus-dis"])
        after = np.frombuffer(row.embedding, np.float32)
        assert "lattic" in row.body.split()
        text = shared_embedder().encode([("Lattice QCD gauge configurations")])[0]
        assert float(after @ text) > float(before @ text) + 0.2


def test_semantic_search_reads_the_index(write_portal: tuple) -> None:
    test_client, url, portal = write_portal
    with open_catalog(url)() as session:  # the index answers, whatever the text says now
        row = session.get(DatasetSearch, portal.ids["aleph-z"])
        row.embedding = shared_embedder().encode(["apple pie recipe"])[0].tobytes()
        session.commit()
    found = test_client.get("/api/v1/search", params={"q": "apple pie", "mode": "semantic",
                                                      "limit": 1}).json()
    assert [i["name"] for i in found["items"]] == ["aleph-z"]


def test_a_write_refreshes_cached_search_replies(write_portal: tuple,
                                                 tokens: dict[str, str]) -> None:
    test_client, _, portal = write_portal
    for _ in range(2):  # the second answer comes from the reply cache
        assert names(test_client, q="HERA II") == []
        assert "zeus-dis" not in test_client.get("/?q=HERA+II").text
    response = test_client.post(
        f"/api/v1/datasets/{portal.ids['zeus-dis']}/annotations",
        json={"keywords": ["DIS", "HERA II"]},
        headers={"Authorization": f"Bearer {tokens['curate']}"})
    assert response.status_code == 200
    assert names(test_client, q="HERA II") == ["zeus-dis"]
    assert "zeus-dis" in test_client.get("/?q=HERA+II").text
