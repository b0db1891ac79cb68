"""Curation recipes (YAML): sources, target splits and sizes, citation fields.

    name: phase1
    title: npfm Phase-I corpus
    splits: {train: 0.8, validation: 0.1, test: 0.1}
    chunk_events: 500             # events per source chunk (one output shard each)
    sources:
      - {name: sphenix-pp200, simulate: {detector: sphenix, physics: pp200,
         events: 2000, seed: 11, options: {}, sim_options: {}}}
      - {name: aleph-archive, import: {format: aleph_text,
         paths: [../../shared/data/aleph/*.aleph], max_events: null}}

Paths are relative to the recipe file. ``scale`` multiplies every simulated event count
and import limit (for small test builds).
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from npfm.detectors.production import SimulationJob
from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.formats.registry import IMPORTERS

_TOP = {"name", "title", "description", "creators", "publisher", "license", "splits",
        "chunk_events", "sources", "data_biases", "data_limitations"}


@dataclass(frozen=True)
class Source:
    """One input of a recipe: a simulation job, or files of an importable format."""

    name: str
    job: SimulationJob | None = None
    format: str | None = None
    paths: tuple[Path, ...] = ()
    max_events: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    splits: dict[str, float]
    chunk_events: int
    sources: tuple[Source, ...]
    path: Path
    raw: dict[str, Any]

    def text(self, key: str, default: str = "") -> str:
        return str(self.raw.get(key) or default)


def _fail(path: Path, key: str, problem: str, fix: str) -> NpfmError:
    return NpfmError(f"{path} {key}", problem, fix)


def _source(path: Path, i: int, raw: Any, chunk: int, scale: float) -> Source:
    key = f"sources[{i}]"
    if not isinstance(raw, dict) or "name" not in raw or len(set(raw) & {"simulate",
                                                                         "import"}) != 1:
        raise _fail(path, key, "needs a name and exactly one of simulate / import",
                    "see docs/curation.md")
    unknown = set(raw) - {"name", "simulate", "import"}
    if unknown:
        raise _fail(path, key, f"unknown key(s) {sorted(unknown)}", "use name, simulate, import")
    name = str(raw["name"])
    if "simulate" in raw:
        spec = dict(raw["simulate"])
        allowed = {"detector", "physics", "events", "seed", "run", "options", "sim_options"}
        if set(spec) - allowed or not {"detector", "physics", "events"} <= set(spec):
            raise _fail(path, f"{key}.simulate", f"keys {sorted(spec)}",
                        f"give detector, physics, events (optional {sorted(allowed)})")
        events = max(1, math.ceil(int(spec["events"]) * scale))
        job = SimulationJob(spec["detector"], spec["physics"], events,
                            seed=int(spec.get("seed", 1)), shard_events=chunk,
                            run=int(spec.get("run", 1)),
                            physics_options=dict(spec.get("options") or {}),
                            sim_options=dict(spec.get("sim_options") or {}))
        return Source(name, job=job)
    spec = dict(raw["import"])
    allowed = {"format", "paths", "max_events", "options"}
    if set(spec) - allowed or not {"format", "paths"} <= set(spec):
        raise _fail(path, f"{key}.import", f"keys {sorted(spec)}",
                    f"give format and paths (optional {sorted(allowed)})")
    if spec["format"] not in IMPORTERS:
        raise _fail(path, f"{key}.import.format", f"unknown format {spec['format']!r}",
                    f"use one of {', '.join(sorted(IMPORTERS))}")
    files: list[Path] = []
    for pattern in spec["paths"]:
        matches = sorted(glob.glob(str(path.parent / pattern)))
        if not matches:
            raise _fail(path, f"{key}.import.paths", f"{pattern!r} matches no file",
                        "paths are relative to the recipe file")
        files += [Path(m) for m in matches]
    limit = spec.get("max_events")
    max_events = None if limit is None else max(1, math.ceil(int(limit) * scale))
    return Source(name, format=spec["format"], paths=tuple(files), max_events=max_events,
                  options=dict(spec.get("options") or {}))


def load_recipe(path: Path | str, scale: float = 1.0) -> Recipe:
    """Read and validate a recipe; errors name the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NpfmError(str(path), "recipe not found", "give the path of a recipe YAML "
                        "file, e.g. recipes/phase1.yaml") from None
    except yaml.YAMLError as exc:
        raise NpfmError(str(path), f"not valid YAML ({exc})".replace("\n", " "),
                        "fix the syntax") from None
    if not isinstance(raw, dict):
        raise NpfmError(str(path), "not a mapping", "see docs/curation.md")
    unknown = set(raw) - _TOP
    if unknown:
        raise _fail(path, str(sorted(unknown)), "unknown key(s)", f"use {sorted(_TOP)}")
    for key in ("name", "title", "splits", "sources"):
        if key not in raw:
            raise _fail(path, key, "missing", "see docs/curation.md")
    splits = {str(k): float(v) for k, v in dict(raw["splits"]).items()}
    bad = set(splits) - set(vocabulary.names("splits"))
    if bad or not math.isclose(sum(splits.values()), 1.0, abs_tol=1e-9) or \
            min(splits.values()) < 0:
        raise _fail(path, "splits", f"{splits} must be non-negative fractions of "
                    f"{vocabulary.names('splits')} summing to 1", "fix the fractions")
    chunk = int(raw.get("chunk_events", 500))
    if chunk < 1 or scale <= 0:
        raise _fail(path, "chunk_events", "must be positive (and --scale too)", "fix it")
    sources = tuple(_source(path, i, s, chunk, scale) for i, s in enumerate(raw["sources"]))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise _fail(path, "sources", "duplicate source names", "give each source its own")
    return Recipe(str(raw["name"]), str(raw["title"]), splits, chunk, sources, path, raw)
