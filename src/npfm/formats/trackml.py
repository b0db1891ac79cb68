"""TrackML CSV events (the challenge's layout, also written by ACTS' CSV writers) -> the
event model.

One event is four files beside each other, the event number in their name::

    event000001000-hits.csv       hit_id, x, y, z (mm), volume_id, layer_id, module_id
    event000001000-cells.csv      hit_id, ch0, ch1, value           (optional)
    event000001000-particles.csv  particle_id, vx, vy, vz (mm), px, py, pz (GeV), q, nhits
    event000001000-truth.csv      hit_id, particle_id, tx, ty, tz, tpx, tpy, tpz, weight

each possibly compressed (``.csv.gz``, ``.bz2``, ``.zst``, ``.lz4``). Mapping (lengths
mm -> cm, ``MM``):

- ``hit_x/y/z`` from x, y, z; ``hit_subsystem`` ``PIXEL`` for volumes 7-9 and ``STRIP``
  for 12-18 (``SUBSYSTEM_BY_VOLUME``; other volumes are refused); ``hit_layer`` the
  TrackML ``layer_id`` as is (2, 4, ... inwards-out within a volume); ``hit_module`` the
  generic detector id ``volume_id * 10**6 + layer_id * 10**4 + module_id``, unique across
  volumes and decodable (``split_module``);
- with cells: ``hit_cell_row``/``hit_cell_col`` the ch0/ch1 of the hit's largest cell;
- with truth: ``hit_particle``/``hit_track_id`` index the event's particle rows, noise
  (``particle_id`` 0) is -1; ``hit_noise`` is True for noise and particles below the
  FM4NPP pT threshold; ``hit_pid_class`` stays null (TrackML particles have no PDG id);
- particles: charge, momentum (GeV), vertex (cm); ``particle_pdg`` from an ACTS
  ``particle_type`` column where present, else null (TrackML files have none); ACTS'
  ``vt`` (ns) as ``particle_vt``.

- the official per-hit ``weight`` of the truth file as ``hit_weight`` (null without it);
  the tracking scores use it as ``npfm.tasks.metrics.trackml_score(weights=...)``;
- the ``hit_id`` as the extension column ``hit_ext_hit_id`` (hits are stored in ascending
  hit id), so every hit can be traced back to its file rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from npfm.events.errors import NpfmError
from npfm.events.labels import low_pt_noise

#: TrackML lengths are mm; the event model's are cm.
MM = 0.1
#: Solenoid field of the TrackML detector, T (Amrouche et al., "The Tracking Machine
#: Learning challenge: Accuracy phase", arXiv:1904.06778, section 2).
FIELD_T = 2.0
#: TrackML volume ids -> generic subsystem (arXiv:1904.06778, figure 1: pixel 7-9,
#: short strips 12-14, long strips 16-18).
SUBSYSTEM_BY_VOLUME = {7: "PIXEL", 8: "PIXEL", 9: "PIXEL", 12: "STRIP", 13: "STRIP",
                       14: "STRIP", 16: "STRIP", 17: "STRIP", 18: "STRIP"}
#: Largest |x|, |y|, |z| of a TrackML hit, cm (the detector is 3 m long each side of
#: the origin and 1.03 m in radius): a coordinate beyond it is a unit slip.
MAX_EXTENT_CM = 350.0
#: Extension column holding each hit's TrackML hit_id.
HIT_ID = "hit_ext_hit_id"
_NAME = re.compile(r"^event(\d+)-(hits|cells|particles|truth)\.csv(\.(gz|bz2|zst|lz4))?$")
_COLUMNS = {
    "hits": ("hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"),
    "cells": ("hit_id", "ch0", "ch1", "value"),
    "particles": ("particle_id", "vx", "vy", "vz", "px", "py", "pz", "q"),
    "truth": ("hit_id", "particle_id"),
}
#: Read where present: the official weight; ACTS' particle files add the PDG id
#: (``particle_type``) and the production time (``vt``, ns).
_OPTIONAL = {"particles": ("particle_type", "vt"), "truth": ("weight",)}
_INTS = {"hit_id", "volume_id", "layer_id", "module_id", "ch0", "ch1", "particle_id",
         "particle_type"}


def events(path: Path | str) -> list[tuple[int, dict[str, Path]]]:
    """(event number, {kind: file}) of a directory, or of the event a hits file names, in
    ascending event number; every event has a hits file. A cells, particles or truth
    file names no event (its hits file does), so a glob over all files reads each once."""
    path = Path(path)
    if path.is_file() and (m := _NAME.match(path.name)) is not None and m[2] != "hits":
        return []
    listing = sorted(path.iterdir()) if path.is_dir() else \
        sorted(path.parent.glob(f"{path.name.split('-')[0]}-*"))
    found: dict[int, dict[str, Path]] = {}
    for file in listing:
        if (m := _NAME.match(file.name)) is not None:
            found.setdefault(int(m[1]), {})[m[2]] = file
    if not path.is_dir() and not path.is_file():
        raise NpfmError(str(path), "not found", "give a TrackML directory or hits file")
    if not found:
        raise NpfmError(str(path), "no TrackML event files (eventNNNNNNNNN-hits.csv[.gz])",
                        "point at a TrackML/ACTS CSV directory")
    for number, files in found.items():
        if "hits" not in files:
            raise NpfmError(str(next(iter(files.values()))), f"event {number} has no hits "
                            "file", f"add event{number:09d}-hits.csv")
    return sorted(found.items())


def _read(file: Path, kind: str) -> dict[str, np.ndarray]:
    try:
        names = pcsv.open_csv(file).schema.names
        missing = [c for c in _COLUMNS[kind] if c not in names]
        if missing:
            raise NpfmError(str(file), f"no column {missing[0]!r} (columns: "
                            f"{', '.join(names)[:200]})", f"a TrackML {kind} file has "
                            f"{', '.join(_COLUMNS[kind])}")
        wanted = [*_COLUMNS[kind], *(c for c in _OPTIONAL.get(kind, ()) if c in names)]
        types = {c: pa.int64() if c in _INTS else pa.float64() for c in wanted}
        table = pcsv.read_csv(file, convert_options=pcsv.ConvertOptions(
            column_types=types, include_columns=wanted))
    except (pa.ArrowInvalid, OSError) as exc:
        problem = " ".join(str(exc).split())[:200]
        raise NpfmError(str(file), f"cannot be read as a TrackML {kind} file ({problem})",
                        "check the file is complete and its columns hold numbers") from None
    out = {}
    for name in table.column_names:
        column = table.column(name)
        values = column.to_numpy()
        bad = np.asarray(column.is_null())
        if values.dtype.kind == "f":
            bad |= ~np.isfinite(values)
        if bad.any():
            raise NpfmError(f"{file} line {int(np.flatnonzero(bad)[0]) + 2} column {name}",
                            "missing, NaN or infinite value", "restore the file")
        out[name] = values
    return out


def _where(file: Path, rows: np.ndarray, column: str) -> str:
    return f"{file} line {int(np.flatnonzero(rows)[0]) + 2} column {column}"


def split_module(module: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """volume_id, layer_id, module_id of ``hit_module`` generic detector ids."""
    module = np.asarray(module, np.int64)
    return module // 10**6, module // 10**4 % 100, module % 10**4


def _hits(file: Path, max_extent: float) -> dict[str, Any]:
    h = _read(file, "hits")
    order = np.argsort(h["hit_id"], kind="stable")
    h = {k: v[order] for k, v in h.items()}
    if (np.diff(h["hit_id"]) == 0).any():
        raise NpfmError(_where(file, np.diff(h["hit_id"]) == 0, "hit_id"), "a hit id "
                        "appears twice", "give each hit one row")
    known = np.isin(h["volume_id"], list(SUBSYSTEM_BY_VOLUME))
    if not known.all():
        raise NpfmError(_where(file, ~known, "volume_id"), "volume "
                        f"{h['volume_id'][~known][0]} is not a TrackML volume",
                        f"use {sorted(SUBSYSTEM_BY_VOLUME)}")
    ranges = {"layer_id": 100, "module_id": 10**4}
    for name, limit in ranges.items():
        bad = (h[name] < 0) | (h[name] >= limit)
        if bad.any():
            raise NpfmError(_where(file, bad, name), f"{h[name][bad][0]} outside 0..{limit - 1}",
                            "check the file is a TrackML hits file")
    event: dict[str, Any] = {}
    for axis in "xyz":
        cm = h[axis] * MM
        far = np.abs(cm) > max_extent
        if far.any():
            raise NpfmError(_where(file, far, axis), f"|{axis}| = {abs(cm[far][0]):.6g} cm "
                            f"beyond {max_extent:g} cm", "TrackML lengths are mm; give "
                            "max_extent_cm for a larger detector")
        event[f"hit_{axis}"] = cm
    event["hit_subsystem"] = np.array([SUBSYSTEM_BY_VOLUME[v] for v in h["volume_id"]])
    event["hit_layer"] = h["layer_id"]
    event["hit_module"] = h["volume_id"] * 10**6 + h["layer_id"] * 10**4 + h["module_id"]
    event["_hit_id"] = event[HIT_ID] = h["hit_id"]
    return event


def _positions(file: Path, ids: np.ndarray, wanted: np.ndarray, what: str,
               rows: np.ndarray) -> np.ndarray:
    """Index in ``ids`` (sorted) of each of ``wanted`` (from file rows ``rows``); an
    unknown id is an error naming its line."""
    pos = np.minimum(np.searchsorted(ids, wanted), max(len(ids) - 1, 0))
    lost = (ids[pos] != wanted) if len(ids) else np.ones(len(wanted), bool)
    if lost.any():
        line = np.zeros(int(rows.max()) + 1, bool)
        line[rows[np.flatnonzero(lost)[0]]] = True
        raise NpfmError(_where(file, line, what), f"{what} {wanted[lost][0]} not in the "
                        "event's hits" if what == "hit_id" else f"{what} {wanted[lost][0]} "
                        "not in the particles file", "use the files of one event")
    return pos


def _cells(event: dict[str, Any], file: Path) -> None:
    c = _read(file, "cells")
    order = np.lexsort((-c["value"], c["hit_id"]))  # per hit, its largest cell first
    first = order[np.r_[True, np.diff(c["hit_id"][order]) != 0]] if len(order) else order
    pos = _positions(file, event["_hit_id"], c["hit_id"][first], "hit_id", first)
    for key, channel in (("hit_cell_row", "ch0"), ("hit_cell_col", "ch1")):
        values: list[int | None] = [None] * len(event["_hit_id"])
        for p, v in zip(pos.tolist(), c[channel][first].tolist(), strict=True):
            values[p] = v
        event[key] = values


def _truth(event: dict[str, Any], files: dict[str, Path]) -> None:
    p = _read(files["particles"], "particles")
    order = np.argsort(p["particle_id"], kind="stable")
    p = {k: v[order] for k, v in p.items()}
    if (np.diff(p["particle_id"]) == 0).any() or (p["particle_id"] == 0).any():
        raise NpfmError(str(files["particles"]), "a particle id appears twice or is 0",
                        "give each particle one row; 0 is reserved for noise")
    n = len(p["particle_id"])
    event.update(particle_pdg=p.get("particle_type", [None] * n), particle_charge=p["q"],
                 particle_px=p["px"], particle_py=p["py"], particle_pz=p["pz"],
                 particle_vx=p["vx"] * MM, particle_vy=p["vy"] * MM, particle_vz=p["vz"] * MM,
                 particle_vt=p.get("vt"))
    if "truth" not in files:
        return
    t = _read(files["truth"], "truth")
    at = _positions(files["truth"], event["_hit_id"], t["hit_id"], "hit_id",
                    np.arange(len(t["hit_id"])))
    if len(at) != len(event["_hit_id"]) or len(np.unique(at)) != len(at):
        raise NpfmError(str(files["truth"]), f"{len(at)} truth rows for "
                        f"{len(event['_hit_id'])} hits", "give one truth row per hit")
    noise = t["particle_id"] == 0
    index = np.full(len(at), -1, np.int64)
    if (~noise).any():
        index[~noise] = _positions(files["truth"], p["particle_id"], t["particle_id"][~noise],
                                   "particle_id", np.flatnonzero(~noise))
    particle = np.empty(len(at), np.int64)
    particle[at] = index
    event["hit_particle"] = event["hit_track_id"] = particle
    if "weight" in t:
        bad = ~np.isfinite(t["weight"]) | (t["weight"] < 0)
        if bad.any():
            raise NpfmError(_where(files["truth"], bad, "weight"), f"weight "
                            f"{t['weight'][bad][0]} is not a finite number >= 0",
                            "use the official truth file's weights")
        weight = np.empty(len(at))
        weight[at] = t["weight"]
        event["hit_weight"] = weight
    real = particle >= 0
    tag = np.ones(len(particle), bool)
    tag[real] = low_pt_noise(p["px"][particle[real]], p["py"][particle[real]])
    event["hit_noise"] = tag


def truth_weights(path: Path | str) -> np.ndarray:
    """The official per-hit weights of one event's truth file, in ascending hit id (the
    order of the imported event's hits)."""
    t = _read(Path(path), "truth")
    if "weight" not in t:
        raise NpfmError(str(path), "no column 'weight'", "the official TrackML truth files "
                        "carry it; without it trackml_score computes the weights")
    return t["weight"][np.argsort(t["hit_id"], kind="stable")]


def read_trackml(path: Path | str, *, run: int = 0, max_extent_cm: float = MAX_EXTENT_CM,
                 progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Event mappings of a TrackML directory (or of the event a hits file names), in
    ascending event number; ``progress(n_hits)`` after each event."""
    for number, files in events(path):
        event = _hits(files["hits"], max_extent_cm)
        if "cells" in files:
            _cells(event, files["cells"])
        if "particles" in files:
            _truth(event, files)
        elif "truth" in files:
            raise NpfmError(str(files["truth"]), "truth without a particles file",
                            f"add event{number:09d}-particles.csv")
        del event["_hit_id"]
        yield {"facility": "LHC", "experiment": "TrackML", "geometry_id": "trackml",
               "data_level": "simulated", "run": run, "event": number,
               "magnetic_field": FIELD_T, **event,
               "extensions": {HIT_ID: "TrackML hit_id of the hit, as in the event's files"}}
        if progress:
            progress(len(event["hit_x"]))
