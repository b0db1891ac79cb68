"""Downloads: byte ranges, checksum headers, ETag, and path traversal attempts."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.portal.conftest import Portal

from npfm.catalog.models import Dataset, File, open_catalog
from npfm.portal.downloads import parse_range


def _first_file(client: TestClient, portal: Portal) -> tuple[int, bytes, dict]:
    entry = client.get(f"/api/v1/datasets/{portal.ids['sphenix-pp200']}/files").json()[
        "items"][0]
    return entry["id"], (portal.dirs["sphenix-pp200"] / entry["path"]).read_bytes(), entry


def test_full_download_with_checksum_headers(client: TestClient, portal: Portal) -> None:
    file_id, data, entry = _first_file(client, portal)
    response = client.get(f"/files/{file_id}")
    assert response.status_code == 200
    assert response.content == data
    sha = hashlib.sha256(data)
    assert sha.hexdigest() == entry["sha256"]
    b64 = base64.b64encode(sha.digest()).decode()
    assert response.headers["repr-digest"] == f"sha-256=:{b64}:"
    assert response.headers["digest"] == f"sha-256={b64},adler32={zlib.adler32(data):08x}"
    assert response.headers["x-checksum-adler32"] == f"{zlib.adler32(data):08x}"
    assert response.headers["etag"] == f'"{sha.hexdigest()}"'
    assert response.headers["accept-ranges"] == "bytes"
    assert int(response.headers["content-length"]) == len(data)


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", -50, None),
    ("bytes=10-10", 10, 10), ("bytes=5-999999999", 5, None)])
def test_ranges_give_206_and_the_bytes(client: TestClient, portal: Portal, header: str,
                                       first: int, last: int | None) -> None:
    file_id, data, _ = _first_file(client, portal)
    response = client.get(f"/files/{file_id}", headers={"Range": header})
    assert response.status_code == 206
    want = data[first:] if last is None else data[first:last + 1]
    assert response.content == want
    start = first % len(data)
    assert response.headers["content-range"] == (
        f"bytes {start}-{start + len(want) - 1}/{len(data)}")
    assert response.headers["repr-digest"].startswith("sha-256=:")  # of the whole file


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=20-10", "bytes=-0",
                                    "bytes=abc", "bytes=-"])
def test_bad_ranges_give_416(client: TestClient, portal: Portal, header: str) -> None:
    file_id, data, _ = _first_file(client, portal)
    response = client.get(f"/files/{file_id}", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


def test_multiple_ranges_and_stale_if_range_give_the_whole_file(client: TestClient,
                                                                portal: Portal) -> None:
    file_id, data, _ = _first_file(client, portal)
    multi = client.get(f"/files/{file_id}", headers={"Range": "bytes=0-1,5-6"})
    assert multi.status_code == 200
    assert multi.content == data
    stale = client.get(f"/files/{file_id}", headers={"Range": "bytes=0-1",
                                                     "If-Range": '"0000"'})
    assert stale.status_code == 200
    assert stale.content == data


def test_head_and_conditional_get(client: TestClient, portal: Portal) -> None:
    file_id, data, entry = _first_file(client, portal)
    head = client.head(f"/files/{file_id}")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(data)
    cached = client.get(f"/files/{file_id}", headers={"If-None-Match": f'"{entry["sha256"]}"'})
    assert cached.status_code == 304
    assert cached.content == b""


def test_parse_range_edges() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=-20", 10) == (0, 9)


@pytest.fixture
def escapes(write_portal: tuple, tmp_path: Path) -> Iterator[tuple[TestClient, list[int]]]:
    """File rows in the copied catalog that point outside their dataset directory (and a
    symlink in the dataset directory pointing out, removed afterwards)."""
    test_client, url, portal = write_portal
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    root = portal.dirs["aleph-z"]
    link = root / "shards" / "link-out.parquet"
    os.symlink(secret, link)
    outside = os.path.relpath(secret, root)
    paths = [outside, f"shards/../{outside}", str(secret), "/etc/passwd",
             "%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fetc%2fpasswd", "shards/link-out.parquet",
             "..\\..\\etc\\passwd", "shards/\x00part-00000.parquet", ".", ""]
    ids = []
    with open_catalog(url)() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.id == portal.ids["aleph-z"]))
        for path in paths:
            file = File(path=path, sha256="0" * 64, bytes=10, events=0)
            dataset.files.append(file)
            session.flush()
            ids.append(file.id)
        session.commit()
    yield test_client, ids
    link.unlink()


def test_paths_outside_the_dataset_are_never_served(escapes: tuple[TestClient, list[int]]
                                                    ) -> None:
    test_client, ids = escapes
    for file_id in ids:
        response = test_client.get(f"/files/{file_id}")
        assert response.status_code == 404, file_id
        assert b"secret" not in response.content
        assert b"root:" not in response.content


@pytest.mark.parametrize("raw", [
    "/files/..%2F..%2Fetc%2Fpasswd", "/files/%2e%2e/%2e%2e/etc/passwd",
    "/files/1/../../../etc/passwd", "/files/-1", "/files/0", "/files/1.5",
    "/files/99999999999999999999999", "/files//etc/passwd", "/static/../app.py",
    "/static/%2e%2e/app.py", "/static/..%2fapp.py"])
def test_traversal_in_the_url_is_refused(client: TestClient, raw: str) -> None:
    # Sent byte for byte (no client-side normalisation of ../ or %2e) through uvicorn's
    # parser is not needed: Starlette sees the raw path the client gives.
    response = client.get(raw)
    assert response.status_code in (404, 422), raw
    assert b"import" not in response.content
    assert b"root:" not in response.content


def test_raw_request_line_through_http(portal: Portal, live_server: str) -> None:
    host, port = live_server.removeprefix("http://").split(":")
    for raw in ("/files/../../../../etc/passwd", "/static/../../../../etc/passwd",
                "/static/..%2f..%2f..%2fetc%2fpasswd"):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", raw)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status in (400, 404, 422), raw
        assert b"root:" not in body


def test_a_malformed_catalogued_sha256_is_not_sent(write_portal: tuple) -> None:
    test_client, url, portal = write_portal
    with open_catalog(url)() as session:
        dataset = session.get(Dataset, portal.ids["zeus-dis"])
        file = File(path=dataset.files[0].path, sha256="not-a-digest\r\nX-Evil: 1",
                    bytes=1, events=0)
        dataset.files.append(file)
        session.commit()
        file_id = file.id
    response = test_client.get(f"/files/{file_id}", headers={"Range": "bytes=0-3"})
    assert response.status_code == 206
    assert response.content == b"PAR1"
    assert "etag" not in response.headers
    assert "x-evil" not in response.headers
    assert response.headers["digest"].startswith("adler32=")
