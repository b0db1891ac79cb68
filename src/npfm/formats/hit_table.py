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

Also: CSV may be compressed (``.csv.gz``, ``.bz2``, ``.zst``, ``.lz4``); ``hits.columns``
may map ``module``, ``cell_row``, ``cell_col`` and ``adc`` (integers, to hit_module,
hit_cell_row, hit_cell_col, hit_adc); ``event_from_name: 'event(\\d+)-hits'`` takes the
event id from the file name (a regular expression whose first group is the id) instead
of an event column, and ``file`` may then be a glob pattern (``event*-hits.csv.gz``: one
mapping for a directory of per-event files); ``hits.noise_key: 0`` marks hits of that
particle key as noise; ``hits.max_extent_cm`` (default 2,500) bounds |x|, |y|, |z| to
catch unit slips; ``extra_columns: {volume_id: volume_id, module_id: module_id}`` (in
``hits`` or ``particles``; a value may also be ``{column: ..., description: ...}``) keeps
further integer columns without loss as extension columns ``hit_ext_<name>`` /
``particle_ext_<name>`` (docs/event-model.md); a missing, empty or non-integer cell is
refused naming the file, line and column.

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

import glob
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.events.labels import hit_labels
from npfm.events.schema import EXTENSIONS_KEY
from npfm.formats.hit_mapping import (
    _NOT_NULL,
    _TYPES,
    ECHO_CHARS,
    HIT_KEYS,
    MAX_EXTENT_CM,
    PARTICLE_KEYS,
    Mapping,
    TableSpec,
    _bad,
    load_mapping,
)

__all__ = ["HIT_KEYS", "MAX_EXTENT_CM", "PARTICLE_KEYS", "load_mapping", "read_hit_table"]
#: Rows per Parquet batch (CSV streams in pyarrow's default blocks of 1 MiB).
BATCH_ROWS = 65_536



#: CSV files, plain or compressed (pyarrow decompresses by the suffix).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.lz4")


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith(CSV_SUFFIXES)


def _location(path: Path, row: int) -> str:
    return f"{path} line {row + 2}" if _is_csv(path) else f"{path} row {row}"


def _batches(spec: TableSpec, mapping: Path) -> Iterator[pa.RecordBatch]:
    """Record batches of the mapped columns, each cast to its type."""
    path = spec.path
    if not path.is_file():
        raise _bad(str(path), "file not found", f"check {spec.section}.file in {mapping}")
    kinds = PARTICLE_KEYS if spec.section == "particles" else HIT_KEYS
    keys = {f"columns.{k}": c for k, c in spec.columns.items()} | {
        f"extra_columns.{n}": c for n, (c, _) in spec.extra.items()}
    types = {col: _TYPES.get(kinds[key][1], pa.float64()) for key, col in spec.columns.items()}
    extra = {c for c, _ in spec.extra.values()} - set(types)
    types.update(dict.fromkeys(extra, pa.int64()))
    wanted = list(types)
    try:
        if _is_csv(path):
            reader = pcsv.open_csv(path)
            names = reader.schema.names
        elif path.suffix in (".parquet", ".pq"):
            pf = pq.ParquetFile(path)
            names = pf.schema_arrow.names
        else:
            raise _bad(str(path), f"unknown file type {path.suffix!r}",
                       f"use {', '.join(CSV_SUFFIXES)} or .parquet")
        for key, col in keys.items():
            if col not in names:
                raise _bad(f"{mapping}: {spec.section}.{key}", f"column {col!r} not in "
                           f"{path} (columns: {', '.join(names)})", "fix the mapping")
        if _is_csv(path):
            reader = pcsv.open_csv(path, convert_options=pcsv.ConvertOptions(
                column_types=types, include_columns=wanted))
            yield from reader
        else:
            for col in extra:
                if not pa.types.is_integer(pf.schema_arrow.field(col).type):
                    raise _not_integer(spec, col, f"type {pf.schema_arrow.field(col).type}")
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
                yield pa.RecordBatch.from_arrays(
                    [batch.column(c).cast(types[c]) for c in wanted], names=wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        problem = " ".join(str(exc).split())
        found = re.search(r"CSV column #(\d+): CSV conversion error to int64", problem)
        if found and (col := names[int(found[1])]) in extra:
            raise _not_integer(spec, col, problem.split(": ")[-1]) from None
        problem = problem if len(problem) <= ECHO_CHARS else problem[:ECHO_CHARS] + "…"
        raise _bad(str(path), f"cannot be read as {'csv' if _is_csv(path) else 'parquet'} "
                   f"({problem})",
                   "check that the file is complete and its columns hold numbers") from None


def _not_integer(spec: TableSpec, col: str, problem: str) -> NpfmError:
    return _bad(f"{spec.path} column {col}", f"not an integer column ({problem[:ECHO_CHARS]})",
                f"map only integer columns under {spec.section}.extra_columns")


def _blocks(spec: TableSpec, mapping: Path,
            progress: Callable[[int], None] | None) -> Iterator[dict[str, np.ndarray]]:
    """Converted columns (canonical units, NaN for an empty float cell) and row numbers."""
    row, path = 0, spec.path
    number = _event_number(spec, mapping)
    for batch in _batches(spec, mapping):
        block: dict[str, np.ndarray] = {"_row": np.arange(row, row + batch.num_rows)}
        if number is not None:
            block["event"] = np.full(batch.num_rows, number, np.int64)
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
            if key == "particle" and spec.noise_key is not None:
                block[key] = np.where(values == spec.noise_key, -1, values)
            if key in ("x", "y", "z"):
                _check_extent(spec, mapping, key, block[key], row)
        for name, (col, _) in spec.extra.items():
            arr = batch.column(col)
            if not pa.types.is_integer(arr.type):  # also mapped as a float quantity
                raise _not_integer(spec, col, f"read as {arr.type}")
            if arr.null_count:
                raise _bad(f"{_location(path, row + int(np.flatnonzero(arr.is_null())[0]))} "
                           f"column {col}", "missing value in an extra column",
                           "fill it, or drop the column from extra_columns")
            block[f"ext:{name}"] = arr.to_numpy()
        row += batch.num_rows
        if progress and spec.section == "hits":
            progress(batch.num_rows)
        yield block


def _event_number(spec: TableSpec, mapping: Path) -> int | None:
    """The event id in the file name, by ``event_from_name`` (None without one)."""
    if spec.event_pattern is None:
        return None
    found = spec.event_pattern.search(spec.path.name)
    if found is None or not found[1].lstrip("-").isdigit():
        raise _bad(str(spec.path), f"no event id in the file name by pattern "
                   f"{spec.event_pattern.pattern!r}", f"fix {spec.section}.event_from_name "
                   f"in {mapping}")
    return int(found[1])


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
        _extensions(event, m.particles, parts)
    if hits is None:
        return event
    _extensions(event, m.hits, hits)
    for key, (column, _) in HIT_KEYS.items():
        if column.startswith("hit_") and key in hits and key != "particle":
            event[column] = _nullable(hits[key]) if HIT_KEYS[key][1] not in _TYPES else \
                hits[key]
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


def _extensions(event: dict[str, Any], spec: TableSpec | None,
                rows: dict[str, np.ndarray]) -> None:
    """The spec's extra columns as extension columns of ``event``, with descriptions."""
    if spec is None or not spec.extra:
        return
    docs = event.setdefault(EXTENSIONS_KEY, {})
    for name, (_, doc) in spec.extra.items():
        event[f"{spec.group}_ext_{name}"] = rows[f"ext:{name}"]
        docs[f"{spec.group}_ext_{name}"] = doc


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
    hit_iter = _files_events(m.hits, m.path, progress)
    part_iter = _files_events(m.particles, m.path, None) if m.particles else iter(())
    hit, part = next(hit_iter, None), next(part_iter, None)
    while hit is not None or part is not None:
        take_hit = hit is not None and (part is None or hit["event"][0] <= part["event"][0])
        take_part = part is not None and (hit is None or part["event"][0] <= hit["event"][0])
        yield _event(m, hit if take_hit else None, part if take_part else None)
        hit = next(hit_iter, None) if take_hit else hit
        part = next(part_iter, None) if take_part else part


def _files_events(spec: TableSpec, mapping: Path,
                  progress: Callable[[int], None] | None) -> Iterator[dict[str, np.ndarray]]:
    """Events of the spec's file, or of every file its glob pattern (``*``, ``?``, ``[``)
    matches, in ascending event id across files (by ``event_from_name`` where given)."""
    if not glob.has_magic(str(spec.path)):
        yield from _events(spec, mapping, progress)
        return
    specs = [replace(spec, file=Path(f)) for f in sorted(glob.glob(str(spec.path)))]
    if not specs:
        raise _bad(f"{mapping}: {spec.section}.file", f"{str(spec.path)!r} matches no file",
                   "file patterns are relative to the mapping file")
    if spec.event_pattern is not None:
        specs.sort(key=lambda s: _event_number(s, mapping) or 0)
    last = None
    for one in specs:
        for event in _events(one, mapping, progress):
            number = int(event["event"][0])
            if last is not None and number <= last:
                raise _bad(f"{one.path} event {number}", f"event id not above {last} of "
                           "the files before", "give each file its own events, in "
                           "ascending order of the file names (or use event_from_name)")
            last = number
            yield event


def _with_file(spec: TableSpec, override: Path | str | None, mapping: Path) -> TableSpec:
    file = Path(override) if override is not None else spec.file
    if file is None:
        raise _bad(f"{mapping}: {spec.section}.file", "no file given",
                   f"set {spec.section}.file, or pass {spec.section}= to read_hit_table")
    return replace(spec, file=file)
