"""Reading and validating a corpus directory written by ``CorpusWriter``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from npfm.events.checks import check_table, readable_versions
from npfm.events.errors import NpfmError, locate
from npfm.events.manifest import (
    check_extensions,
    check_manifest,
    check_shard_paths,
    check_totals,
)
from npfm.events.schema import COLUMNS, READABLE_VERSIONS, extensions_in
from npfm.events.shards import iter_row_groups, open_shard, read_json, sha256_file
from npfm.events.writer import FORMAT, MANIFEST, PROGRESS

#: Shards whose sha256 matched in this process, keyed by (resolved path, size, mtime in ns,
#: expected sha256): a shard read twice (truth and hits of the task loader, each epoch of
#: training) is hashed once, and any rewrite of the file (new size or mtime) hashes again.
_VERIFIED: set[tuple[str, int, int, str]] = set()


def forget_verified() -> None:
    """Hash every shard again on its next read (benchmarks of a first read use this)."""
    _VERIFIED.clear()


@dataclass(frozen=True)
class Corpus:
    """A finished corpus: its directory and parsed manifest."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: Path | str) -> Corpus:
        """Read and check the manifest (format, schema version, shard entries)."""
        path = Path(path)
        if not path.is_dir():
            raise NpfmError(str(path), "not a directory", "give the corpus directory")
        if not (path / MANIFEST).exists() and (path / PROGRESS).exists():
            raise NpfmError(str(path), "unfinished build (no manifest.json)",
                            "rerun the build command with the same configuration; it resumes")
        manifest = read_json(path / MANIFEST, "manifest.json")
        where = str(path / MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise NpfmError(where, f"not an {FORMAT} manifest", "point at an npfm corpus")
        if manifest.get("schema_version") not in READABLE_VERSIONS:
            raise NpfmError(where, f"schema version {manifest.get('schema_version')} but this "
                            f"npfm reads version {readable_versions()}", "use the npfm "
                            "release that wrote the corpus, or rebuild it with this one")
        checked = check_manifest(manifest, where)
        check_totals(checked, where)
        check_extensions(checked, where)
        check_shard_paths(path, checked, where)
        return cls(path, manifest)

    @property
    def extensions(self) -> dict[str, str]:
        """Declared extension columns (schema 3) -> description; {} for older corpora."""
        return {n: e["description"] for n, e in self.manifest.get("extensions", {}).items()}

    @property
    def column_names(self) -> list[str]:
        """Every column a read returns: the schema's, then the declared extensions."""
        return [c.name for c in COLUMNS] + sorted(self.extensions)

    @property
    def shards(self) -> list[dict[str, Any]]:
        return list(self.manifest["shards"])

    @property
    def n_events(self) -> int:
        return int(self.manifest["events"])

    def shard_path(self, entry: dict[str, Any]) -> Path:
        """The shard's file (``Corpus.open`` checked that it lies inside the corpus)."""
        return self.path / entry["path"]

    def verify_checksum(self, entry: dict[str, Any]) -> None:
        """Compare the shard's sha256 with the manifest (once per process per file state)."""
        shard = self.shard_path(entry)
        if not shard.is_file():
            raise NpfmError(str(shard), "shard file missing",
                            "restore it from a replica or rebuild the corpus")
        stat = shard.stat()
        key = (str(shard.resolve()), stat.st_size, stat.st_mtime_ns, entry["sha256"])
        if key in _VERIFIED:
            return
        digest = sha256_file(shard)
        if digest != entry["sha256"]:
            raise NpfmError(str(shard), f"sha256 {digest[:12]}… does not match the manifest "
                            f"({entry['sha256'][:12]}…)", "the file changed since it was "
                            "written: restore it from a replica or rebuild the corpus")
        _VERIFIED.add(key)

    def open_shard(self, entry: dict[str, Any], verify: bool = True,
                   **kwargs: Any) -> pq.ParquetFile:
        """Checksum (optional), open and schema-check one shard; its event count must be
        the manifest's."""
        if verify:
            self.verify_checksum(entry)
        pf = open_shard(self.shard_path(entry), **kwargs)
        if pf.metadata.num_rows != entry["events"]:
            raise NpfmError(str(self.shard_path(entry)), f"{pf.metadata.num_rows} events but "
                            f"the manifest says {entry['events']}", "rebuild the corpus")
        return pf

    def iter_tables(self, columns: list[str] | None = None, verify: bool = True
                    ) -> Iterator[pa.Table]:
        """Row groups of every shard in manifest order, each with the same columns
        (default ``column_names``: an extension a shard lacks reads as null)."""
        columns = self.column_names if columns is None else columns
        for entry in self.shards:
            pf = self.open_shard(entry, verify)
            yield from iter_row_groups(self.shard_path(entry), pf, columns)

    def to_awkward(self, columns: list[str] | None = None, limit: int | None = None) -> Any:
        """The events as one ``awkward.Array`` of records (one field per column, lists
        per event), as uproot users work; read through the verified path. ``limit``:
        at most that many events, in corpus order."""
        import awkward as ak

        tables, n = [], 0
        for table in self.iter_tables(columns):
            take = table if limit is None else table.slice(0, limit - n)
            tables.append(take)
            n += take.num_rows
            if limit is not None and n >= limit:
                break
        if not tables:
            raise NpfmError(str(self.path), "holds no events", "give a corpus with events")
        return ak.from_arrow(pa.concat_tables(tables).combine_chunks(), highlevel=True)

    def validate(self, progress: Callable[[int], None] | None = None) -> dict[str, int]:
        """Check every shard against the manifest and the schema; returns totals.

        ``progress(n_events)`` is called after each row group.
        """
        listed = {e["path"] for e in self.shards}
        for found in sorted((self.path / "shards").glob("*.parquet")):
            if f"shards/{found.name}" not in listed:
                raise NpfmError(str(found), "shard not listed in the manifest",
                                "remove it, or rebuild the corpus so the manifest lists it")
        for name in self.manifest.get("files", {}).values():
            read_json(self.path / name, name)
        totals = dict.fromkeys(("events", "hits", "particles", "objects"), 0)
        for entry in self.shards:
            shard = self.shard_path(entry)
            pf = self.open_shard(entry)
            undeclared = set(extensions_in(pf.schema_arrow.names)) - set(self.extensions)
            if undeclared:
                raise NpfmError(str(shard), f"extension column(s) {sorted(undeclared)} not "
                                "declared in the manifest", "rebuild the corpus (the writer "
                                "declares every extension it writes)")
            counts = dict.fromkeys(totals, 0)
            for table in iter_row_groups(shard, pf):
                check_table(table, str(shard), row_offset=counts["events"])
                counts["events"] += table.num_rows
                for key, col in (("hits", "hit_x"), ("particles", "particle_pdg"),
                                 ("objects", "object_px")):
                    counts[key] += int(pc.sum(pc.list_value_length(table.column(col)))
                                       .as_py() or 0)
                if progress:
                    progress(table.num_rows)
            for key, value in counts.items():
                if value != entry[key]:
                    raise NpfmError(locate(shard), f"{value} {key} but the manifest says "
                                    f"{entry[key]}", "rebuild the corpus")
                totals[key] += value
        for key, value in totals.items():
            if value != self.manifest[key]:
                raise NpfmError(str(self.path / MANIFEST), f"shards hold {value} {key} but "
                                f"the total says {self.manifest[key]}", "rebuild the corpus")
        return totals
