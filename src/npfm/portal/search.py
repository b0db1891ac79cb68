"""Faceted, full-text and semantic search over catalog datasets.

Full text matches stemmed terms in the engine's index (``npfm.catalog.search_index``:
FTS5 on SQLite, tsvector on PostgreSQL) in one statement; the in-memory ``FacetIndex`` of
the catalog generation ranks the matches by their head terms (every term, any term, the
rest) and answers facet filters, facet counts, the page and its summaries. Semantic search ranks
the precomputed dataset embeddings of the index by cosine similarity. Every user value
reaches the database as a bound parameter.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from npfm.catalog import search_index
from npfm.catalog.embedding import shared_embedder
from npfm.catalog.models import Dataset
from npfm.portal.facet_index import FACETS, SUMMARY_FIELDS, FacetIndex

__all__ = ["FACETS", "SUMMARY_FIELDS", "Query", "Results", "VectorIndex", "search",
           "summary"]


@dataclass
class Query:
    """A search: free text, mode (``text`` or ``semantic``), facet filters, one page."""

    text: str = ""
    mode: str = "text"
    filters: dict[str, str] = field(default_factory=dict)
    limit: int = 20
    offset: int = 0


@dataclass
class Results:
    """One page of matches: summaries (with ``score`` in semantic mode), the total, and
    per facet the (value, datasets) counts under every other active filter."""

    items: list[dict[str, Any]]
    total: int
    facets: dict[str, list[tuple[str, int]]]


def summary(dataset: Dataset, files: int = 0) -> dict[str, Any]:
    """A dataset as a plain dict of its summary fields plus its number of files."""
    out = {key: getattr(dataset, key) for key in SUMMARY_FIELDS}
    out["files"] = files
    return out


def _text_ranks(session: Session, index: FacetIndex, text: str) -> np.ndarray:
    """Per dataset 0 (head holds every term), 1 (any term), 2 (body only), 3 (no match)."""
    ranks = np.full(len(index), 3, dtype=np.int8)
    words = search_index.query_terms(text)
    if words:
        positions, found = index.positions_of(search_index.matches(session, words))
        body = np.zeros(len(index), dtype=bool)
        body[positions[found]] = True
        ranks[body] = 2
        ranks[body & index.in_heads(words, every=False)] = 1
        ranks[body & index.in_heads(words, every=True)] = 0
    return ranks


def search(session: Session, query: Query, index: FacetIndex,
           vectors: VectorIndex | None = None) -> Results:
    """Run ``query``: text mode matches every term, head matches first, then by id;
    semantic mode ranks by cosine similarity; no text lists by id."""
    semantic = query.mode == "semantic" and bool(query.text.strip())
    masks = {name: index.matching(name, value) for name, value in query.filters.items()}
    if query.mode == "text" and query.text.strip():
        ranks = _text_ranks(session, index, query.text)
        masks[""] = ranks < 3
    everything = np.ones(len(index), dtype=bool)
    passing = np.logical_and.reduce([everything, *masks.values()])
    facets = index.counts(passing, {
        name: np.logical_and.reduce([everything, *(m for k, m in masks.items() if k != name)])
        for name in query.filters})
    if semantic:
        return _semantic(session, query, index, passing, vectors or VectorIndex(), facets)
    chosen = np.flatnonzero(passing)
    if "" in masks:
        chosen = chosen[np.argsort(ranks[chosen], kind="stable")]
    page = chosen[query.offset:query.offset + query.limit]
    return Results([dict(index.summaries[p]) for p in page], len(chosen), facets)


@dataclass
class VectorIndex:
    """The index's dataset embeddings in memory, reloaded when the catalog changes."""

    stamp: int = -1
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 384), np.float32))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self, session: Session) -> tuple[np.ndarray, np.ndarray]:
        """(dataset ids, unit vectors), read again only if the index changed."""
        stamp = search_index.generation(session.get_bind().engine)
        with self.lock:
            if stamp != self.stamp:
                self.ids, self.matrix = search_index.vectors(session)
                self.stamp = stamp
            return self.ids, self.matrix


@lru_cache(maxsize=4096)
def query_vector(text: str) -> np.ndarray:
    """The unit embedding of a query text, on one thread (10x less CPU than two on a busy
    2-core machine: no spinning threads); repeated queries are not encoded again."""
    vector: np.ndarray = shared_embedder().encode([text], threads=1)[0]
    vector.setflags(write=False)
    return vector


def _semantic(session: Session, query: Query, index: FacetIndex, passing: np.ndarray,
              vectors: VectorIndex, facets: dict[str, list[tuple[str, int]]]) -> Results:
    ids, matrix = vectors.current(session)
    positions, found = index.positions_of(ids)
    keep = found & passing[positions]
    positions = positions[keep]
    if not len(positions):
        return Results([], 0, facets)
    # The kept rows only, as before: BLAS may round the last rows of a matrix otherwise.
    vector = query_vector(" ".join(query.text.split()))
    scores = (matrix if keep.all() else matrix[keep]) @ vector
    order = np.argsort(-scores, kind="stable")[query.offset:query.offset + query.limit]
    items = []
    for i in order:
        item = dict(index.summaries[positions[i]])
        item["score"] = round(float(scores[i]), 4)
        items.append(item)
    return Results(items, len(positions), facets)
