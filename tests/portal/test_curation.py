"""AI-assisted curation: embedding-neighbour suggestions and near-duplicates."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from tests.portal.conftest import LICENSE, Portal

from npfm.catalog.embedding import shared_embedder


def test_embeddings_are_unit_vectors_that_rank_by_meaning() -> None:
    vectors = shared_embedder().encode(["proton-proton collisions at RHIC",
                                        "pp collisions at the Relativistic Heavy Ion Collider",
                                        "a recipe for apple pie"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.5 > sims[0, 2]


def test_missing_facility_and_license_are_suggested_with_evidence(
        client: TestClient, portal: Portal) -> None:
    suggestions = client.get(
        f"/api/v1/datasets/{portal.ids['sphenix-pp200-copy']}/suggestions").json()
    by_field = {s["field"]: s for s in suggestions}
    assert set(by_field) == {"facility", "license"}
    assert by_field["facility"]["value"] == "RHIC"
    assert by_field["license"]["value"] == LICENSE
    evidence = by_field["facility"]["evidence"]
    assert evidence[0]["name"] == "sphenix-pp200"
    assert evidence[0]["similarity"] > 0.95
    sims = [e["similarity"] for e in evidence]
    assert sims == sorted(sims, reverse=True)
    assert 0.5 < by_field["facility"]["confidence"] <= 1.0


def test_complete_dataset_needs_no_suggestion(client: TestClient, portal: Portal) -> None:
    assert client.get(f"/api/v1/datasets/{portal.ids['aleph-z']}/suggestions").json() == []


def test_near_duplicates_are_the_two_copies(client: TestClient, portal: Portal) -> None:
    pairs = client.get("/api/v1/curation/duplicates").json()
    assert [{p["a"]["name"], p["b"]["name"]} for p in pairs] == [
        {"sphenix-pp200", "sphenix-pp200-copy"}]
    looser = client.get("/api/v1/curation/duplicates", params={"threshold": 0.7}).json()
    assert len(looser) > 1
    assert client.get("/api/v1/curation/duplicates",
                      params={"threshold": 0.1}).status_code == 422


def test_curation_page_shows_suggestions_and_duplicates(client: TestClient,
                                                        portal: Portal) -> None:
    html = client.get(f"/datasets/{portal.ids['sphenix-pp200-copy']}/curation").text
    assert 'data-field="facility"' in html
    assert "RHIC" in html
    assert 'class="duplicate"' in html
    assert "sphenix-pp200</a>" in html
