"""Curation recipes (YAML): sources, target splits and sizes, citation fields.

    name: phase1
    title: npfm Phase-I corpus
    splits: {train: 0.8, validation: 0.1, test: 0.1}
    chunk_events: 500             # events per source chunk (one output shard each)
    sources:
      - {name: sphenix-pp200, simulate: {detector: sphenix, physics: pp200,
         events: 2000, seed: 11, options: {}, sim_options: {},
         chunk_events: null}}       # null: the recipe's chunk_events
      - {name: aleph-archive, import: {format: aleph_text,
         paths: [../../shared/data/aleph/*.aleph], max_events: null}}

Paths are relative to the recipe file. ``scale`` multiplies every simulated event count
and import limit (for small test builds). The recipe is checked against a pydantic
schema first: any wrong key or value is one ``NpfmError`` naming the key and the fix.
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from npfm.detectors.production import SimulationJob
from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.formats.registry import IMPORTERS, importer_options

#: The most characters of a bad value that an error message repeats.
ECHO_CHARS = 80


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


def _key(description: str) -> Any:
    return Field(description=description)


_Count = Annotated[int, Field(ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class _Simulate(_Strict):
    detector: str = _key("a detector name, e.g. sphenix (npfm simulate --help)")
    physics: str = _key("a physics configuration, e.g. pp200 (npfm simulate --help)")
    events: _Count = _key("a positive whole number of events, e.g. 1000")
    seed: int = Field(1, description="a whole number")
    run: int = Field(1, description="a whole number")
    options: dict[str, Any] = Field({}, description="a mapping of physics options")
    sim_options: dict[str, Any] = Field({}, description="a mapping of simulation options")
    chunk_events: _Count | None = Field(None, description="events per chunk of this source "
                                        "(default: the recipe's), e.g. 20 for heavy ions")


class _Import(_Strict):
    format: str = _key(f"one of {', '.join(sorted(IMPORTERS))}")
    paths: Annotated[list[str], Field(min_length=1)] = _key(
        "a list of file patterns relative to the recipe file, e.g. [data/*.aleph]")
    max_events: _Count | None = Field(None, description="a positive whole number or null")
    options: dict[str, Any] = Field({}, description="a mapping of the importer's options")

    @field_validator("format")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in IMPORTERS:
            raise ValueError(f"unknown format {_clip(value)}")
        return value


class _Source(_Strict):
    name: str = _key("a name for the source, e.g. sphenix-pp200")
    simulate: _Simulate | None = Field(None, description="detector, physics and events")
    import_: _Import | None = Field(None, alias="import", description="format and paths")

    @model_validator(mode="after")
    def _one(self) -> _Source:
        if (self.simulate is None) == (self.import_ is None):
            raise ValueError("needs exactly one of simulate / import")
        return self


class _Recipe(_Strict):
    name: str = _key("a corpus name, e.g. phase1")
    title: str = _key("a title for the corpus")
    description: str | None = Field(None, description="text")
    creators: list[str] | None = Field(None, description="a list of names")
    publisher: str | None = Field(None, description="text")
    license: str | None = Field(None, description="a licence URL")
    data_biases: str | None = Field(None, description="text")
    data_limitations: str | None = Field(None, description="text")
    splits: dict[str, float] = _key(
        f"non-negative fractions of {', '.join(vocabulary.names('splits'))} summing to 1, "
        "e.g. {train: 0.8, validation: 0.1, test: 0.1}")
    chunk_events: _Count = Field(500, description="a positive whole number of events")
    sources: Annotated[list[_Source], Field(min_length=1)] = _key(
        "a non-empty list of sources, each {name, simulate: {...}} or {name, import: {...}}")

    @field_validator("splits")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) - set(vocabulary.names("splits")) or not value or min(
                value.values()) < 0 or not math.isclose(sum(value.values()), 1.0,
                                                        abs_tol=1e-9):
            raise ValueError(f"{value} must be non-negative fractions of "
                             f"{vocabulary.names('splits')} summing to 1")
        return value


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out


#: Keys whose value is itself a checked mapping (or a list of them).
_NESTED: dict[str, type[_Strict]] = {"sources": _Source, "simulate": _Simulate,
                                     "import": _Import}


def _schema_error(path: Path, err: ValidationError) -> NpfmError:
    """The first schema error as one line: the key, what is wrong, what to give."""
    first = err.errors(include_url=False)[0]
    loc, kind = tuple(first["loc"]), first["type"]
    model: type[_Strict] = _Recipe
    fix = "see docs/curation.md"
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get("import_" if part == "import" else part)
        if info is None:  # an unknown key: list those of its mapping
            known = sorted(f.alias or n for n, f in model.model_fields.items())
            fix = f"remove it; known keys: {', '.join(known)}"
            break
        fix = f"give {info.description}"
        model = _NESTED.get(part, model)
    message = {"extra_forbidden": "unknown key", "missing": "required key missing"}.get(
        kind, first["msg"].removeprefix("Value error, "))
    if kind in ("model_type", "dict_type"):
        message = "not a mapping"
    if loc and isinstance(loc[-1], int):
        fix = "give {name: ..., simulate: {...}} or {name: ..., import: {...}}"
    if kind not in ("extra_forbidden", "missing", "value_error"):
        message += f" (got {_clip(first.get('input'))})"
    return NpfmError(f"{path} {_where(loc) or 'recipe'}", message, fix)


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NpfmError(str(path), "recipe not found", "give the path of a recipe YAML "
                        "file, e.g. recipes/phase1.yaml") from None
    except IsADirectoryError:
        raise NpfmError(str(path), "a directory, not a recipe file", "give the path of a "
                        "recipe YAML file, e.g. recipes/phase1.yaml") from None
    except UnicodeDecodeError:
        raise NpfmError(str(path), "not a text file", "give a recipe YAML file (UTF-8 "
                        "text)") from None
    except OSError as exc:
        raise NpfmError(str(path), f"cannot be read ({exc.strerror})", "check the path "
                        "and its permissions") from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise NpfmError(str(path), f"not valid YAML ({_clip(problem)[1:-1]})",
                        "fix the syntax") from None


def _import(path: Path, key: str, spec: _Import, scale: float) -> Source:
    allowed = importer_options(spec.format)
    unknown = sorted(set(spec.options) - allowed)
    if unknown:
        raise NpfmError(f"{path} {key}.import.options.{_clip(unknown[0])[1:-1]}",
                        f"not an option of format {spec.format}",
                        f"use {', '.join(sorted(allowed)) or 'no options'}")
    files: list[Path] = []
    for pattern in spec.paths:
        matches = sorted(glob.glob(str(path.parent / pattern)))
        if not matches:
            raise NpfmError(f"{path} {key}.import.paths", f"{_clip(pattern)} matches no "
                            "file", "paths are relative to the recipe file")
        files += [Path(m) for m in matches]
    limit = spec.max_events
    return Source("", format=spec.format, paths=tuple(files), options=dict(spec.options),
                  max_events=None if limit is None else max(1, math.ceil(limit * scale)))


def _source(path: Path, i: int, raw: _Source, chunk: int, scale: float) -> Source:
    key = f"sources[{i}]"
    if raw.import_ is not None:
        return replace(_import(path, key, raw.import_, scale), name=raw.name)
    spec = raw.simulate
    assert spec is not None, "the schema asks for exactly one of simulate / import"
    try:
        job = SimulationJob(spec.detector, spec.physics,
                            max(1, math.ceil(spec.events * scale)), seed=spec.seed,
                            shard_events=spec.chunk_events or chunk, run=spec.run,
                            physics_options=dict(spec.options),
                            sim_options=dict(spec.sim_options))
    except NpfmError as err:
        raise NpfmError(f"{path} {key}.simulate ({err.where})", err.problem, err.fix) from None
    return Source(raw.name, job=job)


def load_recipe(path: Path | str, scale: float = 1.0) -> Recipe:
    """Read and validate a recipe; errors name the file and the key."""
    path = Path(path)
    raw = _read(path)
    if not isinstance(raw, dict):
        raise NpfmError(str(path), "not a mapping of recipe keys", "see docs/curation.md")
    try:
        checked = _Recipe.model_validate(raw)
    except ValidationError as err:
        raise _schema_error(path, err) from None
    if not (scale > 0 and math.isfinite(scale)):
        raise NpfmError(f"--scale {scale}", "must be a positive number", "e.g. --scale 0.01")
    sources = tuple(_source(path, i, s, checked.chunk_events, scale)
                    for i, s in enumerate(checked.sources))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise NpfmError(f"{path} sources", "duplicate source names", "give each source its "
                        "own name")
    return Recipe(checked.name, checked.title, checked.splits, checked.chunk_events, sources,
                  path, raw)
