"""Search facets of a corpus, read from the event-level columns of its shards.

Only the small event-level columns are read (facility, experiment, geometry_id, beam PDG
ids, sqrt_s, data_level), one shard at a time, so the cost is a fraction of the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from npfm.catalog.models import Dataset, DatasetFacet

COLUMNS = ("facility", "experiment", "geometry_id", "beam1_pdg", "beam2_pdg", "sqrt_s",
           "data_level")
# PDG Monte Carlo numbering scheme (PDG Review, "Monte Carlo particle numbering scheme"):
# 2212 proton, 11 electron, -11 positron; nuclei 10LZZZAAAI, 1000791970 = Au-197.
_BEAMS = {2212: "p", -2212: "pbar", 11: "e-", -11: "e+", 1000791970: "Au",
          1000822080: "Pb", 1000080160: "O", 1000290630: "Cu"}
_ORDER = ("e-", "e+", "p", "pbar", "O", "Cu", "Au", "Pb")


def collision_system(beam1: int | None, beam2: int | None) -> str | None:
    """Conventional name of a beam pair: pp, e+e-, ep, AuAu, pAu ... (None if unknown)."""
    if beam1 is None or beam2 is None:
        return None
    names = [_BEAMS.get(b, f"pdg{b}") for b in (beam1, beam2)]
    if set(names) == {"e-", "e+"}:
        return "e+e-"
    if "p" in names and ({"e-", "e+"} & set(names)):
        return "ep"
    names.sort(key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER))
    return "".join(names)


def corpus_facets(root: Path, shard_paths: Iterable[str]) -> dict[str, list[Any]]:
    """Distinct facet values over the shards; energies in GeV rounded to 0.1 MeV."""
    found: dict[str, set[Any]] = {k: set() for k in ("facility", "experiment",
                                                     "collision_system", "energy_gev",
                                                     "detector", "data_level")}
    for rel in shard_paths:
        names = set(pq.read_schema(root / rel).names)
        table = pq.read_table(root / rel, columns=[c for c in COLUMNS if c in names])
        for key, column in (("facility", "facility"), ("experiment", "experiment"),
                            ("detector", "geometry_id"), ("data_level", "data_level")):
            if column in names:
                found[key].update(v for v in pc.unique(table[column]).to_pylist() if v)
        if "sqrt_s" in names:
            found["energy_gev"].update(round(float(v), 4) for v in
                                       pc.unique(table["sqrt_s"]).to_pylist() if v)
        if {"beam1_pdg", "beam2_pdg"} <= names:
            pairs = table.group_by(["beam1_pdg", "beam2_pdg"]).aggregate([]).to_pylist()
            found["collision_system"].update(
                s for p in pairs if (s := collision_system(p["beam1_pdg"], p["beam2_pdg"])))
    return {k: sorted(v) for k, v in found.items() if v}


def apply_facets(dataset: Dataset, facets: dict[str, list[Any]]) -> None:
    """Set the facet columns (the value, or ", "-joined values; energy only if unique)
    and one DatasetFacet row per value."""
    for name, values in facets.items():
        if name == "energy_gev":
            dataset.energy_gev = float(values[0]) if len(values) == 1 else None
        else:
            setattr(dataset, name, ", ".join(map(str, values))[:128])
        for value in values:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            dataset.facets.append(DatasetFacet(facet=name, value=text[:256]))
    if dataset.license:
        dataset.facets.append(DatasetFacet(facet="license", value=dataset.license[:256]))
