"""The corpus manifest's schema, checked once when a corpus is opened.

Every error names the manifest, the key (``shards[3].path``) and the fix. Shard paths must
be relative and stay inside the corpus directory (no ``..``, no absolute paths, no
symbolic links out of it), and each shard is listed once.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from npfm.events.errors import NpfmError
from npfm.events.schema import EXTENSION_PATTERN

_REBUILD = "rebuild the corpus; the manifest was edited or damaged"


class ShardEntry(BaseModel):
    """One shard as the manifest lists it (sizes in bytes, counts per shard)."""

    model_config = ConfigDict(extra="allow")
    path: StrictStr
    sha256: StrictStr = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: StrictInt = Field(ge=0)
    events: StrictInt = Field(ge=0)
    hits: StrictInt = Field(ge=0)
    particles: StrictInt = Field(ge=0)
    objects: StrictInt = Field(ge=0)


class ExtensionEntry(BaseModel):
    """A declared extension column (schema 3): its group, type and description."""

    group: StrictStr = Field(pattern=r"^(hit|particle)$")
    type: StrictStr = Field(pattern=r"^int64$")
    description: StrictStr = Field(min_length=1)


class Manifest(BaseModel):
    """The top level of ``manifest.json``; further keys (citation, files, ...) pass."""

    model_config = ConfigDict(extra="allow")
    format: StrictStr
    schema_version: StrictInt
    name: StrictStr
    events: StrictInt = Field(ge=0)
    hits: StrictInt = Field(ge=0)
    particles: StrictInt = Field(ge=0)
    objects: StrictInt = Field(ge=0)
    bytes: StrictInt = Field(ge=0)
    files: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    extensions: dict[StrictStr, ExtensionEntry] = Field(default_factory=dict)
    shards: list[ShardEntry]


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_manifest(raw: Any, where: str) -> Manifest:
    """Parse ``raw`` (the JSON of ``where``) or raise an NpfmError naming the first bad key."""
    if not isinstance(raw, dict):
        raise NpfmError(where, "not a JSON object", _REBUILD)
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise NpfmError(f"{where} key {_key(first['loc']) or '(top)'}",
                        first["msg"].lower(), _REBUILD) from None


def inside(root: Path, relative: str, where: str) -> Path:
    """``root / relative`` if it stays inside ``root`` (after resolving links)."""
    pure = PurePosixPath(relative)
    if not relative or pure.is_absolute() or ".." in pure.parts or "\\" in relative:
        raise NpfmError(where, f"path {relative[:80]!r} points outside the corpus",
                        "shard paths are relative to the corpus directory, e.g. "
                        "shards/part-00000.parquet")
    path = root / pure
    if not path.resolve().is_relative_to(root.resolve()):
        raise NpfmError(where, f"path {relative[:80]!r} resolves outside the corpus (a "
                        "symbolic link)", "replace the link by the shard file itself")
    return path


def check_extensions(manifest: Manifest, where: str) -> None:
    """Declared extension names well formed and in their declared group."""
    for name, entry in manifest.extensions.items():
        found = EXTENSION_PATTERN.fullmatch(name)
        if found is None or found[1] != entry.group:
            raise NpfmError(f"{where} key extensions.{name[:80]}", "not an extension column "
                            f"name of group {entry.group} ({EXTENSION_PATTERN.pattern})",
                            _REBUILD)


def check_totals(manifest: Manifest, where: str) -> None:
    """The manifest's totals equal the sums over its shard entries."""
    for key in ("events", "hits", "particles", "objects", "bytes"):
        total = sum(getattr(entry, key) for entry in manifest.shards)
        if total != getattr(manifest, key):
            raise NpfmError(f"{where} key {key}", f"{getattr(manifest, key)} but the shard "
                            f"entries add up to {total}", _REBUILD)


def check_shard_paths(root: Path, manifest: Manifest, where: str) -> None:
    """Every shard path inside ``root`` and listed once."""
    seen: dict[Path, int] = {}
    for i, entry in enumerate(manifest.shards):
        path = inside(root, entry.path, f"{where} key shards[{i}].path").resolve()
        if path in seen:
            raise NpfmError(f"{where} key shards[{i}].path", f"{entry.path!r} is listed "
                            f"twice (also shards[{seen[path]}])", "list each shard once")
        seen[path] = i
