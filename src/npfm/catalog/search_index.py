"""Full-text and semantic search index of the catalog's datasets, kept current on write.

Text is cut into lowercase ASCII words, English stop words dropped and each word reduced
by the Snowball English stemmer (``tracking``, ``tracks`` -> ``track``) here in Python.
SQLite indexes those terms in an FTS5 table (``dataset_fts``), PostgreSQL in GIN-indexed
``tsvector`` columns of the ``simple`` configuration (no second stemming), so both
engines match a query with exactly the same datasets. Each dataset has a ``head`` (name,
title, keywords, experiment) and a ``body`` (everything searchable: description,
facets, subsystems, physics process, and the tasks and metrics of its results); a query
matches datasets whose body holds every term, ranked head-all, head-any, then the rest.

The same rows hold the all-MiniLM-L6-v2 embedding of the dataset's text, computed once
when the text changes, so semantic search reads vectors instead of running the model.
Rows are refreshed after every flush that adds or changes a dataset, a result or a
provenance edge (``watch``), and filled for older catalogs when they are opened; every
flush that changes anything also advances ``catalog_state.generation``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import (
    Engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from npfm.catalog.embedding import dataset_text, shared_embedder
from npfm.catalog.models import (
    BenchmarkResult,
    CatalogState,
    Checkpoint,
    Dataset,
    DatasetSearch,
    ProvenanceEdge,
)
from npfm.catalog.results import derived_results

#: Most terms of a query that are used (the rest are ignored).
MAX_TERMS = 8
#: Snowball's English stop-word list (snowballstem.org/algorithms/english/stop.txt),
#: the list PostgreSQL's ``english`` configuration uses too.
STOPWORDS = frozenset((
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
    "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself",
    "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
    "who", "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be",
    "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "would",
    "should", "could", "ought", "a", "an", "the", "and", "but", "if", "or", "because", "as",
    "until", "while", "of", "at", "by", "for", "with", "about", "against", "between", "into",
    "through", "during", "before", "after", "above", "below", "to", "from", "up", "down",
    "in", "out", "on", "off", "over", "under", "again", "further", "then", "once", "here",
    "there", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more",
    "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so", "than",
    "too", "very"))
_WORD = re.compile(r"[a-z0-9]+")


_STEM_LOCK = threading.Lock()  # a Snowball stemmer object keeps state while it works


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def terms(value: str) -> list[str]:
    """Index terms of ``value``: ASCII-folded lowercase words, no stop words, stemmed."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    return [_stem(w) for w in _WORD.findall(folded) if w not in STOPWORDS and len(w) <= 64]


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """The stem of one word (remembered: words recur across texts and queries)."""
    with _STEM_LOCK:
        return str(_stemmer().stemWord(word))


def query_terms(value: str) -> list[str]:
    """The distinct terms of a query, at most ``MAX_TERMS``."""
    return list(dict.fromkeys(terms(value)))[:MAX_TERMS]


def _texts(session: Session, dataset: Dataset) -> tuple[str, str]:
    """(head, body) words of a dataset, before stemming."""
    content = (dataset.record or {}).get("content", {})
    head = [dataset.name, dataset.title, dataset.experiment or "",
            *map(str, dataset.keywords or [])]
    body = [*head, dataset.description, dataset.facility or "",
            dataset.collision_system or "", dataset.detector or "", dataset.data_level or "",
            *(f.value for f in dataset.facets),
            *(str(v) for v in content.get("search_terms", []))]
    for result in derived_results(session, dataset):
        body += [result.name, result.task, result.metric]
    return " ".join(head), " ".join(body)


def _embedding_text(dataset: Dataset) -> str:
    return dataset_text({k: getattr(dataset, k) for k in (
        "title", "description", "keywords", "facility", "experiment", "collision_system",
        "detector", "data_level", "energy_gev")})


def refresh(session: Session, dataset_ids: set[int]) -> None:
    """Rewrite the index rows of ``dataset_ids`` (embedding only where the text changed)."""
    if not dataset_ids:
        return
    with session.no_autoflush:
        datasets = list(session.scalars(select(Dataset).where(Dataset.id.in_(dataset_ids))))
        old = dict(session.execute(select(DatasetSearch.dataset_id, DatasetSearch.text_sha256)
                                   .where(DatasetSearch.dataset_id.in_(dataset_ids))).tuples().all())
        rows: list[dict[str, Any]] = []
        for dataset in datasets:
            head, body = _texts(session, dataset)
            embed = _embedding_text(dataset)
            rows.append({"dataset_id": dataset.id, "head": " ".join(terms(head)),
                         "body": " ".join(terms(body)), "embed": embed,
                         "text_sha256": hashlib.sha256(embed.encode()).hexdigest()})
    stale = [r for r in rows if old.get(r["dataset_id"]) != r["text_sha256"]]
    if stale:
        vectors = shared_embedder().encode([r["embed"] for r in stale])
        for row, vector in zip(stale, vectors, strict=True):
            row["embedding"] = vector.astype(np.float32).tobytes()
    kept = dict(session.execute(select(DatasetSearch.dataset_id, DatasetSearch.embedding)
                                .where(DatasetSearch.dataset_id.in_(dataset_ids))).tuples().all())
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        row.setdefault("embedding", kept.get(row["dataset_id"]))
        row["updated"] = now
        del row["embed"]
    ids = [r["dataset_id"] for r in rows]
    session.execute(delete(DatasetSearch).where(DatasetSearch.dataset_id.in_(ids)))
    if rows:
        session.execute(insert(DatasetSearch), rows)
    if session.get_bind().dialect.name == "sqlite":
        for row in rows:
            session.execute(text("DELETE FROM dataset_fts WHERE rowid = :i"),
                            {"i": row["dataset_id"]})
        session.execute(text("INSERT INTO dataset_fts (rowid, head, body) "
                             "VALUES (:dataset_id, :head, :body)"),
                        [{k: r[k] for k in ("dataset_id", "head", "body")} for r in rows])


def _touched(session: Session) -> set[int]:
    """Datasets whose index rows a flush made stale."""
    changed = list(session.new) + list(session.dirty) + list(session.deleted)
    ids = {obj.id for obj in changed if isinstance(obj, Dataset) and obj not in session.deleted}
    if any(isinstance(o, BenchmarkResult | ProvenanceEdge | Checkpoint) for o in changed):
        linked = select(ProvenanceEdge.target_id).where(ProvenanceEdge.target_kind == "dataset")
        ids |= set(session.scalars(select(Dataset.id).where(
            Dataset.manifest_sha256.in_(linked))))
        ids |= {i for i in session.scalars(select(BenchmarkResult.dataset_id)) if i}
    return ids


def _after_flush(session: Session, _context: Any) -> None:
    refresh(session, _touched(session))
    if session.new or session.dirty or session.deleted:
        session.execute(update(CatalogState).where(CatalogState.id == 1)
                        .values(generation=CatalogState.generation + 1))


def generation(bind: Session | Engine) -> int:
    """The catalog's change counter (grows with every flush that changes it); read on a
    pooled driver connection, without a session, when given the engine."""
    if isinstance(bind, Session):
        return int(bind.scalar(select(CatalogState.generation)
                               .where(CatalogState.id == 1)) or 0)
    rows = _fetch(bind, "SELECT generation FROM catalog_state WHERE id = 1", {})
    return int(rows[0][0] or 0) if rows else 0


def _fetch(engine: Engine, sql: str, params: dict[str, str]) -> list[Any]:
    """The rows of one read statement in the driver's own parameter style, in a fresh
    transaction of a pooled connection (rolled back first: no older snapshot is read)."""
    connection = engine.raw_connection()
    try:
        connection.rollback()
        cursor = connection.cursor()
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        connection.close()


def watch(sessions: sessionmaker[Session]) -> None:
    """Refresh the index after every flush of sessions made by ``sessions``."""
    if not event.contains(sessions, "after_flush", _after_flush):
        event.listen(sessions, "after_flush", _after_flush)


def fill_missing(engine: Engine) -> None:
    """Index every dataset that has no index row yet (catalogs made before the index)."""
    with Session(engine) as session:
        missing = set(session.scalars(select(Dataset.id).where(
            Dataset.id.not_in(select(DatasetSearch.dataset_id)))))
        if missing:
            refresh(session, missing)
            session.commit()


_MATCH = {  # in each driver's parameter style: sqlite3 named, psycopg pyformat
    "sqlite": "SELECT group_concat(rowid) FROM dataset_fts WHERE dataset_fts MATCH :body",
    "postgresql": "SELECT string_agg(dataset_id::text, ',') FROM dataset_search "
                  "WHERE body_tsv @@ to_tsquery('simple', %(body)s)"}


def matches(session: Session, words: list[str]) -> np.ndarray:
    """Ids of the datasets whose body holds every term of ``words``: one statement in the
    driver's own SQL on the session's connection (the terms are a bound parameter), the
    ids returned as one string."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        body = " & ".join(words)
    else:
        body = "body : (" + " AND ".join(f'"{w}"' for w in words) + ")"
    joined = session.connection().exec_driver_sql(_MATCH[dialect], {"body": body}).scalar()
    return np.fromstring(joined or "", dtype=np.int64, sep=",")


def head_terms(session: Session) -> list[tuple[int, list[str]]]:
    """(dataset id, terms of its head) of every indexed dataset, as its index row holds
    them: the words that ``head`` (FTS5 column, tsvector) matches."""
    rows = session.execute(select(DatasetSearch.dataset_id, DatasetSearch.head))
    return [(int(i), head.split()) for i, head in rows]


def vectors(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """(dataset ids, unit embeddings (N, 384)) of every indexed dataset, by id."""
    rows = session.execute(select(DatasetSearch.dataset_id, DatasetSearch.embedding)
                           .where(DatasetSearch.embedding.is_not(None))
                           .order_by(DatasetSearch.dataset_id)).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    matrix = (np.stack([np.frombuffer(r[1] or b"", dtype=np.float32) for r in rows]) if rows
              else np.zeros((0, 384), np.float32))
    return ids, matrix
