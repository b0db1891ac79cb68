"""Faceted, full-text and semantic search over catalog datasets.

Full text matches stemmed terms in the engine's index (``npfm.catalog.search_index``:
FTS5 on SQLite, tsvector on PostgreSQL); semantic search ranks the precomputed dataset
embeddings of that index by cosine similarity. Every user value reaches the database as a
bound parameter (SQLAlchemy expressions, never string-built SQL).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select
from sqlalchemy.orm import Session

from npfm.catalog import search_index
from npfm.catalog.embedding import shared_embedder
from npfm.catalog.facets import normalise, spellings
from npfm.catalog.models import Dataset, DatasetFacet, File

#: Facet name -> column; the order is the order of the facet panels.
FACETS: dict[str, Any] = {
    "facility": Dataset.facility,
    "experiment": Dataset.experiment,
    "collision_system": Dataset.collision_system,
    "energy_gev": Dataset.energy_gev,
    "detector": Dataset.detector,
    "data_level": Dataset.data_level,
    "license": Dataset.license,
}
#: Columns of a dataset summary (search results, API listings).
SUMMARY_FIELDS = ("id", "name", "title", "description", "events", "hits", "license",
                  "facility", "experiment", "collision_system", "energy_gev", "detector",
                  "data_level", "keywords", "source", "created")


#: Above this many matching datasets, facet counts filter by a subquery, not an id list.
ID_LIST_MAX = 5000


@dataclass
class Query:
    """A search: free text, mode (``text`` or ``semantic``), facet filters, one page."""

    text: str = ""
    mode: str = "text"
    filters: dict[str, str] = field(default_factory=dict)
    limit: int = 20
    offset: int = 0


def _has_rows(name: str) -> ColumnElement[bool]:
    return exists().where(DatasetFacet.dataset_id == Dataset.id, DatasetFacet.facet == name)


def _facet_condition(name: str, value: str) -> ColumnElement[bool]:
    """Datasets with ``value`` among their facet rows, else (no rows) in the column."""
    column = FACETS[name]
    typed: Any = float(value) if name == "energy_gev" else value  # the caller checked it
    in_rows = Dataset.id.in_(select(DatasetFacet.dataset_id).where(
        DatasetFacet.facet == name, DatasetFacet.value == _facet_value(name, typed)))
    in_column = (column == typed if name == "energy_gev"
                 else column.in_(spellings(name, value)) if name == "license"
                 else func.lower(column) == value.lower())
    return or_(in_rows, and_(~_has_rows(name), in_column))


def _text_search(query: Query) -> bool:
    return query.mode == "text" and bool(query.text.strip())


def _conditions(session: Session, query: Query,
                skip: str | None = None) -> list[ColumnElement[bool]]:
    conds = [_facet_condition(k, v) for k, v in query.filters.items() if k != skip]
    if _text_search(query):
        words = search_index.query_terms(query.text)
        conds.append(Dataset.id.in_(search_index.matches(session, words)) if words
                     else false())
    return conds


def _restriction(session: Session, query: Query, skip: str | None) -> Any:
    """Matching dataset ids (a list, or a subquery when there are very many), or None
    when nothing is filtered."""
    conds = _conditions(session, query, skip=skip)
    if not conds:
        return None
    matching = select(Dataset.id).where(*conds)
    ids = list(session.scalars(matching.limit(ID_LIST_MAX + 1)))
    return ids if len(ids) <= ID_LIST_MAX else matching


def facet_counts(session: Session, query: Query) -> dict[str, list[tuple[str, int]]]:
    """Per facet, (value, datasets) under every other active filter, most frequent first.

    Values come from a dataset's facet rows (several for a mixed corpus), else from its
    single-valued column. Facets without an active filter share one grouped query.
    """
    groups: dict[str | None, list[str]] = {None: [f for f in FACETS if f not in query.filters]}
    groups.update({f: [f] for f in FACETS if f in query.filters})
    counts: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    for skip, names in groups.items():
        if not names:
            continue
        restrict = _restriction(session, query, skip)
        rows = (select(DatasetFacet.facet, DatasetFacet.value,
                       func.count(DatasetFacet.dataset_id.distinct()))
                .where(DatasetFacet.facet.in_(names))
                .group_by(DatasetFacet.facet, DatasetFacet.value))
        present = (select(func.count(DatasetFacet.facet.distinct()))
                   .where(DatasetFacet.dataset_id == Dataset.id, DatasetFacet.facet.in_(names))
                   .scalar_subquery())
        lacking_rows = select(Dataset).where(present < len(names))
        if restrict is not None:
            rows = rows.where(DatasetFacet.dataset_id.in_(restrict))
            lacking_rows = lacking_rows.where(Dataset.id.in_(restrict))
        for facet, value, n in session.execute(rows):
            counts[facet][str(value)] += n
        _count_columns(session, list(session.scalars(lacking_rows)), names, counts)
    return {name: sorted(((v, n) for v, n in c.items() if v), key=lambda c: (-c[1], c[0]))
            for name, c in counts.items()}


def _count_columns(session: Session, datasets: list[Dataset], names: list[str],
                   counts: dict[str, Counter[str]]) -> None:
    """Count the column value of each facet for which a dataset has no facet rows."""
    if not datasets:
        return
    have = set(session.execute(select(DatasetFacet.dataset_id, DatasetFacet.facet).where(
        DatasetFacet.dataset_id.in_([d.id for d in datasets]),
        DatasetFacet.facet.in_(names))).tuples())
    for dataset in datasets:
        for name in names:
            value = getattr(dataset, name)
            if (dataset.id, name) not in have and value not in (None, ""):
                counts[name][_facet_value(name, value)] += 1


def _facet_value(name: str, value: Any) -> str:
    return f"{float(value):g}" if name == "energy_gev" else normalise(name, str(value))


def summary(dataset: Dataset, files: int = 0) -> dict[str, Any]:
    """A dataset as a plain dict of its summary fields plus its number of files."""
    out = {key: getattr(dataset, key) for key in SUMMARY_FIELDS}
    out["files"] = files
    return out


def _file_counts(session: Session, ids: list[int]) -> dict[int, int]:
    """Files per dataset (answered from the index on ``file.dataset_id``)."""
    rows = session.execute(select(File.dataset_id, func.count())
                           .where(File.dataset_id.in_(ids)).group_by(File.dataset_id)).all()
    return {i: int(n) for i, n in rows}


@dataclass
class Results:
    """One page of matches: summaries (with ``score`` in semantic mode) and the total."""

    items: list[dict[str, Any]]
    total: int


def search(session: Session, query: Query, index: VectorIndex | None = None) -> Results:
    """Run ``query``: text mode matches every term, head matches first; semantic mode
    ranks by cosine similarity."""
    conds = _conditions(session, query)
    if query.mode == "semantic" and query.text.strip():
        return _semantic(session, query, conds, index or VectorIndex())
    order: list[Any] = [Dataset.id]
    if _text_search(query):
        words = search_index.query_terms(query.text)
        order.insert(0, case(
            (Dataset.id.in_(search_index.matches(session, words, "head")), 0),
            (Dataset.id.in_(search_index.matches(session, words, "head", every=False)), 1),
            else_=2))
    total = session.scalar(select(func.count(Dataset.id)).where(*conds)) or 0
    page = list(session.scalars(select(Dataset).where(*conds).order_by(*order)
                                .limit(query.limit).offset(query.offset)))
    files = _file_counts(session, [d.id for d in page])
    return Results([summary(d, files.get(d.id, 0)) for d in page], total)


@dataclass
class VectorIndex:
    """The index's dataset embeddings in memory, reloaded when any index row changes."""

    stamp: tuple[int, str] = (-1, "")
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 384), np.float32))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self, session: Session) -> tuple[np.ndarray, np.ndarray]:
        """(dataset ids, unit vectors), read again only if the index changed."""
        stamp = search_index.index_stamp(session)
        with self.lock:
            if stamp != self.stamp:
                self.ids, self.matrix = search_index.vectors(session)
                self.stamp = stamp
            return self.ids, self.matrix


@lru_cache(maxsize=4096)
def query_vector(text: str) -> np.ndarray:
    """The unit embedding of a query text (repeated queries are not encoded again)."""
    vector: np.ndarray = shared_embedder().encode([text])[0]
    vector.setflags(write=False)
    return vector


def _semantic(session: Session, query: Query, conds: list[ColumnElement[bool]],
              index: VectorIndex) -> Results:
    ids, matrix = index.current(session)
    if conds:
        keep = np.isin(ids, list(session.scalars(select(Dataset.id).where(*conds))))
        ids, matrix = ids[keep], matrix[keep]
    if not len(ids):
        return Results([], 0)
    scores = matrix @ query_vector(" ".join(query.text.split()))
    order = np.argsort(-scores, kind="stable")[query.offset:query.offset + query.limit]
    chosen = [int(ids[i]) for i in order]
    by_id = {d.id: d for d in session.scalars(select(Dataset).where(Dataset.id.in_(chosen)))}
    files = _file_counts(session, chosen)
    items = []
    for i, dataset_id in zip(order, chosen, strict=True):
        item = summary(by_id[dataset_id], files.get(dataset_id, 0))
        item["score"] = round(float(scores[i]), 4)
        items.append(item)
    return Results(items, len(ids))
