"""Content hashes of events and the deterministic splits derived from them.

An event's split depends only on its own content hash, so it never changes when the
corpus grows, and identical events (same hash) can never land in different splits.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from npfm.events.checks import flat_with_rows
from npfm.events.schema import COLUMNS, column, extensions_in

#: Columns that make up an event's content: everything measured or simulated, but not
#: its bookkeeping (run/event numbers, split, generator seed, geometry version).
CONTENT_COLUMNS = (*(c.name for c in COLUMNS if c.level != "event"), "experiment", "sqrt_s",
                   "process", "vertex_x", "vertex_y", "vertex_z")


def _per_row(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Innermost values as hashable numpy data, their row offsets, and row validity."""
    values, rows = flat_with_rows(arr)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(arr)))])
    if pa.types.is_string(values.type):
        data = np.array([b"" if s is None else hashlib.blake2b(s.encode(), digest_size=8)
                         .digest() for s in values.to_pylist()], dtype="S8")
    else:
        data = np.asarray(values.cast(pa.float64()).fill_null(np.nan), dtype=np.float64)
    return data, offsets, np.asarray(arr.is_valid())


def content_hashes(table: pa.Table) -> list[str]:
    """sha256 (hex) of each event's content columns and extension columns; a null column
    of a later schema version is left out, so an event hashes (and splits) as under
    schema 1."""
    flats = [(name, *_per_row(table.column(name).combine_chunks()))
             for name in (*CONTENT_COLUMNS, *extensions_in(table.column_names))]
    out = []
    for row in range(table.num_rows):
        digest = hashlib.sha256()
        for name, data, offsets, valid in flats:
            if not valid[row] and column(name).since > 1:
                continue
            digest.update(name.encode() + (b"\x01" if valid[row] else b"\x00"))
            chunk = data[offsets[row]:offsets[row + 1]]
            digest.update(len(chunk).to_bytes(8, "little"))
            digest.update(chunk.tobytes())
        out.append(digest.hexdigest())
    return out


def assign_splits(hashes: list[str], fractions: dict[str, float]) -> list[str]:
    """Split of each event from the first 64 bits of its hash, as a uniform number in
    [0, 1) cut at the cumulative ``fractions`` (in the order given)."""
    names = list(fractions)
    edges = np.cumsum([fractions[n] for n in names])
    u = np.array([int(h[:16], 16) for h in hashes], dtype=np.float64) / 2.0**64
    return [names[i] for i in np.minimum(np.searchsorted(edges, u, side="right"),
                                         len(names) - 1)]
