"""``/files/{file_id}``: shard downloads with byte ranges and checksum headers."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from npfm.catalog.models import File
from npfm.portal.app import db, state
from npfm.portal.downloads import checksum_headers, contained_path, parse_range, stream

router = APIRouter(tags=["downloads"])
FileId = Annotated[int, Path(ge=1, le=2**62, description="catalog file id")]


def _file_or_404(session: Session, file_id: int) -> File:
    file = session.get(File, file_id)
    if file is None:
        raise HTTPException(404, "file not available")
    return file


@router.head("/files/{file_id}", include_in_schema=False)
@router.get("/files/{file_id}", response_class=StreamingResponse,
            responses={206: {"description": "the requested byte range"},
                       416: {"description": "range not satisfiable"}})
def download(file_id: FileId, request: Request, session: Annotated[Session, Depends(db)],
             range_: Annotated[str | None, Header(alias="range", max_length=200)] = None,
             if_range: Annotated[str | None, Header(max_length=200)] = None,
             if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
             ) -> Response:
    """Stream a shard of a dataset; only files inside the dataset directory are served."""
    file = _file_or_404(session, file_id)
    path = contained_path(file.dataset.path, file.path)
    size = path.stat().st_size
    adler = file.adler32 or state(request).adler32.get(path)
    headers = checksum_headers(file.sha256, adler)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    etag = headers.get("ETag")
    if etag and if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    wanted = parse_range(range_, size) if if_range is None or if_range == etag else None
    start, end = wanted if wanted is not None else (0, size - 1)
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers,
                        media_type="application/octet-stream")
    body = stream(path, start, end) if size else iter(())
    return StreamingResponse(body, status_code=status, headers=headers,
                             media_type="application/octet-stream")
