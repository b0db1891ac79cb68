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
_BEAMS = {2212: "p", -2212: "pbar", 11: "e-", -11: "e+", 1000010020: "d", 1000791970: "Au",
          1000822080: "Pb", 1000080160: "O", 1000290630: "Cu"}
_ORDER = ("e-", "e+", "p", "pbar", "d", "O", "Cu", "Au", "Pb")
#: Canonical spelling of known facet values, looked up case-insensitively. Detectors are
#: geometry ids (the lowercase names of src/npfm/detectors/geometries/*.yaml).
_CANONICAL: dict[str, dict[str, str]] = {
    "experiment": {n.lower(): n for n in ("sPHENIX", "PHENIX", "STAR", "ALEPH", "DELPHI",
                                          "OPAL", "L3", "ZEUS", "H1", "ePIC", "ALICE",
                                          "ATLAS", "CMS", "LHCb", "CLAS12", "GlueX")},
    "facility": {n.lower(): n for n in ("RHIC", "LEP", "HERA", "EIC", "LHC", "CEBAF",
                                        "JLab", "FAIR", "SPS")},
    "collision_system": {n.lower(): n for n in ("pp", "ppbar", "e+e-", "ep", "ed", "eA", "AuAu",
                                                "pAu", "dAu", "PbPb", "pPb", "OO", "CuCu")},
    "data_level": {n: n for n in ("raw", "hits", "simulated", "reconstructed", "objects",
                                  "analysis", "lattice")},
}
#: Licence URLs -> SPDX identifiers (spdx.org/licenses), the license facet's values.
_LICENSES = {"creativecommons.org/licenses/by/4.0": "CC-BY-4.0",
             "creativecommons.org/licenses/by-sa/4.0": "CC-BY-SA-4.0",
             "creativecommons.org/licenses/by-nc/4.0": "CC-BY-NC-4.0",
             "creativecommons.org/publicdomain/zero/1.0": "CC0-1.0",
             "opensource.org/licenses/mit": "MIT",
             "www.apache.org/licenses/license-2.0": "Apache-2.0"}
#: Other spellings met in metadata (experiment names with punctuation, beam pairs).
_ALIASES = {"experiment": {"s-phenix": "sPHENIX", "epic": "ePIC", "clas 12": "CLAS12"},
            "collision_system": {"ee": "e+e-", "e-e+": "e+e-", "p-p": "pp", "au+au": "AuAu",
                                 "au-au": "AuAu", "pb+pb": "PbPb", "pb-pb": "PbPb",
                                 "e-p": "ep", "e+p": "ep", "e-d": "ed", "e+d": "ed"}}


def normalise(facet: str, value: str) -> str:
    """The canonical facet value: known names in their usual spelling, detectors as
    lowercase geometry ids, licence URLs as SPDX ids; unknown values stripped only."""
    text = " ".join(str(value).split())
    key = text.lower()
    if facet == "detector":
        return key
    if facet == "license":
        bare = key.split("://", 1)[-1].rstrip("/")
        return _LICENSES.get(bare, text)
    return (_CANONICAL.get(facet, {}).get(key) or _ALIASES.get(facet, {}).get(key) or text)


def spellings(facet: str, value: str) -> list[str]:
    """Raw column values that ``normalise`` maps to ``value`` (licence URL forms)."""
    if facet != "license":
        return [value]
    urls = [u for u, spdx in _LICENSES.items() if spdx == value]
    return [value, *(f"{scheme}://{u}{slash}" for u in urls for scheme in ("https", "http")
                     for slash in ("/", ""))]


def collision_system(beam1: int | None, beam2: int | None) -> str | None:
    """Conventional name of a beam pair: pp, e+e-, ep, ed, AuAu, pAu, dAu ... (None if
    unknown)."""
    if beam1 is None or beam2 is None:
        return None
    names = [_BEAMS.get(b, f"pdg{b}") for b in (beam1, beam2)]
    if set(names) == {"e-", "e+"}:
        return "e+e-"
    for target in ("p", "d"):
        if target in names and ({"e-", "e+"} & set(names)):
            return f"e{target}"
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
    """Set the facet columns (the normalised value, or ", "-joined values; energy only if
    unique) and one DatasetFacet row per normalised value."""
    for name, values in facets.items():
        if name == "energy_gev":
            dataset.energy_gev = float(values[0]) if len(values) == 1 else None
            texts = [f"{float(v):g}" for v in values]
        else:
            texts = sorted({normalise(name, str(v)) for v in values})
            setattr(dataset, name, ", ".join(texts)[:128])
        for text in texts:
            dataset.facets.append(DatasetFacet(facet=name, value=text[:256]))
    if dataset.license:
        dataset.facets.append(DatasetFacet(facet="license",
                                           value=normalise("license", dataset.license)[:256]))
