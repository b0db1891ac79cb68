"""The catalog's datasets in memory for search: summaries, facets, filter keys, head terms.

One ``FacetIndex`` is built per catalog generation (four queries: datasets, facet rows,
file counts, head terms of the search index) and answers every search of that generation
but its full-text match: a facet filter is a boolean mask over the datasets, facet counts
are ``np.bincount`` over the (dataset, value) pairs of the datasets that pass the other
filters, and the head terms rank the matches. The rules are those of the
catalog: a dataset's values of a facet are its facet rows, or its normalised column value
when it has none; a filter matches a row value, or (no rows) the column compared as the
database compares it (``lower(column)``, the energy as a float, a licence URL spelling).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from npfm.catalog import search_index
from npfm.catalog.facets import normalise, spellings
from npfm.catalog.models import Dataset, DatasetFacet, File

#: Facet names in the order of the facet panels (Dataset columns of the same names).
FACETS = ("facility", "experiment", "collision_system", "energy_gev", "detector",
          "data_level", "license")
#: Columns of a dataset summary (search results, API listings).
SUMMARY_FIELDS = ("id", "name", "title", "description", "events", "hits", "license",
                  "facility", "experiment", "collision_system", "energy_gev", "detector",
                  "data_level", "keywords", "source", "created")
_LOWERED = ("facility", "experiment", "collision_system", "detector", "data_level")


def facet_value(name: str, value: Any) -> str:
    """A facet value as counted and matched: energies as ``%g``, the rest normalised."""
    return f"{float(value):g}" if name == "energy_gev" else normalise(name, str(value))


@dataclass
class Facet:
    """One facet: the (dataset position, value number) pairs that are counted, and what a
    filter matches: row values, else the column as the database compares it."""

    values: list[str] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    rows: dict[str, list[int]] = field(default_factory=dict)
    column_keys: dict[Any, list[int]] = field(default_factory=dict)
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    numbered: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    offset: int = 0  # of its value numbers among those of all facets

    def add(self, position: int, value: str) -> None:
        number = self.numbers.setdefault(value, len(self.values))
        if number == len(self.values):
            self.values.append(value)
        self.pairs.append((position, number))

    def freeze(self) -> None:
        pairs = np.array(self.pairs, dtype=np.int64).reshape(-1, 2)
        self.positions, self.numbered = pairs[:, 0], pairs[:, 1]
        self.pairs = []


class FacetIndex:
    """Summaries and facets of every dataset of one catalog generation, by dataset id."""

    def __init__(self, session: Session) -> None:
        lowered = [func.lower(getattr(Dataset, n)) for n in _LOWERED]
        rows = session.execute(select(*(getattr(Dataset, k) for k in SUMMARY_FIELDS),
                                      *lowered).order_by(Dataset.id)).all()
        width = len(SUMMARY_FIELDS)
        self.ids = np.array([r[0] for r in rows], dtype=np.int64)
        self.summaries = [dict(zip(SUMMARY_FIELDS, r[:width], strict=True)) for r in rows]
        where = {int(i): p for p, i in enumerate(self.ids)}
        files = session.execute(select(File.dataset_id, func.count()).group_by(File.dataset_id))
        for dataset_id, n in files:
            if dataset_id in where:
                self.summaries[where[dataset_id]]["files"] = int(n)
        for item in self.summaries:
            item.setdefault("files", 0)
        self.facets = {name: Facet() for name in FACETS}
        has_rows: set[tuple[int, str]] = set()
        for dataset_id, name, value in session.execute(
                select(DatasetFacet.dataset_id, DatasetFacet.facet, DatasetFacet.value)
                .order_by(DatasetFacet.dataset_id, DatasetFacet.id)):
            if name in self.facets and dataset_id in where:
                self.facets[name].add(where[dataset_id], str(value))
                self.facets[name].rows.setdefault(str(value), []).append(where[dataset_id])
                has_rows.add((dataset_id, name))
        for position, row in enumerate(rows):
            keys = dict(zip(_LOWERED, row[width:], strict=True))
            for name, facet in self.facets.items():
                if (row[0], name) in has_rows:
                    continue
                value = self.summaries[position][name]
                if value is not None and value != "":
                    facet.add(position, facet_value(name, value))
                key = keys.get(name, value)
                if key is not None:
                    facet.column_keys.setdefault(key, []).append(position)
        postings: dict[str, list[int]] = {}
        for dataset_id, words in search_index.head_terms(session):
            for word in set(words) if dataset_id in where else ():
                postings.setdefault(word, []).append(where[dataset_id])
        self.heads = {word: np.array(p, dtype=np.int64) for word, p in postings.items()}
        self.values: list[tuple[str, str]] = []  # (facet, value) of all facets
        for name, facet in self.facets.items():
            facet.freeze()
            facet.offset = len(self.values)
            self.values += [(name, value) for value in facet.values]
        self.positions = np.concatenate([f.positions for f in self.facets.values()])
        self.numbered = np.concatenate([f.numbered + f.offset for f in self.facets.values()])

    def __len__(self) -> int:
        return len(self.ids)

    def matching(self, name: str, value: str) -> np.ndarray:
        """Datasets that pass the filter ``name`` = ``value`` (a normalised filter value)."""
        facet = self.facets[name]
        typed: Any = float(value) if name == "energy_gev" else value
        mask = np.zeros(len(self), dtype=bool)
        mask[facet.rows.get(facet_value(name, typed), [])] = True
        keys = ([typed] if name == "energy_gev" else spellings(name, value)
                if name == "license" else [value.lower()])
        for key in keys:
            mask[facet.column_keys.get(key, [])] = True
        return mask

    def in_heads(self, words: list[str], every: bool) -> np.ndarray:
        """Datasets whose head terms hold every one of ``words`` (else any of them)."""
        masks = []
        for word in words:
            mask = np.zeros(len(self), dtype=bool)
            mask[self.heads.get(word, [])] = True
            masks.append(mask)
        return (np.logical_and if every else np.logical_or).reduce(masks)

    def counts(self, passing: np.ndarray, filtered: dict[str, np.ndarray]
               ) -> dict[str, list[tuple[str, int]]]:
        """Per facet, (value, datasets) most frequent first, then by value: among the
        datasets of mask ``passing``, or for a facet in ``filtered`` among those of its
        mask there (which leaves out its own filter)."""
        n = np.bincount(self.numbered[passing[self.positions]], minlength=len(self.values))
        for name, within in filtered.items():
            facet = self.facets[name]
            n[facet.offset:facet.offset + len(facet.values)] = np.bincount(
                facet.numbered[within[facet.positions]], minlength=len(facet.values))
        out: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
        for k in np.flatnonzero(n):
            name, value = self.values[k]
            if value:
                out[name].append((value, int(n[k])))
        return {name: sorted(c, key=lambda c: (-c[1], c[0])) for name, c in out.items()}

    def positions_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, found) of dataset ``ids``; ``found`` is False for unknown ids."""
        positions = np.minimum(np.searchsorted(self.ids, ids), max(len(self) - 1, 0))
        found = (self.ids[positions] == ids) if len(self) else np.zeros(len(ids), bool)
        return positions, found


class FacetIndexes:
    """The ``FacetIndex`` of the newest catalog generation seen, built on first use."""

    def __init__(self) -> None:
        self.generation = -1
        self.index: FacetIndex | None = None
        self.lock = threading.Lock()

    def holds(self, generation: int) -> bool:
        """Whether the index of ``generation`` is built."""
        return self.index is not None and self.generation == generation

    def at(self, session: Session, generation: int) -> FacetIndex:
        """The index of ``generation``, built from ``session`` if not yet held."""
        with self.lock:
            if self.index is None or generation != self.generation:
                self.index, self.generation = FacetIndex(session), generation
            return self.index
