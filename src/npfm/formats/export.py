"""Export a corpus to the formats other tools read: FM4NPP npz, EDM4hep ROOT, HepMC3.

``export(corpus, "hepmc3", out)`` and ``npfm export CORPUS --to hepmc3 --out FILE``.
Every export reads the corpus through the verified path (checksums and value checks) and
never overwrites an existing file.

HepMC3 carries the corpus's truth particles (GeV, mm, ns → mm/c as in
``npfm.formats.hepmc3``): PDG id, momentum, production vertex and time, parent links
(as production vertices) and the primary flag. The energy is computed from the momentum
and the PDG mass of ``MASS_GEV`` (0 for species not in that table); a particle without
daughters in the record is final (status 1). Particle extension columns become integer
particle attributes of their column name (``particle_ext_pwflag``; a null value: no
attribute). Hits, hit extensions and reconstructed objects have no place in HepMC3 and
are left out. A particle column that is null for an event (e.g. no charge in a hit
table) is written as 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.formats.edm4hep import MASS_GEV
from npfm.formats.edm4hep_export import write_edm4hep
from npfm.formats.fm4npp import write_fm4npp
from npfm.formats.hepmc3 import write_hepmc3
from npfm.physics.record import GeneratedEvent

FORMATS = ("fm4npp", "edm4hep", "hepmc3")
_PARTICLE_COLUMNS = ["particle_pdg", "particle_charge", "particle_px", "particle_py",
                     "particle_pz", "particle_vx", "particle_vy", "particle_vz",
                     "particle_vt", "particle_parent", "particle_primary"]


def _values(table: pa.Table, name: str, row: int, dtype: Any, fill: Any) -> np.ndarray:
    """One event's values of a particle column; a null list is ``fill`` per particle."""
    raw = table.column(name)[row].as_py()
    if raw is None:
        raw = [fill] * len(table.column("particle_pdg")[row].as_py() or [])
    return np.array([fill if v is None else v for v in raw], dtype=dtype)


def particle_records(corpus: Corpus
                     ) -> Iterator[tuple[GeneratedEvent, dict[str, list[int | None]]]]:
    """The truth particles of every event as a ``GeneratedEvent`` with the event's
    particle extension columns (name -> one value or None per particle); events without
    a particle list give empty events, so event numbers stay aligned."""
    extensions = [n for n in corpus.extensions if n.startswith("particle_ext_")]
    for table in corpus.iter_tables(_PARTICLE_COLUMNS + extensions):
        for row in range(table.num_rows):
            pdg = _values(table, "particle_pdg", row, np.int32, 0)
            p = {k: _values(table, f"particle_{k}", row, np.float64, 0.0)
                 for k in ("px", "py", "pz", "vx", "vy", "vz", "vt")}
            mass = np.array([MASS_GEV.get(abs(int(c)), 0.0) for c in pdg], np.float64)
            parent = _values(table, "particle_parent", row, np.int32, -1)
            has_daughters = np.zeros(len(pdg), bool)
            has_daughters[parent[parent >= 0]] = True
            yield GeneratedEvent(
                pdg=pdg, charge=_values(table, "particle_charge", row, np.float32, 0.0),
                px=p["px"], py=p["py"], pz=p["pz"],
                energy=np.sqrt(p["px"] ** 2 + p["py"] ** 2 + p["pz"] ** 2 + mass ** 2),
                mass=mass, vx=p["vx"], vy=p["vy"], vz=p["vz"], vt=p["vt"], parent=parent,
                primary=_values(table, "particle_primary", row, bool, False),
                final=~has_daughters), {
                    n: table.column(n)[row].as_py() or [None] * len(pdg) for n in extensions}


def export(corpus_path: Path | str, to: str, out: Path | str,
           progress: Callable[[int], None] | None = None) -> str:
    """Write the corpus in format ``to`` at ``out``; returns a one-line summary."""
    out = Path(out)
    if to not in FORMATS:
        raise NpfmError(f"--to {to!r}", "unknown export format", f"use {', '.join(FORMATS)}")
    if out.exists():
        raise NpfmError(str(out), "already exists", "choose another path or delete it")
    corpus = Corpus.open(corpus_path)
    if to == "fm4npp":
        done = write_fm4npp(corpus, out, experiment=None, progress=progress)
        return (f"{done.events} events, {done.points} TPC points in "
                f"{', '.join(str(f) for f in done.files)}; {done.dropped} events over the "
                "point cap left out")
    if to == "edm4hep":
        counts = write_edm4hep(corpus, out, progress=progress)
        return (f"{counts['events']} events, {counts['particles']} particles, "
                f"{counts['hits']} hits in {out} (EDM4hep ROOT)")
    events, attributes = itertools.tee(particle_records(corpus))  # consumed in step
    n = write_hepmc3((ev for ev, _ in events), out, attributes=(a for _, a in attributes),
                     progress=progress)
    return f"{n} events of truth particles in {out} (HepMC3 ASCII)"
