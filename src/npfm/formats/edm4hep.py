"""EDM4hep in ROOT (podio TTree layout): read MCParticles + SimTrackerHits (the export is
``npfm.formats.edm4hep_export``).

Layout (EDM4hep 1.0, ``edm4hep.yaml`` of key4hep/EDM4hep; podio's ROOT branch naming,
AIDASoft/podio ``src/rootUtils.h``): tree ``events``, one entry per event; member ``m``
of collection ``C`` in branch ``C.m`` (vector components ``C.vertex.x``); a OneToMany
relation as ranges ``C.parents_begin``/``C.parents_end`` into the per-event ObjectID
vector ``_C_parents.{index,collectionID}``; a OneToOne relation as one ObjectID per
object in ``_C_particle``. Older names are read too: ``_C_MCParticle`` (EDM4hep < 0.99),
``C#0`` (older podio), ``EDep`` (later ``eDep``). Units: mm, ns, GeV.

Written files hold these branches only: podio's ``podio_metadata`` tree (collection-ID
table, collection types, EDM definitions) needs ROOT class streamers that uproot cannot
write, so podio's ROOTReader does not open them; uproot, ROOT (TTree::Draw, RDataFrame)
and any reader that goes by branch name do. A TObjString ``npfm_edm4hep`` (JSON) lists
the collections, their types, podio collection IDs and subsystems.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.events.labels import hit_labels
from npfm.events.units import factor
from npfm.formats.rootio import branch_names, get_tree, iter_chunks, open_root, resolve

MM = factor("mm", "length")  # mm -> cm
METADATA_KEY = "npfm_edm4hep"
#: SimTrackerHit collections of the ePIC simulation (names as in eic/EICrecon) -> subsystem.
EPIC_COLLECTIONS: dict[str, str] = {
    "VertexBarrelHits": "SVT", "SiBarrelHits": "SVT", "TrackerEndcapHits": "SVT",
    "MPGDBarrelHits": "MPGD", "OuterMPGDBarrelHits": "MPGD",
    "ForwardMPGDEndcapHits": "MPGD", "BackwardMPGDEndcapHits": "MPGD"}
#: EDM4hep MCParticle simulatorStatus bit "created in simulation" (not by the generator).
CREATED_IN_SIMULATION = 1 << 30
INVALID_ID = -2  # podio::ObjectID::invalid: an unset relation
#: Masses written to MCParticles.mass, GeV (PDG 2024, Phys. Rev. D 110 (2024) 030001);
#: other species get 0 (EDM4hep has no null).
MASS_GEV = {11: 0.51099895e-3, 13: 0.1056583755, 211: 0.13957039, 111: 0.1349768,
            321: 0.493677, 130: 0.497611, 310: 0.497611, 2212: 0.93827208816,
            2112: 0.93956542052, 3122: 1.115683}
#: cellID bit fields written (DD4hep-style descriptor): column, offset, width.
CELL_ID = (("hit_layer", 0, 8), ("hit_module", 8, 16), ("hit_cell_row", 24, 20),
           ("hit_cell_col", 44, 20))


def collection_id(name: str) -> int:
    """podio's collection ID: MurmurHash3_x86_32 of the name, seed 0
    (``podio::CollectionIDTable::add``)."""
    data, h, mask = name.encode(), 0, 0xFFFFFFFF

    def mix(k: int) -> int:
        k = (k * 0xCC9E2D51) & mask
        return (((k << 15) | (k >> 17)) & mask) * 0x1B873593 & mask

    n4 = len(data) // 4 * 4
    for i in range(0, n4, 4):
        h ^= mix(int.from_bytes(data[i:i + 4], "little"))
        h = ((((h << 13) | (h >> 19)) & mask) * 5 + 0xE6546B64) & mask
    if len(data) > n4:
        h ^= mix(int.from_bytes(data[n4:], "little"))
    h ^= len(data)
    for shift, mult in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        h = ((h ^ (h >> shift)) * mult) & mask
    return h ^ (h >> 16)


#: Quantity -> accepted branch names ("|"-separated, newest first) of collection {c}.
_PARTICLE = {"pdg": "{c}.PDG", "charge": "{c}.charge", "px": "{c}.momentum.x",
             "py": "{c}.momentum.y", "pz": "{c}.momentum.z", "vx": "{c}.vertex.x",
             "vy": "{c}.vertex.y", "vz": "{c}.vertex.z", "vt": "{c}.time",
             "status": "{c}.simulatorStatus", "begin": "{c}.parents_begin",
             "end": "{c}.parents_end", "parents": "_{c}_parents.index|{c}#0.index"}
_HIT = {"x": "{c}.position.x", "y": "{c}.position.y", "z": "{c}.position.z", "t": "{c}.time",
        "edep": "{c}.eDep|{c}.EDep",
        "link": "_{c}_particle.index|_{c}_MCParticle.index|{c}#0.index"}
_HEADER = {"run": ("EventHeader.runNumber",), "event": ("EventHeader.eventNumber",)}


def _aliases(c: str, names: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    return {k: tuple(v.format(c=c).split("|")) for k, v in names.items()}


def _default_collections(file: Any, names: set[str]) -> dict[str, str]:
    if METADATA_KEY in file.keys(cycle=False):
        meta = json.loads(str(file[METADATA_KEY]))
        return {c: v["subsystem"] for c, v in meta["collections"].items() if "subsystem" in v}
    candidates = EPIC_COLLECTIONS | {f"{s}Hits": s for s in vocabulary.names("subsystems")}
    return {c: s for c, s in candidates.items() if f"{c}.position.x" in names}


def _user_data(file: Any, names: set[str], particles: str, collections: list[str]
               ) -> dict[str, tuple[str, list[str]]]:
    """npfm extension column -> (description, its user-data branches in the order of the
    particle or hit collections), from the ``npfm_edm4hep`` record of an npfm export."""
    if METADATA_KEY not in file.keys(cycle=False):
        return {}
    entries = json.loads(str(file[METADATA_KEY]))["collections"]
    out: dict[str, tuple[str, list[str]]] = {}
    for name, entry in entries.items():
        column = entry.get("column")
        if entry.get("type") != "podio::UserDataCollection<int64_t>" or column is None:
            continue
        of = [particles] if column.startswith("particle_ext_") else collections
        branches = [f"{c}_ext_{column.split('_ext_', 1)[1]}" for c in of]
        if name in branches and all(b in names for b in branches):
            out[column] = (entry["description"], branches)
    return out


def read_edm4hep(path: Path | str, *, collections: Mapping[str, str] | None = None,
                 particles: str = "MCParticles", tree: str = "events",
                 facility: str = "EIC", experiment: str = "ePIC", run: int = 0,
                 event_fields: Mapping[str, Any] | None = None,
                 step_size: int | str = "50 MB",
                 progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Stream events (``events_to_table`` mappings) of an EDM4hep ROOT file.

    ``collections`` maps SimTrackerHit collection names to subsystems, e.g.
    ``{"VertexBarrelHits": "SVT"}``; by default the file's ``npfm_edm4hep`` record, else
    the ePIC names (``EPIC_COLLECTIONS``) and ``<SUBSYSTEM>Hits`` found in the file.
    Positions become cm; the hit's particle link gives hit_particle = hit_track_id and
    the FM4NPP labels; particle_parent is the first parent; particle_primary is "not
    created in the simulation" (simulatorStatus bit 30). Link collection IDs are not
    checked: links are taken to point into ``particles``. Run and event come from
    ``EventHeader``, else ``run`` and the entry number. ``event_fields`` adds constant
    event columns (e.g. magnetic_field). The user-data collections of an npfm export
    come back as the extension columns they were. ``progress(n)`` reports events per
    chunk.
    """
    path = Path(path)
    with open_root(path) as file:
        events = get_tree(file, tree, path)
        where, names = f"{path} tree {tree}", branch_names(events)
        mapping = dict(collections) if collections is not None else \
            _default_collections(file, names)
        if not mapping:
            raise NpfmError(where, "no SimTrackerHit collection known to npfm",
                            "pass collections={collection name: subsystem}")
        unknown = set(mapping.values()) - set(vocabulary.names("subsystems"))
        if unknown:
            raise NpfmError(where, f"unknown subsystem(s) {sorted(unknown)}",
                            "use names of npfm/events/vocabulary.yaml")
        part = resolve(names, _aliases(particles, _PARTICLE),
                       ("pdg", "charge", "px", "py", "pz", "vx", "vy", "vz"), where)
        hits = {c: resolve(names, _aliases(c, _HIT), ("x", "y", "z", "link"), where)
                for c in mapping}
        header = resolve(names, _HEADER, (), where)
        extensions = _user_data(file, names, particles, list(mapping))
        wanted = sorted({*part.values(), *header.values(),
                         *(b for h in hits.values() for b in h.values()),
                         *(b for _, branches in extensions.values() for b in branches)})
        subsystems = list(dict.fromkeys(mapping.values()))
        for start, data in iter_chunks(events, wanted, where, step_size):
            n = len(data[part["pdg"]][1]) - 1
            for i in range(n):
                cut = {b: v[o[i]:o[i + 1]] for b, (v, o) in data.items()}
                entry = f"{where} entry {start + i}"
                event = {"facility": facility, "experiment": experiment, "run": run,
                         "event": start + i, "data_level": "simulated",
                         **{k: int(cut[b][0]) for k, b in header.items() if len(cut[b])},
                         **(event_fields or {}), "subsystems": subsystems}
                event |= _particles({k: cut[b] for k, b in part.items()}, part, entry)
                event |= _hits({c: {k: cut[b] for k, b in h.items()} for c, h in hits.items()},
                               hits, mapping, event, entry)
                for column, (doc, branches) in extensions.items():
                    event[column] = np.concatenate([cut[b] for b in branches])
                    event.setdefault("extensions", {})[column] = doc
                yield event
            if progress:
                progress(n)


def _particles(p: dict[str, np.ndarray], branch: dict[str, str], entry: str
               ) -> dict[str, Any]:
    n = len(p["pdg"])
    out: dict[str, Any] = {
        "particle_pdg": p["pdg"], "particle_charge": p["charge"], "particle_px": p["px"],
        "particle_py": p["py"], "particle_pz": p["pz"], "particle_vx": p["vx"] * MM,
        "particle_vy": p["vy"] * MM, "particle_vz": p["vz"] * MM, "particle_vt": p.get("vt"),
        "particle_primary": None, "particle_parent": None}
    if "status" in p:
        out["particle_primary"] = (p["status"].astype(np.int64) & CREATED_IN_SIMULATION) == 0
    if {"begin", "end", "parents"} <= p.keys():
        begin, end, index = (p[k].astype(np.int64) for k in ("begin", "end", "parents"))
        has, bad = end > begin, (end > begin) & (begin >= len(index))
        parent = np.full(n, -1, np.int64)
        parent[has & ~bad] = index[begin[has & ~bad]]
        if bad.any() or (parent >= n).any():
            raise NpfmError(f"{entry} branch {branch['parents']}", "parent link outside the "
                            f"{n} particles", "links must point into the same collection")
        out["particle_parent"] = np.maximum(parent, -1)
    return out


def _hits(h: dict[str, dict[str, np.ndarray]], branches: dict[str, dict[str, str]],
          mapping: dict[str, str], event: dict[str, Any], entry: str) -> dict[str, Any]:
    n_part, subsystems = len(event["particle_pdg"]), event["subsystems"]
    for c, cols in h.items():
        link, n_hits = cols["link"], len(cols["x"])
        if len(link) != n_hits or (n_hits and link.max() >= n_part):
            raise NpfmError(f"{entry} branch {branches[c]['link']}", f"{len(link)} links for "
                            f"{n_hits} hits, up to index {link.max() if len(link) else '-'} "
                            f"for {n_part} particles", "give one link per hit, into the "
                            "MCParticle collection read")

    def cat(key: str) -> np.ndarray | None:
        if any(key not in cols for cols in h.values()):
            return None
        return np.concatenate([cols[key] for cols in h.values()])

    code = np.concatenate([np.full(len(cols["x"]), subsystems.index(mapping[c]))
                           for c, cols in h.items()])
    hit_particle = np.maximum(np.concatenate([c["link"] for c in h.values()]), -1
                              ).astype(np.int32)
    pid, noise = hit_labels(hit_particle, event["particle_pdg"], event["particle_px"],
                            event["particle_py"])
    real, k = hit_particle >= 0, len(subsystems)
    nhits = np.bincount(hit_particle[real] * k + code[real], minlength=n_part * k)
    x, y, z = (np.concatenate([c[a] for c in h.values()]) * MM for a in "xyz")
    return {"hit_x": x, "hit_y": y, "hit_z": z, "hit_t": cat("t"), "hit_edep": cat("edep"),
            "hit_subsystem": np.array(subsystems)[code], "hit_particle": hit_particle,
            "hit_track_id": hit_particle, "hit_pid_class": pid, "hit_noise": noise,
            "particle_nhits": nhits.reshape(n_part, k).astype(np.int16)}
