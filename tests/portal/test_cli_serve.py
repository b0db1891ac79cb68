"""``npfm portal serve`` serves the catalog given by --db."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from tests.portal.conftest import Portal


@pytest.mark.slow
def test_serve_answers_on_the_given_port(portal: Portal) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "npfm", "portal", "serve", "--db",
                               portal.url, "--port", str(port), "--log-level", "warning"],
                              stdout=subprocess.PIPE, text=True)
    try:
        deadline, body = time.monotonic() + 60, None
        while body is None:
            assert server.poll() is None, "npfm portal serve exited"
            assert time.monotonic() < deadline, "no answer within 60 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/search",
                                            timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.2)
        assert body["total"] == 5
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out
