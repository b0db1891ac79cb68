"""``npfm curate``: sources -> quality checks -> quarantine -> splits -> published corpus.

Each source is cut into chunks of ``chunk_events`` input events; chunk g becomes shard g
of the corpus, its rejected events ``quarantine/part-g.parquet`` (the full records plus
source, input index, reason and hash), and its accounting ``curation/part-g.json``.
A killed run resumes after the last recorded chunk. Without ``keep_going`` the first
unreadable input stops the run; with it, the failure is recorded and the other sources
go on. ``curation.json`` adds everything up: per source, events read = kept + quarantined.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from npfm.curate import quality
from npfm.curate.recipe import Recipe, Source
from npfm.curate.splits import assign_splits, content_hashes
from npfm.detectors.production import simulate_chunk
from npfm.events.build import events_to_table
from npfm.events.errors import NpfmError
from npfm.events.metadata import Citation, Provenance
from npfm.events.shards import atomic_write_json, read_json, write_shard
from npfm.events.writer import CorpusWriter, file_record, write_indexed_shard
from npfm.formats.registry import IMPORTERS

Chunk = tuple[list[dict[str, Any]], NpfmError | None]


def _chunks(source: Source, size: int) -> Iterator[Chunk]:
    """Lists of up to ``size`` event mappings; a read failure ends the source, with the
    events read before it."""
    if source.job is not None:
        for shard in range(source.job.n_shards):
            yield simulate_chunk(source.job, shard), None
        return
    assert source.format is not None
    stream = IMPORTERS[source.format](source.paths, **source.options)
    if source.max_events is not None:
        stream = itertools.islice(stream, source.max_events)
    while True:
        batch: list[dict[str, Any]] = []
        try:
            for event in stream:
                batch.append(event)
                if len(batch) == size:
                    break
        except NpfmError as err:
            yield batch, err
            return
        if not batch:
            return
        yield batch, None
        if len(batch) < size:
            return


def _check(table: pa.Table, seen: set[str]) -> tuple[list[str | None], list[str]]:
    reasons = quality.first_reason(
        quality.schema_reasons(table), quality.empty_reasons(table),
        quality.envelope_reasons(table), quality.label_reasons(table))
    hashes = content_hashes(table)
    for i, digest in enumerate(hashes):
        if reasons[i] is None:
            if digest in seen:
                reasons[i] = f"duplicate: same content as an earlier event ({digest[:12]})"
            else:
                seen.add(digest)
    return reasons, hashes


def _quarantine(out: Path, index: int, table: pa.Table, rows: list[int], source: str,
                first: int, reasons: list[str | None], hashes: list[str]) -> None:
    bad = table.take(pa.array(rows, pa.int64()))
    extra = {"quarantine_source": [source] * len(rows),
             "quarantine_index": [first + r for r in rows],
             "quarantine_reason": [reasons[r] for r in rows],
             "quarantine_hash": [hashes[r] for r in rows]}
    for name, values in extra.items():
        bad = bad.append_column(name, pa.array(values))
    write_shard(out / f"quarantine/part-{index:05d}.parquet", bad)


def curate(recipe: Recipe, out: Path, *, keep_going: bool = False, command: str = "npfm curate",
           progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Build the corpus of ``recipe`` at ``out``; returns the curation report."""
    import_files = [p for s in recipe.sources for p in s.paths]
    inputs = tuple(file_record(p) for p in import_files)
    writer = CorpusWriter(out, name=recipe.name, citation=Citation(
        title=recipe.title, description=recipe.text("description"),
        creators=tuple(recipe.raw.get("creators") or ("npfm developers",)),
        publisher=recipe.text("publisher", "npfm"),
        license=recipe.text("license", "https://creativecommons.org/licenses/by/4.0/"),
        data_collection=f"Curated by `{command}` from {len(recipe.sources)} sources: "
                        + ", ".join(s.name for s in recipe.sources) + ".",
        data_biases=recipe.text("data_biases"), data_limitations=recipe.text(
            "data_limitations")),
        provenance=Provenance(command=command, config=recipe.raw, inputs=inputs),
        shard_events=recipe.chunk_events)
    seen: set[str] = set()
    for index in sorted(writer.done_indices):
        seen.update(read_json(out / f"curation/part-{index:05d}.json", "chunk record")["kept"])
    index = 0
    for source in recipe.sources:
        input_ids = [import_files.index(p) for p in source.paths]
        first = 0
        for events, error in _chunks(source, recipe.chunk_events):
            if index not in writer.done_indices:
                if error is not None and not keep_going:
                    raise error
                table = events_to_table(events, source=source.name)
                reasons, hashes = _check(table, seen)
                keep = [i for i, r in enumerate(reasons) if r is None]
                rejected = [i for i, r in enumerate(reasons) if r is not None]
                if rejected:
                    _quarantine(out, index, table, rejected, source.name, first, reasons,
                                hashes)
                kept = table.take(pa.array(keep, pa.int64()))
                split = pa.array(assign_splits([hashes[i] for i in keep], recipe.splits),
                                 pa.string())
                kept = kept.set_column(kept.schema.get_field_index("split"), "split", split)
                atomic_write_json(out / f"curation/part-{index:05d}.json", {
                    "index": index, "source": source.name, "first": first,
                    "read": len(events), "kept": [hashes[i] for i in keep],
                    "quarantined": dict(Counter(str(reasons[i]).split(":")[0]
                                                for i in rejected)),
                    "error": None if error is None else str(error)})
                entry = write_indexed_shard(out, index, kept, source.name)
                entry["inputs"] = input_ids
                writer.record(entry)
            if progress:
                progress(len(events))
            index += 1
            first += len(events)
    report = _report(out, recipe, index)
    atomic_write_json(out / "curation.json", report)
    writer.close(extra_files={"curation": "curation.json"})
    return report


def _report(out: Path, recipe: Recipe, n_chunks: int) -> dict[str, Any]:
    sources: dict[str, dict[str, Any]] = {
        s.name: {"read": 0, "kept": 0, "quarantined": 0, "reasons": Counter(), "errors": []}
        for s in recipe.sources}
    for index in range(n_chunks):
        part = read_json(out / f"curation/part-{index:05d}.json", "chunk record")
        entry = sources[part["source"]]
        entry["read"] += part["read"]
        entry["kept"] += len(part["kept"])
        entry["quarantined"] += sum(part["quarantined"].values())
        entry["reasons"].update(part["quarantined"])
        if part["error"]:
            entry["errors"].append(part["error"])
    for name, entry in sources.items():
        if entry["read"] != entry["kept"] + entry["quarantined"]:
            raise NpfmError(f"{out}/curation", f"source {name}: {entry['read']} read but "
                            f"{entry['kept']} kept + {entry['quarantined']} quarantined",
                            "rerun the curation; a chunk record is inconsistent")
        entry["reasons"] = dict(entry["reasons"])
    totals = {k: sum(e[k] for e in sources.values()) for k in ("read", "kept", "quarantined")}
    return {"recipe": recipe.name, "splits": recipe.splits, "sources": sources,
            "totals": totals, "quarantine": "quarantine/"}
