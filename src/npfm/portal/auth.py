"""Bearer-token checks for the portal's write endpoints (scoped, hashed catalog tokens)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from npfm.catalog.models import ApiToken
from npfm.catalog.tokens import check_token
from npfm.events.errors import NpfmError
from npfm.portal.app import db

_bearer = HTTPBearer(auto_error=False, description="an npfm catalog API token")
#: Longest token accepted; longer Authorization values are refused before any lookup.
MAX_TOKEN = 256


def require(scope: str) -> Callable[..., ApiToken]:
    """A dependency that returns the caller's token if it is live and holds ``scope``.

    401 without a bearer token or with an unknown one; 403 for a revoked token or one
    without the scope.
    """
    def dependency(session: Annotated[Session, Depends(db)],
                   credentials: Annotated[HTTPAuthorizationCredentials | None,
                                          Depends(_bearer)]) -> ApiToken:
        challenge = {"WWW-Authenticate": f'Bearer scope="{scope}"'}
        if credentials is None or not credentials.credentials:
            raise HTTPException(401, "missing bearer token", headers=challenge)
        if len(credentials.credentials) > MAX_TOKEN:
            raise HTTPException(401, "invalid bearer token", headers=challenge)
        try:
            return check_token(session, credentials.credentials, scope)
        except NpfmError as err:
            status = 401 if err.problem in ("missing", "unknown token") else 403
            raise HTTPException(status, err.problem, headers=challenge) from None
    return dependency
