"""Faceted, full-text and semantic search over catalog datasets.

Every user value reaches the database as a bound parameter (SQLAlchemy expressions,
never string-built SQL); LIKE wildcards in the query are escaped so ``%`` and ``_``
match themselves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, String, and_, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from npfm.catalog.models import Dataset, DatasetFacet, File
from npfm.portal.embedding import EmbeddingCache, dataset_text, shared_embedder

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


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _has_rows(name: str) -> ColumnElement[bool]:
    return exists().where(DatasetFacet.dataset_id == Dataset.id, DatasetFacet.facet == name)


def _facet_condition(name: str, value: str) -> ColumnElement[bool]:
    """Datasets with ``value`` among their facet rows, else (no rows) in the column."""
    column = FACETS[name]
    typed: Any = float(value) if name == "energy_gev" else value  # the caller checked it
    in_rows = Dataset.id.in_(select(DatasetFacet.dataset_id).where(
        DatasetFacet.facet == name, DatasetFacet.value == _facet_value(name, typed)))
    return or_(in_rows, and_(~_has_rows(name), column == typed))


def _conditions(query: Query, skip: str | None = None) -> list[ColumnElement[bool]]:
    conds = [_facet_condition(k, v) for k, v in query.filters.items() if k != skip]
    if query.mode == "text" and query.text.strip():
        for word in query.text.split()[:8]:
            pattern = _like(word)
            conds.append(or_(Dataset.title.ilike(pattern, escape="\\"),
                             Dataset.description.ilike(pattern, escape="\\"),
                             Dataset.name.ilike(pattern, escape="\\"),
                             cast(Dataset.keywords, String).ilike(pattern, escape="\\")))
    return conds


def _restriction(session: Session, query: Query, skip: str | None) -> Any:
    """Matching dataset ids (a list, or a subquery when there are very many), or None
    when nothing is filtered."""
    conds = _conditions(query, skip=skip)
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
    return f"{float(value):g}" if name == "energy_gev" else str(value)


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


def search(session: Session, query: Query, cache: EmbeddingCache | None = None) -> Results:
    """Run ``query``: text mode filters by every word; semantic mode ranks by cosine."""
    conds = _conditions(query)
    if query.mode == "semantic" and query.text.strip():
        return _semantic(session, query, conds, cache or EmbeddingCache())
    total = session.scalar(select(func.count(Dataset.id)).where(*conds)) or 0
    page = list(session.scalars(select(Dataset).where(*conds).order_by(Dataset.id)
                                .limit(query.limit).offset(query.offset)))
    files = _file_counts(session, [d.id for d in page])
    return Results([summary(d, files.get(d.id, 0)) for d in page], total)


def embedding_texts(session: Session, conds: list[ColumnElement[bool]] | None = None
                    ) -> dict[int, str]:
    """Dataset id -> the text embedded for it, for datasets matching ``conds``."""
    return {d.id: dataset_text({k: getattr(d, k) for k in SUMMARY_FIELDS})
            for d in session.scalars(select(Dataset).where(*(conds or [])))}


def _semantic(session: Session, query: Query, conds: list[ColumnElement[bool]],
              cache: EmbeddingCache) -> Results:
    embedder = shared_embedder()
    ids, matrix = cache.matrix(embedding_texts(session, conds), embedder)
    if not ids:
        return Results([], 0)
    scores = matrix @ embedder.encode([query.text])[0]
    order = np.argsort(-scores, kind="stable")[query.offset:query.offset + query.limit]
    chosen = [ids[i] for i in order]
    by_id = {d.id: d for d in session.scalars(select(Dataset).where(Dataset.id.in_(chosen)))}
    files = _file_counts(session, chosen)
    items = []
    for i in order:
        item = summary(by_id[ids[i]], files.get(ids[i], 0))
        item["score"] = round(float(scores[i]), 4)
        items.append(item)
    return Results(items, len(ids))
