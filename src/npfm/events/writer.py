"""CorpusWriter: validated events in, checksummed Parquet shards and metadata out.

Layout of a corpus directory::

    manifest.json     shards with sha256 and counts, schema version, citation (written last)
    croissant.json    Croissant 1.1 JSON-LD
    datacite.json     DataCite citation metadata
    prov.json         W3C PROV-JSON provenance of the build
    shards/part-NNNNN.parquet

Every file is written atomically. Until ``close()`` writes ``manifest.json`` the
directory holds ``.progress.json``, which lists the finished shards; a build killed at
any point and started again with the same configuration resumes after the last finished
shard (``events_done`` tells the source how many events to skip).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from npfm.events import metadata
from npfm.events.checks import check_schema, check_table
from npfm.events.errors import NpfmError
from npfm.events.metadata import Citation, Provenance
from npfm.events.schema import (
    SCHEMA_VERSION,
    arrow_schema,
    descriptions,
    is_extension,
    migrate,
)
from npfm.events.shards import atomic_write_json, read_json, sha256_file, write_shard

MANIFEST, PROGRESS = "manifest.json", ".progress.json"
FORMAT = "npfm-corpus"


def file_record(path: Path) -> dict[str, Any]:
    """An input-file entry for provenance: path, sha256 and size in bytes."""
    return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _count(table: pa.Table, column: str) -> int:
    return int(pc.sum(pc.list_value_length(table.column(column))).as_py() or 0)


def _value_counts(table: pa.Table, column: str) -> dict[str, int]:
    counts = pc.value_counts(table.column(column).combine_chunks())
    return {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}


def shard_name(index: int) -> str:
    return f"shards/part-{index:05d}.parquet"


def write_indexed_shard(corpus: Path, index: int, table: pa.Table,
                        source: str = "input") -> dict[str, Any]:
    """Validate ``table`` and write it as shard ``index`` of ``corpus``; returns its entry.

    Safe to call from worker processes (on any machine that sees the directory): the
    file appears atomically and the driver records the returned entry with
    ``CorpusWriter.record``.
    """
    check_schema(table.schema, source)
    check_table(table, source)
    rel = shard_name(index)
    extensions = descriptions(table.schema)
    write_shard(Path(corpus) / rel, _upgraded(table))
    return {
        "index": index, "path": rel, "sha256": sha256_file(Path(corpus) / rel),
        "bytes": (Path(corpus) / rel).stat().st_size, "events": table.num_rows,
        "hits": _count(table, "hit_x"), "particles": _count(table, "particle_pdg"),
        "objects": _count(table, "object_px"), "splits": _value_counts(table, "split"),
        "cells": _count(migrate(table, ["cell_energy"]), "cell_energy"),
        "experiments": _value_counts(table, "experiment"), "extensions": extensions,
    }


def _upgraded(table: pa.Table) -> pa.Table:
    """The table in this version's layout (older versions: missing columns null),
    extension columns and their descriptions kept."""
    return migrate(table).cast(arrow_schema(extensions=descriptions(table.schema)))


def declared_extensions(shards: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The manifest's ``extensions``: column -> group, type and description (the first
    shard's) over all shards."""
    out: dict[str, dict[str, str]] = {}
    for entry in shards:
        for name, doc in sorted(entry.get("extensions", {}).items()):
            out.setdefault(name, {"group": name.split("_ext_")[0], "type": "int64",
                                  "description": doc})
    return out


class CorpusWriter:
    """Write a corpus, then ``close()``.

    Sequential use: ``write(table)`` any number of times; shards of ``shard_events``
    events are cut in order. Parallel use: workers call ``write_indexed_shard`` and the
    driver passes each returned entry to ``record``; ``done_indices`` lists the shards a
    resumed build already has.
    """

    def __init__(self, path: Path, *, name: str, citation: Citation, provenance: Provenance,
                 shard_events: int = 5_000) -> None:
        self.path, self.name, self.shard_events = Path(path), name, shard_events
        self.citation = citation if citation.identifier else dataclasses.replace(
            citation, identifier=f"urn:npfm:corpus:{name}")
        self.provenance = provenance
        if (self.path / MANIFEST).exists():
            raise NpfmError(str(self.path), "already holds a finished corpus",
                            "choose another output directory or delete this one")
        self.path.mkdir(parents=True, exist_ok=True)
        for stray in self.path.glob("**/.*.tmp"):  # left by a killed write; never valid
            stray.unlink()
        self._key = self._config_key()
        self._shards: dict[int, dict[str, Any]] = {}
        self._started = _now()
        self._resume()
        self._buffer: list[pa.Table] = []
        self._buffered = 0

    def _config_key(self) -> str:
        blob = json.dumps([self.name, self.shard_events, self.provenance.command,
                           self.provenance.config, list(self.provenance.inputs)],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _resume(self) -> None:
        progress = self.path / PROGRESS
        if not progress.exists():
            if any((self.path / "shards").glob("*.parquet")):
                raise NpfmError(str(self.path), "holds shards but no build record",
                                "delete the directory or choose another output directory")
            return
        state = read_json(progress, "build progress record")
        if state.get("config_key") != self._key:
            raise NpfmError(str(progress), "an unfinished build with a different configuration",
                            "rerun with the same configuration to resume, or delete the "
                            "directory to start afresh")
        for entry in state["shards"]:  # keep only shards that are intact on disk
            shard = self.path / entry["path"]
            if shard.exists() and sha256_file(shard) == entry["sha256"]:
                self._shards[entry["index"]] = entry
        self._started = state["started"]
        listed = {e["path"] for e in self._shards.values()}
        for orphan in (self.path / "shards").glob("*.parquet"):
            if f"shards/{orphan.name}" not in listed:  # written after the last record
                orphan.unlink()

    def _prefix(self) -> int:
        """Number of shards 0, 1, ... finished without a gap."""
        n = 0
        while n in self._shards:
            n += 1
        return n

    @property
    def done_indices(self) -> set[int]:
        """Indices of shards already finished (a resumed parallel build skips them)."""
        return set(self._shards)

    @property
    def events_done(self) -> int:
        """Events in the finished shards 0..k-1 (a resumed sequential source skips these)."""
        return sum(self._shards[i]["events"] for i in range(self._prefix()))

    def record(self, entry: dict[str, Any]) -> None:
        """Record a finished shard in the build's progress file."""
        self._shards[entry["index"]] = entry
        atomic_write_json(self.path / PROGRESS, {
            "config_key": self._key, "started": self._started,
            "shards": [self._shards[i] for i in sorted(self._shards)]})

    def write(self, table: pa.Table, source: str = "input") -> None:
        """Validate a table of events and buffer it; full shards are written at once."""
        check_schema(table.schema, source)
        check_table(table, source)
        self._buffer.append(_upgraded(table))
        self._buffered += table.num_rows
        while self._buffered >= self.shard_events:
            self._flush(self.shard_events)

    def _flush(self, n_rows: int) -> None:
        # Tables with other extension columns: the missing ones null.
        table = pa.concat_tables(self._buffer, promote_options="default").combine_chunks()
        head, rest = table.slice(0, n_rows), table.slice(n_rows)
        self._buffer, self._buffered = ([rest] if rest.num_rows else []), rest.num_rows
        index = self._prefix()
        for stale in [i for i in self._shards if i > index]:  # beyond a gap: rewritten
            del self._shards[stale]
        self.record(write_indexed_shard(self.path, index, head))

    def close(self, extra_files: dict[str, str] | None = None) -> dict[str, Any]:
        """Write the last shard and all metadata; returns the manifest.

        ``extra_files``: further JSON files already in the directory (e.g. a curation
        report), listed in the manifest and read back by ``npfm validate``.
        """
        if self._buffered:
            self._flush(self._buffered)
        missing = sorted(set(range(max(self._shards, default=-1) + 1)) - set(self._shards))
        if missing:
            raise NpfmError(str(self.path), f"shard(s) {missing} were never written",
                            "rerun the build with the same configuration; it resumes")
        self._complete_extensions()
        shards = [self._shards[i] for i in sorted(self._shards)]
        totals = {k: sum(e[k] for e in shards)
                  for k in ("events", "hits", "particles", "objects", "bytes")}
        ended = _now()
        files = {"croissant": "croissant.json", "datacite": "datacite.json",
                 "provenance": "prov.json", **(extra_files or {})}
        extensions = declared_extensions(shards)
        atomic_write_json(self.path / files["croissant"], metadata.croissant(
            self.citation, shards, self.provenance, totals["events"],
            {n: e["description"] for n, e in extensions.items()}))
        atomic_write_json(self.path / files["datacite"],
                          metadata.datacite(self.citation, totals["events"]))
        atomic_write_json(self.path / files["provenance"], metadata.prov(
            self.name, self.provenance, self._started, ended, shards))
        manifest = {
            "format": FORMAT, "schema_version": SCHEMA_VERSION, "name": self.name,
            "created": ended, "code_version": metadata.code_version(), **totals,
            "citation": metadata.citation_dict(self.citation), "files": files,
            "extensions": extensions, "shards": shards,
        }
        atomic_write_json(self.path / MANIFEST, manifest)
        (self.path / PROGRESS).unlink(missing_ok=True)
        return manifest

    def _complete_extensions(self) -> None:
        """Give every shard every extension column of the corpus (null lists where its
        source had none): all shards then share one schema, as Croissant readers
        (mlcroissant) require. Only corpora mixing sources with and without an
        extension rewrite shards (atomically; the entry is recorded again)."""
        declared = declared_extensions(list(self._shards.values()))
        docs = {n: e["description"] for n, e in declared.items()}
        for index in sorted(self._shards):
            entry = self._shards[index]
            if set(entry.get("extensions", {})) == set(docs):
                continue
            shard = self.path / entry["path"]
            table = pq.read_table(shard)
            names = [n for n in table.column_names if not is_extension(n)] + sorted(docs)
            write_shard(shard, migrate(table, names).cast(arrow_schema(extensions=docs)))
            self.record({**entry, "sha256": sha256_file(shard), "bytes": shard.stat().st_size,
                         "extensions": docs})

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
