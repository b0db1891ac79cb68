"""Scoped API tokens for catalog writes: only a token's sha256 is stored.

A secret is 32 random bytes (``secrets.token_urlsafe``), prefixed ``npfm_`` so that it is
recognisable in logs and secret scanners; it is shown once by ``create_token``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.inputs import TokenInput, parse
from npfm.catalog.models import ApiToken
from npfm.events.errors import NpfmError

PREFIX = "npfm_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: list[str] | tuple[str, ...]) -> str:
    """Store a new token's sha256 with ``scopes`` and return the secret (shown only once)."""
    spec = parse(TokenInput, "token", name=name, scopes=tuple(scopes))
    if session.scalar(select(ApiToken).where(ApiToken.name == spec.name)) is not None:
        raise NpfmError(f"token {spec.name}", "a token of that name exists",
                        "choose another name, or revoke the old token")
    secret = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=spec.name, token_sha256=_digest(secret),
                         scopes=sorted(set(spec.scopes))))
    session.commit()
    return secret


def check_token(session: Session, secret: str, scope: str) -> ApiToken:
    """The live token whose secret is ``secret`` and which holds ``scope`` (or ``admin``).

    Raises NpfmError for a missing, unknown, revoked or under-scoped token. The lookup is
    by sha256 (an index hit reveals nothing about the secret) and the digests are compared
    again in constant time.
    """
    if not secret:
        raise NpfmError("API token", "missing", "send 'Authorization: Bearer <token>'")
    digest = _digest(secret)
    token = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest))
    if token is None or not hmac.compare_digest(token.token_sha256, digest):
        raise NpfmError("API token", "unknown token", "create one with npfm catalog token "
                        "create")
    if token.revoked:
        raise NpfmError(f"API token {token.name}", "revoked", "create a new token")
    if scope not in token.scopes and "admin" not in token.scopes:
        raise NpfmError(f"API token {token.name}", f"lacks scope {scope!r} (has "
                        f"{', '.join(token.scopes)})", f"use a token with scope {scope}")
    return token


def revoke_token(session: Session, name: str) -> None:
    """Mark the token ``name`` revoked."""
    token = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise NpfmError(f"token {name}", "no such token", "see the token names in the catalog")
    token.revoked = True
    session.commit()
