"""Response hardening of every portal reply: security headers, body limits, short errors.

``Guard`` is a plain ASGI middleware (no per-request task or body copy): it refuses a
write without a ``Content-Length`` (411) or over ``MAX_BODY`` (413) and adds
Content-Security-Policy, X-Content-Type-Options, X-Frame-Options and Referrer-Policy to
every response. Pages run scripts from ``/static`` only; the one inline script (the
API docs page) is allowed by its sha256 hash alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Largest request body accepted, bytes (writes are small JSON documents).
MAX_BODY = 64 * 1024
#: Most characters of a user's input echoed back in an error.
MAX_ECHO = 200
#: Policy of the portal's own pages: same-origin scripts, styles, images and fetches.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
#: Where the interactive API docs (Swagger UI) load their script and styles from.
DOCS_CDN = "https://cdn.jsdelivr.net"
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"no-referrer")]


def script_hashes(html: str) -> list[str]:
    """CSP source expressions (``'sha256-…'``) of the inline scripts of ``html``."""
    bodies = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'"
            for b in bodies]


def docs_policy(html: str) -> str:
    """The policy of the API docs page: its inline script by hash, Swagger UI's CDN."""
    return (f"default-src 'self'; script-src 'self' {DOCS_CDN} {' '.join(script_hashes(html))}; "
            f"style-src 'self' {DOCS_CDN}; img-src 'self' data: https:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class Guard:
    """ASGI middleware: body-size limits and security headers (``policies``: path -> CSP
    for the few pages that need another policy than ``CSP``)."""

    def __init__(self, app: ASGIApp, policies: dict[str, str]) -> None:
        self.app = app
        self.policies = {path: policy.encode() for path, policy in policies.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"content-security-policy", self.policies.get(scope["path"], CSP.encode())),
                 *HEADERS]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        refusal = _body_refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _body_refusal(scope: Scope) -> JSONResponse | None:
    length = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-length"),
                  None)
    if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
        return JSONResponse({"detail": "send the body with a Content-Length"}, 411)
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, 413)
    return None


def short(value: Any, limit: int = MAX_ECHO) -> str:
    """``value`` as text of at most ``limit`` characters (plus a note of its length)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 with each error's location, message and a capped echo of the input; non-finite
    numbers are shown as text, so the reply is always valid JSON."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": [p if isinstance(p, int) else short(p, 64) for p in e.get("loc", ())],
               "msg": short(e.get("msg", "")), "type": str(e.get("type", "")),
               "input": short(e.get("input"))} for e in exc.errors()[:20]]
    return JSONResponse({"detail": detail}, 422)
