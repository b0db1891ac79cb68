"""The search as it was before the in-memory facet index (SQLAlchemy ORM, one query per
facet group): the reference the faster search must agree with."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from npfm.catalog import search_index
from npfm.catalog.facets import normalise, spellings
from npfm.catalog.models import Dataset, DatasetFacet, DatasetSearch, File
from npfm.portal.search import FACETS, Query, Results, VectorIndex, query_vector, summary

COLUMNS = {name: getattr(Dataset, name) for name in FACETS}
#: Above this many matching datasets, facet counts filter by a subquery, not an id list.
ID_LIST_MAX = 5000


def matches(session: Session, words: list[str], field: str = "body",
            every: bool = True) -> Any:
    """Ids of datasets whose ``field`` holds every term of ``words`` (or any of them)."""
    if session.get_bind().dialect.name == "postgresql":
        joined = (" & " if every else " | ").join(words)
        query = func.to_tsquery(literal_column("'simple'"), joined)
        tsv: Any = literal_column(f"dataset_search.{field}_tsv")
        return select(DatasetSearch.dataset_id).where(tsv.op("@@")(query))
    joined = (" AND " if every else " OR ").join(f'"{w}"' for w in words)
    return (select(literal_column("rowid")).select_from(text("dataset_fts"))
            .where(text(f"dataset_fts MATCH :fts_{field}_{int(every)}")
                   .bindparams(**{f"fts_{field}_{int(every)}": f"{field} : ({joined})"})))


def _facet_value(name: str, value: Any) -> str:
    return f"{float(value):g}" if name == "energy_gev" else normalise(name, str(value))


def _has_rows(name: str) -> ColumnElement[bool]:
    return exists().where(DatasetFacet.dataset_id == Dataset.id, DatasetFacet.facet == name)


def _facet_condition(name: str, value: str) -> ColumnElement[bool]:
    column = COLUMNS[name]
    typed: Any = float(value) if name == "energy_gev" else value
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
        conds.append(Dataset.id.in_(matches(session, words)) if words else false())
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
    groups: dict[str | None, list[str]] = {
        None: [f for f in FACETS if f not in query.filters]}
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


def _file_counts(session: Session, ids: list[int]) -> dict[int, int]:
    rows = session.execute(select(File.dataset_id, func.count())
                           .where(File.dataset_id.in_(ids)).group_by(File.dataset_id)).all()
    return {i: int(n) for i, n in rows}


def search(session: Session, query: Query) -> Results:
    """Text mode: every term, head matches first; semantic: by cosine similarity."""
    conds = _conditions(session, query)
    facets = facet_counts(session, query)
    if query.mode == "semantic" and query.text.strip():
        return _semantic(session, query, conds, facets)
    order: list[Any] = [Dataset.id]
    if _text_search(query):
        words = search_index.query_terms(query.text)
        order.insert(0, case(
            (Dataset.id.in_(matches(session, words, "head")), 0),
            (Dataset.id.in_(matches(session, words, "head", every=False)), 1),
            else_=2))
    total = session.scalar(select(func.count(Dataset.id)).where(*conds)) or 0
    page = list(session.scalars(select(Dataset).where(*conds).order_by(*order)
                                .limit(query.limit).offset(query.offset)))
    files = _file_counts(session, [d.id for d in page])
    return Results([summary(d, files.get(d.id, 0)) for d in page], total, facets)


def _semantic(session: Session, query: Query, conds: list[ColumnElement[bool]],
              facets: dict[str, list[tuple[str, int]]]) -> Results:
    ids, matrix = VectorIndex().current(session)
    if conds:
        keep = np.isin(ids, list(session.scalars(select(Dataset.id).where(*conds))))
        ids, matrix = ids[keep], matrix[keep]
    if not len(ids):
        return Results([], 0, facets)
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
    return Results(items, len(ids), facets)


TEXTS = ("", "sphenix tracking", "track", "heavy ion", "the", "!!!", "RHIC tracking", "ari",
         "e+e- annihilation", "gold collisions", "deep inelastic HERA")
FILTERS: tuple[dict[str, str], ...] = (
    {}, {"experiment": "sPHENIX"}, {"experiment": "ALEPH"}, {"facility": "RHIC"},
    {"experiment": "sPHENIX", "collision_system": "pp"}, {"energy_gev": "200"},
    {"energy_gev": "91.2"}, {"license": "CC-BY-4.0"}, {"facility": "LEP",
                                                       "data_level": "simulated"},
    {"detector": "zeus", "license": "CC-BY-4.0"}, {"experiment": "nobody"})
PAGES = ((20, 0), (2, 0), (2, 2), (1, 4), (3, 9))


def queries() -> list[Query]:
    """Text and semantic searches under facet filters, first and later pages."""
    return [Query(text, mode, filters, limit, offset) for text in TEXTS
            for mode in ("text", "semantic") for filters in FILTERS
            for limit, offset in (PAGES if filters in FILTERS[:2] else PAGES[:1])]


def use_columns(session: Session, ids: dict[str, int]) -> None:
    """Drop some facet rows so that those facets fall back to the columns, spelled as
    metadata may spell them (lowercase, licence URL without the slash)."""
    def drop(name: str, facet: str) -> Dataset:
        dataset = session.get(Dataset, ids[name])
        assert dataset is not None
        dataset.facets = [f for f in dataset.facets if f.facet != facet]
        return dataset

    drop("aleph-z", "experiment").experiment = "aleph"
    drop("zeus-dis", "license").license = "http://creativecommons.org/licenses/by/4.0"
    drop("sphenix-auau", "energy_gev")
    drop("sphenix-pp200", "collision_system").collision_system = "p-p"
    session.commit()
