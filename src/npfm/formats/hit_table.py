"""Hit tables (CSV or Parquet) with a YAML column mapping -> event-model mappings.

A new experiment's hit dump needs a mapping file, no code::

    hits:
      file: hits.csv            # relative to the mapping file; .csv or .parquet
      sorted: true              # rows grouped by ascending event id (default); false
                                # loads the whole file and sorts it in memory
      columns: {event: evt, x: hx, y: hy, z: hz, energy: edep, time: t,
                particle: pid, subsystem: det, layer: lay}
      units: {x: mm, y: mm, z: mm, energy: MeV, time: ns}
      subsystem: TPC            # constant, instead of a subsystem column
    particles:                  # optional: truth particles, joined on the particle key
      file: particles.csv
      columns: {event: evt, key: pid, pdg: pdg, px: px, py: py, pz: pz,
                vx: vx, vy: vy, vz: vz}
      units: {px: MeV, py: MeV, pz: MeV, vx: mm, vy: mm, vz: mm}
    event: {facility: RHIC, experiment: sPHENIX, data_level: simulated, run: 1}

Required: ``hits.columns`` event, x, y, z; ``particles.columns`` event, key, pdg; a unit
for every mapped quantity (``npfm.events.units``); ``event`` facility, experiment and
data_level (run defaults to 0; any event-level column may be set). Hits whose particle key
is negative or empty are noise (-1). With a particle table, hit_particle and hit_track_id
index its rows and hit_pid_class / hit_noise follow ``npfm.events.labels``; without one,
hit_track_id is the key itself.

Memory: with ``sorted: true`` both files stream (CSV through ``pyarrow.csv.open_csv`` in
blocks, Parquet batch by batch) and one event is held at a time; hits and particles are
merged by event id. ``sorted: false`` holds the whole file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import yaml

from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.events.labels import hit_labels
from npfm.events.schema import BY_NAME
from npfm.events.units import factor

#: key -> (event-model column, unit dimension or the Arrow type it is read as).
HIT_KEYS: dict[str, tuple[str, str]] = {
    "event": ("event", "int64"), "x": ("hit_x", "length"), "y": ("hit_y", "length"),
    "z": ("hit_z", "length"), "energy": ("hit_edep", "energy"), "time": ("hit_t", "time"),
    "particle": ("hit_particle", "int64"), "subsystem": ("hit_subsystem", "string"),
    "layer": ("hit_layer", "int64"),
}
PARTICLE_KEYS: dict[str, tuple[str, str]] = {
    "event": ("event", "int64"), "key": ("", "int64"), "pdg": ("particle_pdg", "int64"),
    "px": ("particle_px", "energy"), "py": ("particle_py", "energy"),
    "pz": ("particle_pz", "energy"), "vx": ("particle_vx", "length"),
    "vy": ("particle_vy", "length"), "vz": ("particle_vz", "length"),
}
_REQUIRED = {"hits": ("event", "x", "y", "z"), "particles": ("event", "key", "pdg")}
_SECTION_KEYS = {"hits": {"file", "sorted", "columns", "units", "subsystem", "max_extent_cm"},
                 "particles": {"file", "sorted", "columns", "units"}}
_TYPES = {"int64": pa.int64(), "string": pa.string()}
_NOT_NULL = {"event", "x", "y", "z", "key", "pdg"}
#: Default largest |x|, |y|, |z| of a hit, cm: the half-length of the largest collider
#: detector (ATLAS, 46 m long: ATLAS Collaboration, JINST 3 (2008) S08003) with margin. A
#: coordinate beyond it is a unit slip (e.g. mm declared as cm); ``hits.max_extent_cm``
#: sets a tighter (or, for a larger apparatus, looser) bound.
MAX_EXTENT_CM = 2500.0
#: The most characters of a reader's message that an error repeats.
ECHO_CHARS = 200
#: Rows per Parquet batch (CSV streams in pyarrow's default blocks of 1 MiB).
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class TableSpec:
    """One mapped file: key -> file column, key -> factor to the canonical unit."""

    section: str
    file: Path | None
    sorted: bool
    columns: dict[str, str]
    scale: dict[str, float]
    subsystem: str | None = None
    max_extent: float = MAX_EXTENT_CM

    @property
    def path(self) -> Path:
        assert self.file is not None, "read_hit_table resolves the file"
        return self.file


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file."""

    path: Path
    hits: TableSpec
    particles: TableSpec | None
    event: dict[str, Any]


def _bad(where: str, problem: str, fix: str = "see npfm.formats.hit_table") -> NpfmError:
    return NpfmError(where, problem, fix)


def _dict(raw: Any, where: str, allowed: set[str] | dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad(where.rstrip(": "), "not a mapping", "write key: value pairs")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise _bad(f"{where}{'' if where.endswith(' ') else '.'}{unknown[0]}", "unknown key",
                   f"use {', '.join(sorted(allowed))}")
    return raw


def _spec(raw: Any, section: str, keys: dict[str, tuple[str, str]], path: Path) -> TableSpec:
    where = f"{path}: {section}"
    raw = _dict(raw, where, _SECTION_KEYS[section])
    columns = _dict(raw.get("columns"), f"{where}.columns", keys)
    units = _dict(raw.get("units", {}), f"{where}.units", keys)
    for key in _REQUIRED[section]:
        if key not in columns:
            raise _bad(f"{where}.columns.{key}", "required key missing",
                       f"name the file column that holds {key}")
    scale = {}
    for key, (_, dimension) in keys.items():
        if key in units and key not in columns:
            raise _bad(f"{where}.units.{key}", "unit for a column that is not mapped")
        if key in columns and dimension not in _TYPES:
            if key not in units:
                raise _bad(f"{where}.units.{key}", "unit missing",
                           f"state the {dimension} unit of column {columns[key]!r}")
            try:
                scale[key] = factor(str(units[key]), dimension)
            except NpfmError as exc:
                raise _bad(f"{where}.units.{key}", exc.problem, exc.fix) from None
    subsystem = raw.get("subsystem")
    if section == "hits" and (subsystem is None) == ("subsystem" not in columns):
        raise _bad(f"{where}.subsystem", "give either a constant subsystem or a subsystem "
                   "column (not both)", "set hits.subsystem or hits.columns.subsystem")
    if subsystem is not None and subsystem not in vocabulary.names("subsystems"):
        raise _bad(f"{where}.subsystem", f"unknown subsystem {subsystem!r}",
                   f"use one of {', '.join(vocabulary.names('subsystems'))}")
    extent = raw.get("max_extent_cm", MAX_EXTENT_CM)
    if isinstance(extent, bool) or not isinstance(extent, int | float) or not extent > 0:
        raise _bad(f"{where}.max_extent_cm", f"{str(extent)[:ECHO_CHARS]!r} is not a positive "
                   "number", f"give the largest |x|, |y|, |z| in cm (default {MAX_EXTENT_CM})")
    file = raw.get("file")
    return TableSpec(section, path.parent / file if file else None, bool(raw.get("sorted", True)),
                     {k: str(v) for k, v in columns.items()}, scale, subsystem, float(extent))


def load_mapping(path: Path | str) -> Mapping:
    """Read and validate a mapping file; errors name the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(str(path), "mapping file not found", "check the path") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _bad(str(path), f"not valid YAML ({exc})", "fix the syntax") from None
    raw = _dict(raw, f"{path}: ", {"hits", "particles", "event"})
    for key in ("hits", "event"):
        if key not in raw:
            raise _bad(f"{path}: {key}", "required section missing")
    hits = _spec(raw["hits"], "hits", HIT_KEYS, path)
    particles = None
    if raw.get("particles") is not None:
        particles = _spec(raw["particles"], "particles", PARTICLE_KEYS, path)
        if "particle" not in hits.columns:
            raise _bad(f"{path}: hits.columns.particle", "required with a particle table",
                       "name the hit column holding the particle key")
    event_columns = {n for n, c in BY_NAME.items() if c.level == "event"} - {"event"}
    event = _dict(raw["event"], f"{path}: event", event_columns)
    for key in ("facility", "experiment", "data_level"):
        if event.get(key) is None:
            raise _bad(f"{path}: event.{key}", "required key missing")
    if event["data_level"] not in vocabulary.names("data_levels"):
        raise _bad(f"{path}: event.data_level", f"unknown data level {event['data_level']!r}",
                   f"use one of {', '.join(vocabulary.names('data_levels'))}")
    return Mapping(path, hits, particles, {"run": 0, **event})


def _location(path: Path, row: int) -> str:
    return f"{path} line {row + 2}" if path.suffix == ".csv" else f"{path} row {row}"


def _batches(spec: TableSpec, mapping: Path) -> Iterator[pa.RecordBatch]:
    """Record batches of the mapped columns, each cast to its type."""
    path = spec.path
    if not path.is_file():
        raise _bad(str(path), "file not found", f"check {spec.section}.file in {mapping}")
    wanted = {col: key for key, col in spec.columns.items()}
    kinds = PARTICLE_KEYS if spec.section == "particles" else HIT_KEYS
    types = {col: _TYPES.get(kinds[key][1], pa.float64()) for col, key in wanted.items()}
    try:
        if path.suffix == ".csv":
            reader = pcsv.open_csv(path)
            names = reader.schema.names
        elif path.suffix in (".parquet", ".pq"):
            pf = pq.ParquetFile(path)
            names = pf.schema_arrow.names
        else:
            raise _bad(str(path), f"unknown file type {path.suffix!r}", "use .csv or .parquet")
        for col, key in wanted.items():
            if col not in names:
                raise _bad(f"{mapping}: {spec.section}.columns.{key}", f"column {col!r} not in "
                           f"{path} (columns: {', '.join(names)})", "fix the mapping")
        if path.suffix == ".csv":
            reader = pcsv.open_csv(path, convert_options=pcsv.ConvertOptions(
                column_types=types, include_columns=list(wanted)))
            yield from reader
        else:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=list(wanted)):
                yield pa.RecordBatch.from_arrays(
                    [batch.column(c).cast(types[c]) for c in wanted], names=list(wanted))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        problem = " ".join(str(exc).split())
        problem = problem if len(problem) <= ECHO_CHARS else problem[:ECHO_CHARS] + "…"
        raise _bad(str(path), f"cannot be read as {path.suffix[1:]} ({problem})",
                   "check that the file is complete and its columns hold numbers") from None


def _blocks(spec: TableSpec, mapping: Path,
            progress: Callable[[int], None] | None) -> Iterator[dict[str, np.ndarray]]:
    """Converted columns (canonical units, NaN for an empty float cell) and row numbers."""
    row, path = 0, spec.path
    for batch in _batches(spec, mapping):
        block: dict[str, np.ndarray] = {"_row": np.arange(row, row + batch.num_rows)}
        for key, col in spec.columns.items():
            arr = batch.column(col).fill_null(-1) if key == "particle" else batch.column(col)
            floating = pa.types.is_floating(arr.type)
            bad = np.asarray(arr.is_null()) if key in _NOT_NULL or not floating else \
                np.zeros(len(arr), bool)
            values = arr.to_numpy(zero_copy_only=False)
            if floating:
                bad |= ~np.isfinite(values) & np.asarray(arr.is_valid())
            elif key == "subsystem" and not bad.any():
                bad = ~np.isin(values, vocabulary.names("subsystems"))
            if bad.any():
                raise _bad(f"{_location(path, row + int(np.flatnonzero(bad)[0]))} column {col}",
                           "unknown subsystem" if key == "subsystem" else
                           "missing, NaN or infinite value",
                           "use a vocabulary subsystem" if key == "subsystem" else
                           "fill the value (NaN/inf are not allowed; empty means not measured)")
            block[key] = values * spec.scale[key] if floating else values
            if key in ("x", "y", "z"):
                _check_extent(spec, mapping, key, block[key], row)
        row += batch.num_rows
        if progress and spec.section == "hits":
            progress(batch.num_rows)
        yield block


def _check_extent(spec: TableSpec, mapping: Path, key: str, cm: np.ndarray, row: int) -> None:
    """Refuse a coordinate beyond ``spec.max_extent`` (cm): a unit slip, for any geometry."""
    with np.errstate(invalid="ignore"):
        far = np.abs(cm) > spec.max_extent
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise _bad(f"{_location(spec.path, row + i)} column {spec.columns[key]}",
                   f"|{key}| = {abs(cm[i]):.6g} cm is beyond the maximum extent of "
                   f"{spec.max_extent:g} cm (a unit slip?)",
                   f"check hits.units.{key} in {mapping}, or set hits.max_extent_cm there "
                   "if the apparatus is that large")


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _events(spec: TableSpec, mapping: Path,
            progress: Callable[[int], None] | None) -> Iterator[dict[str, np.ndarray]]:
    """Rows of one event at a time, by ascending event id."""
    path = spec.path
    blocks = _blocks(spec, mapping, progress)
    if not spec.sorted and (whole := list(blocks)):
        merged = _concat(whole)
        order = np.argsort(merged["event"], kind="stable")
        blocks = iter([{k: v[order] for k, v in merged.items()}])
    pending: list[dict[str, np.ndarray]] = []
    for block in blocks:
        ids = block["event"]
        last = pending[-1]["event"][-1] if pending else ids[0]
        down = np.flatnonzero(np.diff(np.concatenate([[last], ids])) < 0)
        if down.size:
            raise _bad(f"{_location(path, int(block['_row'][down[0]]))}", "event ids not in "
                       "ascending order", f"sort the file by event id, or set "
                       f"{spec.section}.sorted: false in {mapping} (loads the whole file)")
        cuts = [0, *(np.flatnonzero(np.diff(ids)) + 1), len(ids)]
        for lo, hi in itertools.pairwise(cuts):
            if pending and pending[-1]["event"][-1] != ids[lo]:
                yield _concat(pending)
                pending = []
            pending.append({k: v[lo:hi] for k, v in block.items()})
    if pending:
        yield _concat(pending)


def _nullable(values: np.ndarray) -> Any:
    """Floats with empty cells (NaN here) as a list with None, else the array."""
    nan = np.isnan(values)
    return [None if m else v for v, m in zip(values.tolist(), nan, strict=True)] \
        if nan.any() else values


def _event(m: Mapping, hits: dict[str, np.ndarray] | None,
           parts: dict[str, np.ndarray] | None) -> dict[str, Any]:
    head = hits if hits is not None else parts
    assert head is not None, "an event has hits, particles or both"
    event: dict[str, Any] = {**m.event, "event": int(head["event"][0])}
    if parts is not None:
        for key, (column, _) in PARTICLE_KEYS.items():
            if column.startswith("particle_") and key in parts:
                event[column] = parts[key] if key == "pdg" else _nullable(parts[key])
    if hits is None:
        return event
    for key, (column, _) in HIT_KEYS.items():
        if column.startswith("hit_") and key in hits and key != "particle":
            event[column] = hits[key] if key in ("subsystem", "layer") else _nullable(hits[key])
    if m.hits.subsystem is not None:
        event["hit_subsystem"] = np.full(len(hits["x"]), m.hits.subsystem)
    if "particle" in hits and m.particles is None:
        event["hit_track_id"] = np.maximum(hits["particle"], -1)
    elif "particle" in hits:
        index = _join(m, hits, parts["key"] if parts is not None else np.zeros(0, np.int64),
                      event["event"])
        event["hit_particle"] = event["hit_track_id"] = index
        if parts is not None and {"px", "py"} <= parts.keys():
            event["hit_pid_class"], event["hit_noise"] = hit_labels(
                index, parts["pdg"], parts["px"], parts["py"])
    return event


def _join(m: Mapping, hits: dict[str, np.ndarray], keys: np.ndarray, number: int
          ) -> np.ndarray:
    """Index of each hit's particle in the event's particle rows (-1: noise)."""
    order = np.argsort(keys, kind="stable")
    ordered, wanted = keys[order], hits["particle"]
    if (np.diff(ordered) == 0).any():
        raise _bad(f"{m.particles.path if m.particles else m.path} event {number}",
                   "a particle key appears twice", "give each particle one row per event")
    pos = np.searchsorted(ordered, wanted)
    found = pos < len(ordered)
    found[found] = ordered[pos[found]] == wanted[found]
    lost = ~found & (wanted >= 0)
    if lost.any():
        i = int(np.flatnonzero(lost)[0])
        raise _bad(_location(m.hits.path, int(hits["_row"][i])), f"particle key "
                   f"{wanted[i]} not in the particle table of event {number}",
                   "use a negative key (or none) for noise hits")
    index = np.full(len(wanted), -1, np.int64)
    index[found] = order[pos[found]]
    return index


def read_hit_table(mapping: Path | str, *, hits: Path | str | None = None,
                   particles: Path | str | None = None,
                   progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Stream the events of a hit table described by a mapping file.

    ``hits``/``particles`` override the files named in the mapping; ``progress(n_rows)``
    follows each block of hit rows. Events come in ascending event id; events with
    particles but no hits are kept (hit lists null).
    """
    m = load_mapping(mapping)
    m = replace(m, hits=_with_file(m.hits, hits, m.path), particles=None if m.particles is None
                else _with_file(m.particles, particles, m.path))
    hit_iter = _events(m.hits, m.path, progress)
    part_iter = _events(m.particles, m.path, None) if m.particles else iter(())
    hit, part = next(hit_iter, None), next(part_iter, None)
    while hit is not None or part is not None:
        take_hit = hit is not None and (part is None or hit["event"][0] <= part["event"][0])
        take_part = part is not None and (hit is None or part["event"][0] <= hit["event"][0])
        yield _event(m, hit if take_hit else None, part if take_part else None)
        hit = next(hit_iter, None) if take_hit else hit
        part = next(part_iter, None) if take_part else part


def _with_file(spec: TableSpec, override: Path | str | None, mapping: Path) -> TableSpec:
    file = Path(override) if override is not None else spec.file
    if file is None:
        raise _bad(f"{mapping}: {spec.section}.file", "no file given",
                   f"set {spec.section}.file, or pass {spec.section}= to read_hit_table")
    return replace(spec, file=file)
