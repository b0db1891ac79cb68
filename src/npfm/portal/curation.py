"""AI-assisted curation: suggested values for missing metadata, near-duplicate datasets.

A missing field gets the value voted by the dataset's nearest neighbours in embedding
space (cosine similarity of all-MiniLM-L6-v2 vectors of title, description, keywords and
known facets), each vote weighted by its similarity; the neighbours are the evidence. Two
datasets whose vectors have cosine similarity at least ``DUPLICATE_COSINE`` are reported
as near-duplicates.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.models import Dataset
from npfm.portal.search import SUMMARY_FIELDS, VectorIndex

#: Fields a suggestion can fill.
SUGGESTED_FIELDS = ("facility", "experiment", "collision_system", "energy_gev", "detector",
                    "data_level", "license")
#: Neighbours consulted per suggestion.
NEIGHBOURS = 5
#: Cosine similarity at or above which two datasets are called near-duplicates.
DUPLICATE_COSINE = 0.95


def _missing(value: Any) -> bool:
    return value is None or value == ""


def suggestions(session: Session, dataset: Dataset,
                index: VectorIndex) -> list[dict[str, Any]]:
    """For each missing field: the voted value, its confidence and the neighbours behind it."""
    missing = [f for f in SUGGESTED_FIELDS if _missing(getattr(dataset, f))]
    if not missing:
        return []
    found, matrix = index.current(session)
    ids = [int(i) for i in found]
    me = ids.index(dataset.id)
    sims = matrix @ matrix[me]
    others = {d.id: d for d in session.scalars(select(Dataset).where(Dataset.id != dataset.id))}
    out = []
    for name in missing:
        ranked = sorted(((float(sims[k]), ids[k]) for k in range(len(ids))
                         if ids[k] in others and not _missing(getattr(others[ids[k]], name))),
                        reverse=True)[:NEIGHBOURS]
        if not ranked:
            continue
        votes: dict[Any, float] = defaultdict(float)
        for sim, other in ranked:
            votes[getattr(others[other], name)] += max(sim, 0.0)
        value, weight = max(votes.items(), key=lambda kv: (kv[1], str(kv[0])))
        total = sum(votes.values())
        out.append({"field": name, "value": value,
                    "confidence": round(weight / total, 3) if total > 0 else 0.0,
                    "evidence": [{"id": other, "name": others[other].name,
                                  "value": getattr(others[other], name),
                                  "similarity": round(sim, 4)} for sim, other in ranked]})
    return out


def near_duplicates(session: Session, index: VectorIndex,
                    threshold: float = DUPLICATE_COSINE) -> list[dict[str, Any]]:
    """Pairs of datasets with cosine similarity >= ``threshold``, most similar first."""
    found, matrix = index.current(session)
    ids = [int(i) for i in found]
    if len(ids) < 2:
        return []
    sims = matrix @ matrix.T
    first, second = np.nonzero(np.triu(sims >= threshold, k=1))
    names = dict(session.execute(select(Dataset.id, Dataset.name)).tuples().all())
    pairs = [{"a": {"id": ids[i], "name": names[ids[i]]}, "b": {"id": ids[j],
              "name": names[ids[j]]}, "similarity": round(float(sims[i, j]), 4)}
             for i, j in zip(first, second, strict=True)]
    return sorted(pairs, key=lambda p: -p["similarity"])


def field_values(dataset: Dataset) -> dict[str, Any]:
    """The dataset's summary fields (the curation page shows which are empty)."""
    return {key: getattr(dataset, key) for key in SUMMARY_FIELDS}
