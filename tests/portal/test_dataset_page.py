"""Dataset pages: metadata, FAIR score, JSON-LD, provenance SVG, files, results, events."""

from __future__ import annotations

import json
import re
import zlib

import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.portal.conftest import Portal

from npfm.catalog.exports import schema_org_jsonld
from npfm.catalog.models import Dataset, open_catalog


def _jsonld(html: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_page_embeds_schema_org_jsonld(client: TestClient, portal: Portal) -> None:
    html = client.get(f"/datasets/{portal.ids['aleph-z']}").text
    doc = _jsonld(html)
    with open_catalog(portal.url)() as session:
        dataset = session.get(Dataset, portal.ids["aleph-z"])
        assert doc == schema_org_jsonld(dataset)
    assert doc["@type"] == "Dataset"
    assert doc["name"].startswith("ALEPH")


def test_jsonld_cannot_close_its_script_element(write_portal: tuple) -> None:
    test_client, url, portal = write_portal
    with open_catalog(url)() as session:
        dataset = session.get(Dataset, portal.ids["zeus-dis"])
        dataset.title = "</script><script>alert(1)</script>"
        session.commit()
    html = test_client.get(f"/datasets/{portal.ids['zeus-dis']}").text
    assert "<script>alert(1)" not in html
    assert _jsonld(html)["name"] == "</script><script>alert(1)</script>"


def test_page_shows_fair_score_and_what_is_missing(client: TestClient, portal: Portal) -> None:
    body = client.get(f"/api/v1/datasets/{portal.ids['sphenix-pp200-copy']}").json()
    missing = {m["field"] for m in body["fair"]["missing"]}
    assert "facets.experiment" in missing  # facility was removed from this copy
    html = client.get(f"/datasets/{portal.ids['sphenix-pp200-copy']}").text
    assert f'{body["fair"]["score"] * 100:.0f}%' in html
    for entry in body["fair"]["missing"]:
        assert entry["field"] in html


def test_provenance_graph_links_dataset_checkpoint_and_result(client: TestClient,
                                                              portal: Portal) -> None:
    html = client.get(f"/datasets/{portal.ids['sphenix-pp200']}").text
    svg = html[html.index('<svg class="provenance"'):html.index("</svg>") + 6]
    assert svg.count('class="node') == 1 + 3 + 1 + 1  # dataset, 3 shards, checkpoint, result
    for relation in ("has_member", "trained_on", "evaluates"):
        assert f">{relation}</text>" in svg
    assert f'href="/results/{portal.result_id}"' in svg
    graph = client.get(f"/api/v1/datasets/{portal.ids['sphenix-pp200']}/provenance").json()
    assert {n["kind"] for n in graph["nodes"]} == {"dataset", "sha256", "checkpoint",
                                                  "benchmark_result"}


def test_results_derived_through_the_checkpoint_are_linked(client: TestClient,
                                                           portal: Portal) -> None:
    results = client.get(f"/api/v1/datasets/{portal.ids['sphenix-pp200']}/results").json()
    assert [(r["name"], r["value"]) for r in results] == [("tracking-ari", 0.9123)]
    assert client.get(f"/api/v1/datasets/{portal.ids['aleph-z']}/results").json() == []
    page = client.get(f"/results/{portal.result_id}")
    assert page.status_code == 200
    assert "0.9123" in page.text


def test_file_list_has_sha256_and_adler32_of_the_bytes(client: TestClient,
                                                       portal: Portal) -> None:
    dataset_id = portal.ids["aleph-z"]
    files = client.get(f"/api/v1/datasets/{dataset_id}/files").json()
    assert files["total"] == 3
    assert files["next"] is None
    html = client.get(f"/datasets/{dataset_id}").text
    for entry in files["items"]:
        data = (portal.dirs["aleph-z"] / entry["path"]).read_bytes()
        assert entry["adler32"] == f"{zlib.adler32(data):08x}"
        assert entry["sha256"] in html
        assert entry["adler32"] in html
        assert f'href="/files/{entry["id"]}"' in html
    page = client.get(f"/api/v1/datasets/{dataset_id}/files", params={"limit": 2}).json()
    assert len(page["items"]) == 2
    assert "offset=2" in page["next"]


def test_sample_events_are_the_stored_hits(client: TestClient, portal: Portal) -> None:
    events = client.get(f"/api/v1/datasets/{portal.ids['aleph-z']}/events",
                        params={"n": 2}).json()
    manifest = json.loads((portal.dirs["aleph-z"] / "manifest.json").read_text())
    shard = portal.dirs["aleph-z"] / manifest["shards"][0]["path"]
    table = pq.read_table(shard, columns=["hit_x", "hit_z", "hit_subsystem", "hit_track_id"])
    assert len(events) == 2
    for i, event in enumerate(events):
        xs = table.column("hit_x")[i].as_py()
        assert len(event["x"]) == len(xs) == len(event["track"]) == len(event["subsystem"])
        assert event["x"][:5] == [round(v, 3) for v in xs[:5]]
        assert event["subsystem"] == table.column("hit_subsystem")[i].as_py()
    assert client.get(f"/api/v1/datasets/{portal.ids['aleph-z']}/events",
                      params={"n": 11}).status_code == 422


def test_missing_dataset_is_404(client: TestClient) -> None:
    assert client.get("/datasets/999").status_code == 404
    assert client.get("/api/v1/datasets/999").status_code == 404
    assert client.get("/datasets/abc").status_code == 422


def test_openapi_lists_the_api(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/search" in spec["paths"]
    assert "/files/{file_id}" in spec["paths"]
    assert "post" in spec["paths"]["/api/v1/datasets/{dataset_id}/annotations"]


def test_catalog_dataset_count(portal: Portal) -> None:
    with open_catalog(portal.url)() as session:
        assert len(session.scalars(select(Dataset)).all()) == 5


def test_locate_gives_a_reachable_replica_per_file(client: TestClient, portal: Portal) -> None:
    replicas = client.get(f"/api/v1/datasets/{portal.ids['zeus-dis']}/locate").json()
    assert len(replicas) == 3
    for replica in replicas:
        assert replica["site"] == "local"
        assert replica["url"] == (portal.dirs["zeus-dis"] / replica["path"]).resolve().as_uri()
