"""Every portal reply carries the security headers; the only inline script is hashed."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from tests.portal.conftest import Portal


def _paths(portal: Portal) -> list[str]:
    first = portal.ids["sphenix-pp200"]
    return ["/", "/?q=tracking", f"/datasets/{first}", f"/datasets/{first}/curation",
            f"/results/{portal.result_id}", "/api/v1/search", f"/api/v1/datasets/{first}",
            f"/api/v1/datasets/{first}/files", "/api/v1/openapi.json", "/static/portal.css",
            "/static/eventdisplay.js", "/files/1", "/datasets/999999", "/api/v1/nowhere",
            "/api/v1/search?limit=0", "/api/v1/docs"]


def test_every_reply_has_the_security_headers(client: TestClient, portal: Portal) -> None:
    for path in _paths(portal):
        response = client.get(path)
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "no-referrer", path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, path
        assert "'unsafe-inline'" not in policy, path
        assert "'unsafe-eval'" not in policy, path
    refused = client.post("/api/v1/replicas", content=iter([b"{}"]))
    assert refused.status_code == 411
    assert "content-security-policy" in refused.headers


@pytest.mark.parametrize("path", ["/", "/datasets/1", "/results/1"])
def test_pages_have_no_inline_script_or_style(client: TestClient, path: str) -> None:
    html = client.get(path).text
    assert client.get(path).headers["content-security-policy"].count("script-src 'self';") == 1
    for attrs in re.findall(r"<script([^>]*)>", html):
        assert "src=" in attrs or 'type="application/ld+json"' in attrs, attrs
    assert not re.search(r"\son\w+=", html)  # no inline event handlers
    assert "style=" not in html


def test_the_docs_page_allows_its_inline_script_by_hash_only(client: TestClient) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    inline = re.findall(r"<script>(.*?)</script>", response.text, flags=re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in response.headers["content-security-policy"]
