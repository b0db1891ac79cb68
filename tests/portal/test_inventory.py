"""Inventory records in the portal: found by search and facets, and their dataset pages
show the DOI, the landing page and how npfm imports the data."""

from __future__ import annotations

import html

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.portal.conftest import Portal

from npfm.catalog.inventory import load_inventory, register_inventory
from npfm.catalog.models import Dataset, open_catalog


@pytest.fixture
def inventory_portal(write_portal: tuple[TestClient, str, Portal]
                     ) -> tuple[TestClient, dict[str, int]]:
    """The portal's corpora plus the shipped inventory; dataset ids by name."""
    client, url, _ = write_portal
    with open_catalog(url)() as session:
        register_inventory(session)
        ids = {d.name: d.id for d in session.scalars(select(Dataset))}
    return client, ids


def names(client: TestClient, **params: str) -> list[str]:
    body = client.get("/api/v1/search", params=params).json()
    return [item["name"] for item in body["items"]]


def test_inventory_records_are_found_by_text_facets_and_meaning(
        inventory_portal: tuple[TestClient, dict[str, int]]) -> None:
    client, _ = inventory_portal
    assert set(names(client, q="ALEPH")) == {"aleph-z", "mit-aleph-archive"}
    assert names(client, q="TPC spacepoints") == ["tpcpp-10m"]
    assert names(client, q="Zenodo") == ["tpcpp-10m"]  # the publisher is searchable
    assert names(client, experiment="alice") == ["alice-2010-pbpb-run139038"]
    assert set(names(client, facility="lattice")) == {
        "etmc-single-configurations", "jlqcd-nf2-overlap-jldg", "milc-asqtad-nersc"}
    assert names(client, q="sphenix", data_level="simulated", experiment="sPHENIX",
                 detector="sphenix", energy_gev="200")[-1] == "tpcpp-10m"
    top = names(client, q="gauge field configurations of lattice QCD", mode="semantic",
                limit="3")
    assert set(top) == {"etmc-single-configurations", "jlqcd-nf2-overlap-jldg",
                        "milc-asqtad-nersc"}


def test_page_shows_doi_landing_page_and_how_npfm_imports_it(
        inventory_portal: tuple[TestClient, dict[str, int]]) -> None:
    client, ids = inventory_portal
    records = {r.key: r for r in load_inventory()}
    page = client.get(f"/datasets/{ids['tpcpp-10m']}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert ('<a class="badge doi" href="https://doi.org/10.5281/zenodo.16970029">'
            'DOI 10.5281/zenodo.16970029</a>') in text
    assert '<a class="landing" href="https://doi.org/10.5281/zenodo.16970029">' in text
    assert "How npfm imports it" in text
    assert " ".join(records["tpcpp-10m"].npfm_import.split()) in " ".join(text.split())
    for source in records["tpcpp-10m"].sources:
        assert f'<a href="{source}">' in text
    assert 'id="event-display"' not in text  # metadata only: no files to display
    assert "0 files" in text


def test_page_without_doi_says_why(inventory_portal: tuple[TestClient, dict[str, int]]
                                   ) -> None:
    client, ids = inventory_portal
    text = html.unescape(client.get(f"/datasets/{ids['mit-aleph-archive']}").text)
    assert 'class="badge doi"' not in text
    assert '<a class="landing" href="https://github.com/MITOpenData/e-e-_Analysis">' in text
    assert "No DOI: the files are published only in the GitHub repository" in text
    assert "npfm import-aleph DIR --out CORPUS" in text


def test_corpus_pages_keep_their_event_display(client: TestClient, portal: Portal) -> None:
    text = client.get(f"/datasets/{portal.ids['aleph-z']}").text
    assert 'id="event-display"' in text
    assert 'id="npfm-import"' not in text
