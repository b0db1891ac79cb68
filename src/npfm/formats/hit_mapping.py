"""The YAML column mapping of a hit table (see ``npfm.formats.hit_table``): read and
checked here, so that every error names the mapping file and the key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.events.schema import BY_NAME, EXTENSION_PATTERN
from npfm.events.units import factor

#: key -> (event-model column, unit dimension or the Arrow type it is read as).
HIT_KEYS: dict[str, tuple[str, str]] = {
    "event": ("event", "int64"), "x": ("hit_x", "length"), "y": ("hit_y", "length"),
    "z": ("hit_z", "length"), "energy": ("hit_edep", "energy"), "time": ("hit_t", "time"),
    "particle": ("hit_particle", "int64"), "subsystem": ("hit_subsystem", "string"),
    "layer": ("hit_layer", "int64"), "module": ("hit_module", "int64"),
    "cell_row": ("hit_cell_row", "int64"), "cell_col": ("hit_cell_col", "int64"),
    "adc": ("hit_adc", "int64"),
}
PARTICLE_KEYS: dict[str, tuple[str, str]] = {
    "event": ("event", "int64"), "key": ("", "int64"), "pdg": ("particle_pdg", "int64"),
    "px": ("particle_px", "energy"), "py": ("particle_py", "energy"),
    "pz": ("particle_pz", "energy"), "vx": ("particle_vx", "length"),
    "vy": ("particle_vy", "length"), "vz": ("particle_vz", "length"),
}
_REQUIRED = {"hits": ("event", "x", "y", "z"), "particles": ("event", "key", "pdg")}
_SECTION_KEYS = {"hits": {"file", "sorted", "columns", "units", "subsystem", "max_extent_cm",
                          "event_from_name", "noise_key", "extra_columns"},
                 "particles": {"file", "sorted", "columns", "units", "event_from_name",
                               "extra_columns"}}
_TYPES = {"int64": pa.int64(), "string": pa.string()}
_NOT_NULL = {"event", "x", "y", "z", "key", "pdg"}
#: Default largest |x|, |y|, |z| of a hit, cm: the half-length of the largest collider
#: detector (ATLAS, 46 m long: ATLAS Collaboration, JINST 3 (2008) S08003) with margin. A
#: coordinate beyond it is a unit slip (e.g. mm declared as cm); ``hits.max_extent_cm``
#: sets a tighter (or, for a larger apparatus, looser) bound.
MAX_EXTENT_CM = 2500.0
#: The most characters of a reader's message that an error repeats.
ECHO_CHARS = 200


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
    event_pattern: re.Pattern[str] | None = None  # the event id from the file name
    noise_key: int | None = None  # a particle key that marks noise hits
    #: Extension columns: name -> (file column, description); stored as
    #: ``hit_ext_<name>`` / ``particle_ext_<name>``.
    extra: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """``hit`` or ``particle``: the event-model group of the rows."""
        return "hit" if self.section == "hits" else "particle"

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
    unknown = sorted(str(k)[:ECHO_CHARS] for k in set(raw) - set(allowed))
    if unknown:
        raise _bad(f"{where}{'' if where.endswith(' ') else '.'}{unknown[0]}", "unknown key",
                   f"use {', '.join(sorted(allowed))}")
    return raw


def _spec(raw: Any, section: str, keys: dict[str, tuple[str, str]], path: Path) -> TableSpec:
    where = f"{path}: {section}"
    raw = _dict(raw, where, _SECTION_KEYS[section])
    columns = _dict(raw.get("columns"), f"{where}.columns", keys)
    units = _dict(raw.get("units", {}), f"{where}.units", keys)
    pattern = _pattern(raw.get("event_from_name"), f"{where}.event_from_name")
    if pattern is not None and "event" in columns:
        raise _bad(f"{where}.event_from_name", "given with an event column",
                   f"drop {section}.columns.event or event_from_name")
    noise = raw.get("noise_key")
    if noise is not None and (isinstance(noise, bool) or not isinstance(noise, int)):
        raise _bad(f"{where}.noise_key", f"{str(noise)[:ECHO_CHARS]!r} is not a whole number",
                   "give the particle key of noise hits, e.g. 0")
    for key in _REQUIRED[section]:
        if key not in columns and not (key == "event" and pattern is not None):
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
        raise _bad(f"{where}.subsystem", f"unknown subsystem {str(subsystem)[:ECHO_CHARS]!r}",
                   f"use one of {', '.join(vocabulary.names('subsystems'))}")
    extent = raw.get("max_extent_cm", MAX_EXTENT_CM)
    if isinstance(extent, bool) or not isinstance(extent, int | float) or not extent > 0:
        raise _bad(f"{where}.max_extent_cm", f"{str(extent)[:ECHO_CHARS]!r} is not a positive "
                   "number", f"give the largest |x|, |y|, |z| in cm (default {MAX_EXTENT_CM})")
    file = raw.get("file")
    if file is not None and not isinstance(file, str):
        raise _bad(f"{where}.file", f"{str(file)[:ECHO_CHARS]!r} is not a file name",
                   "give the file's path relative to the mapping file")
    return TableSpec(section, path.parent / file if file else None, bool(raw.get("sorted", True)),
                     {k: str(v) for k, v in columns.items()}, scale, subsystem, float(extent),
                     pattern, noise, _extra(raw.get("extra_columns"), section, where))


def _extra(raw: Any, section: str, where: str) -> dict[str, tuple[str, str]]:
    """``extra_columns``: name -> file column, or name -> {column, description}."""
    if raw is None:
        return {}
    group = "hit" if section == "hits" else "particle"
    if not isinstance(raw, dict):
        raise _bad(f"{where}.extra_columns", "not a mapping",
                   "write name: file column pairs, e.g. {volume_id: volume_id}")
    out = {}
    for name, value in raw.items():
        key = f"{where}.extra_columns.{str(name)[:ECHO_CHARS]}"
        if EXTENSION_PATTERN.fullmatch(f"{group}_ext_{name}") is None:
            raise _bad(key, "not a valid extension name", "use lower-case letters, digits "
                       "and _, starting with a letter, at most 32 characters")
        spec = value if isinstance(value, dict) else {"column": value}
        spec = _dict(spec, key, {"column", "description"})
        column, doc = spec.get("column"), spec.get("description")
        if not isinstance(column, str) or not column:
            raise _bad(key, f"{str(column)[:ECHO_CHARS]!r} is not a column name",
                       "give the file column, e.g. volume_id: volume_id")
        if doc is not None and not (isinstance(doc, str) and doc.strip()):
            raise _bad(f"{key}.description", "not a text", "describe what the number means")
        out[str(name)] = (column, doc or f"integer column {column!r} of the {section} table, "
                          "as given")
    return out


def _pattern(raw: Any, where: str) -> re.Pattern[str] | None:
    """A regular expression whose first group is the event id in a file name."""
    if raw is None:
        return None
    try:
        pattern = re.compile(str(raw))
    except re.error as exc:
        raise _bad(where, f"not a regular expression ({exc})", "e.g. 'event(\\d+)-hits'"
                   ) from None
    if pattern.groups < 1:
        raise _bad(where, "has no group for the event id", "e.g. 'event(\\d+)-hits'")
    return pattern


def load_mapping(path: Path | str) -> Mapping:
    """Read and validate a mapping file; errors name the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(str(path), "mapping file not found", "check the path") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problem = " ".join(str(exc).split())[:ECHO_CHARS]
        raise _bad(str(path), f"not valid YAML ({problem})", "fix the syntax") from None
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
