"""File downloads: containment inside the dataset directory, byte ranges, checksum headers.

A file is served only when its path, with every symlink resolved, lies inside its
dataset's resolved directory; anything else is a 404 that names no server path. Ranges
follow RFC 9110 (one ``bytes=`` range: 206 with Content-Range; unsatisfiable or malformed:
416 with ``Content-Range: bytes */SIZE``; several ranges: the whole file, 200). Checksums
go out as ``Repr-Digest: sha-256=:BASE64:`` (RFC 9530), ``Digest: sha-256=BASE64,
adler32=HEX`` (RFC 3230, as dCache and XRootD HTTP send them) and ``X-Checksum-Adler32``.
"""

from __future__ import annotations

import base64
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException

#: Bytes read per chunk when streaming or checksumming (1 MiB).
CHUNK = 1 << 20
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def contained_path(dataset_dir: str, relative: str) -> Path:
    """The real path of ``relative`` under ``dataset_dir``, or a 404 if it escapes or is absent."""
    if not relative or "\x00" in relative or Path(relative).is_absolute():
        raise HTTPException(404, "file not available")
    root = Path(dataset_dir).resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or target == root or not target.is_file():
        raise HTTPException(404, "file not available")
    return target


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of a single-range header; None serves the whole file.

    Raises a 416 HTTPException for an unsatisfiable or malformed ``bytes=`` range.
    """
    if header is None or not header.strip().lower().startswith("bytes="):
        return None
    spec = header.strip().replace(" ", "")
    if "," in spec:
        return None
    match = _RANGE.match(spec.lower())
    unsatisfiable = HTTPException(416, "range not satisfiable",
                                  headers={"Content-Range": f"bytes */{size}"})
    if match is None or match.groups() == ("", ""):
        raise unsatisfiable
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise unsatisfiable
    return start, end


def stream(path: Path, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start``..``end`` (inclusive) of ``path`` in chunks of at most 1 MiB."""
    with path.open("rb") as handle:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def adler32_file(path: Path) -> str:
    """Adler-32 of a file as 8 lowercase hex digits (the Rucio/XRootD convention)."""
    value = 1
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            value = zlib.adler32(chunk, value)
    return f"{value & 0xFFFFFFFF:08x}"


@dataclass
class Adler32Cache:
    """Adler-32 values computed from disk, keyed by (path, size, mtime in ns)."""

    values: dict[tuple[str, int, int], str]
    lock: threading.Lock

    @classmethod
    def empty(cls) -> Adler32Cache:
        return cls({}, threading.Lock())

    def get(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self.lock:
            found = self.values.get(key)
        if found is None:
            found = adler32_file(path)
            with self.lock:
                self.values[key] = found
        return found


def checksum_headers(sha256_hex: str, adler32_hex: str) -> dict[str, str]:
    """Digest, Repr-Digest, X-Checksum-Adler32 and a strong ETag from the file's checksums
    (a catalogued sha256 that is not 64 hex digits is left out, with the ETag)."""
    headers = {"Digest": f"adler32={adler32_hex}", "X-Checksum-Adler32": adler32_hex,
               "Accept-Ranges": "bytes"}
    if re.fullmatch(r"[0-9a-f]{64}", sha256_hex):
        b64 = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        headers.update({"Repr-Digest": f"sha-256=:{b64}:", "X-Checksum-Sha256": sha256_hex,
                        "Digest": f"sha-256={b64},adler32={adler32_hex}",
                        "ETag": f'"{sha256_hex}"'})
    return headers
