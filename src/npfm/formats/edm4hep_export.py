"""Export npfm corpora in the EDM4hep ROOT layout read by ``npfm.formats.edm4hep``
(see its docstring for the layout and what podio metadata is not written).

Extension columns (schema 3) are written as podio ``UserDataCollection<int64_t>``
branches, one value per element of the collection they extend: ``<collection>_ext_<name>``
(``MCParticles_ext_pwflag``, ``PIXELHits_ext_volume_id``), listed in the metadata with
their description. EDM4hep has no null: a missing extension value is written as 0."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import uproot

from npfm.events import vocabulary
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.schema import extensions_in, migrate
from npfm.formats.edm4hep import (
    CELL_ID,
    CREATED_IN_SIMULATION,
    INVALID_ID,
    MASS_GEV,
    METADATA_KEY,
    MM,
    collection_id,
)


def _tables(source: Corpus | Path | str | Sequence[pa.Table], columns: list[str],
            verify: bool) -> Iterator[pa.Table]:
    """Row groups of a corpus (shard checksums checked if ``verify``), or the tables."""
    if isinstance(source, (Corpus, Path, str)):
        corpus = source if isinstance(source, Corpus) else Corpus.open(source)
        yield from corpus.iter_tables(columns=columns, verify=verify)
    else:
        yield from (migrate(cast(pa.Table, table), columns) for table in source)


def _flat(table: pa.Table, name: str, dtype: Any, fill: Any = 0) -> np.ndarray:
    """Values of a list column, one per element of its group (hits: hit_x, particles:
    particle_pdg); null elements and the elements of null lists become ``fill``."""
    column = table.column(name).combine_chunks()
    values = pc.list_flatten(column)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    values = np.asarray(values.fill_null(fill).to_numpy(zero_copy_only=False), dtype)
    if not column.null_count:
        return values
    anchor = table.column("hit_x" if name.startswith("hit_") else "particle_pdg")
    sizes = np.asarray(pc.list_value_length(anchor.combine_chunks()).fill_null(0), np.int64)
    out = np.full(sizes.sum(), fill, dtype)
    out[np.repeat(np.asarray(column.is_valid()), sizes)] = values
    return out


def _jagged(fields: dict[str, np.ndarray], counts: np.ndarray) -> ak.Array:
    return ak.unflatten(ak.zip(fields), counts)


def _objectids(index: np.ndarray, collection: int, counts: np.ndarray) -> ak.Array:
    return _jagged({"index": np.where(index >= 0, index, INVALID_ID).astype(np.int32),
                    "collectionID": np.where(index >= 0, collection, INVALID_ID
                                             ).astype(np.uint32)}, counts)


def cell_id_layout(largest: Mapping[str, int], where: str) -> tuple[tuple[str, int, int], ...]:
    """cellID bit fields (column, offset, width) for ids up to ``largest``: ``CELL_ID``
    when every id fits it, otherwise each field as wide as its largest id needs (the
    file's metadata records the layout). No id is ever cut: a total over 64 bits is an
    error naming the fields."""
    if all(largest[c] < 1 << w for c, _, w in CELL_ID):
        return CELL_ID
    widths = [max(1, int(largest[c]).bit_length()) for c, _, _ in CELL_ID]
    if sum(widths) > 64:
        raise NpfmError(f"{where} cellID", f"ids need {sum(widths)} bits ("
                        + ", ".join(f"{c} {w}" for (c, _, _), w in zip(CELL_ID, widths,
                                                                        strict=True))
                        + "), more than 64", "export without such ids (the extension "
                        "columns keep them) or renumber them")
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]])
    return tuple((c, int(o), w) for (c, _, _), o, w in zip(CELL_ID, offsets, widths,
                                                           strict=True))


def _to_edm4hep(table: pa.Table, by_subsystem: dict[str, str], particles: str,
                layout: tuple[tuple[str, int, int], ...] = CELL_ID) -> dict[str, ak.Array]:
    """One batch of events as podio-named records (mm, ns, GeV), with the table's
    extension columns as user-data collections; hit ids packed in ``layout``."""
    n = table.num_rows
    run, event = (table.column(c).to_numpy().astype(np.int64) for c in ("run", "event"))
    if (run < 0).any() or (run >= 2 ** 32).any() or (event < 0).any():
        raise NpfmError("columns run, event", "values outside EventHeader's runNumber "
                        "(uint32) / eventNumber (uint64)", "renumber the events")
    out = {"EventHeader": _jagged({"eventNumber": event.astype(np.uint64),
                                   "runNumber": run.astype(np.uint32)}, np.ones(n, np.int64))}
    counts = np.asarray(pc.list_value_length(table.column("particle_pdg").combine_chunks())
                        .fill_null(0), np.int64)
    offsets, of_event = np.concatenate([[0], np.cumsum(counts)]), np.repeat(np.arange(n), counts)
    pdg, parent = _flat(table, "particle_pdg", np.int32), _flat(table, "particle_parent",
                                                                   np.int64, -1)
    primary, has = _flat(table, "particle_primary", bool, True), parent >= 0
    before: np.ndarray = np.cumsum(has) - has  # parent links of earlier particles in the batch
    p_begin = before - np.append(before, has.sum())[offsets[:-1]][of_event]
    child = np.flatnonzero(has)
    key = offsets[of_event[child]] + parent[child]  # batch index of each child's parent
    order = np.lexsort((child, key))
    child, key = child[order], key[order]
    first = np.searchsorted(key, offsets[:-1])[of_event]
    d_begin = np.searchsorted(key, np.arange(len(pdg))) - first
    d_end = np.searchsorted(key, np.arange(len(pdg)), side="right") - first
    status = np.where(primary, np.where(d_end > d_begin, 2, 1), 0)
    record = {"PDG": pdg, "generatorStatus": status.astype(np.int32),
              "simulatorStatus": np.where(primary, 0, CREATED_IN_SIMULATION).astype(np.int32),
              "charge": _flat(table, "particle_charge", np.float32),
              "time": _flat(table, "particle_vt", np.float32),
              "mass": np.array([MASS_GEV.get(abs(int(c)), 0.0) for c in pdg], np.float64),
              **{f"vertex.{a}": _flat(table, f"particle_v{a}", np.float64) / MM for a in "xyz"},
              **{f"momentum.{a}": _flat(table, f"particle_p{a}", np.float64) for a in "xyz"},
              **{name: v.astype(np.uint32) for name, v in (
                  ("parents_begin", p_begin), ("parents_end", p_begin + has),
                  ("daughters_begin", d_begin), ("daughters_end", d_end))}}
    pid = collection_id(particles)
    out[particles] = _jagged(record, counts)
    out[f"_{particles}_parents"] = _objectids(parent[has], pid,
                                              np.bincount(of_event[has], minlength=n))
    out[f"_{particles}_daughters"] = _objectids((np.arange(len(pdg)) - offsets[of_event])[
        child], pid, np.bincount(of_event[child], minlength=n))
    extensions = extensions_in(table.column_names)
    for name in (e for e in extensions if e.startswith("particle_ext_")):
        out[f"{particles}_ext_{name.split('_ext_', 1)[1]}"] = ak.unflatten(
            _flat(table, name, np.int64), counts)
    lengths = pc.list_value_length(table.column("hit_x").combine_chunks()).fill_null(0)
    hit_event = np.repeat(np.arange(n), np.asarray(lengths, np.int64))
    sub, link = _flat(table, "hit_subsystem", object, ""), _flat(table, "hit_particle",
                                                                  np.int64, -1)
    hit = {"edep": _flat(table, "hit_edep", np.float32), "t": _flat(table, "hit_t", np.float32),
           **{a: _flat(table, f"hit_{a}", np.float64) / MM for a in "xyz"}}
    cell = np.zeros(len(sub), np.uint64)
    for column, shift, width in layout:
        value = _flat(table, column, np.int64).astype(np.uint64)
        cell |= (value & np.uint64((1 << width) - 1)) << np.uint64(shift)
    for subsystem, name in by_subsystem.items():
        m = sub == subsystem
        hit_counts = np.bincount(hit_event[m], minlength=n)
        out[name] = _jagged({"cellID": cell[m], "eDep": hit["edep"][m], "time": hit["t"][m],
                             **{f"position.{a}": hit[a][m] for a in "xyz"}}, hit_counts)
        out[f"_{name}_particle"] = _objectids(link[m], pid, hit_counts)
        for ext in (e for e in extensions if e.startswith("hit_ext_")):
            out[f"{name}_ext_{ext.split('_ext_', 1)[1]}"] = ak.unflatten(
                _flat(table, ext, np.int64)[m], hit_counts)
    return out


def write_edm4hep(source: Corpus | Path | str | Sequence[pa.Table], out_path: Path | str, *,
                  collections: Mapping[str, str] | None = None,
                  particles: str = "MCParticles",
                  progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write a corpus (directory, ``Corpus`` or event tables) as an EDM4hep ROOT file.

    Tree ``events``: ``EventHeader`` (eventNumber, runNumber), ``particles``
    (MCParticle: PDG, generatorStatus 1/2 for primaries without/with daughters and 0
    otherwise, simulatorStatus bit 30 for non-primaries, charge, time, mass from
    ``MASS_GEV``, vertex, momentum, parents and daughters) and one SimTrackerHit
    collection per subsystem (cellID packing hit_layer/module/cell_row/cell_col as in
    ``CELL_ID``, widened where ids need it: ``cell_id_layout``; eDep, time, position,
    particle link). ``collections`` maps collection names to subsystems, by default
    ``<SUBSYSTEM>Hits``. Members without npfm values
    (endpoint, spin, pathLength, hit momentum, ...) are left out; null time, eDep or
    vertex become 0, as EDM4hep has no null. Streams row group by row group; the file
    appears atomically. Returns counts of events, particles and hits.
    """
    out_path = Path(out_path)
    if isinstance(source, (Path, str)):
        source = Corpus.open(source)
    extensions = source.extensions if isinstance(source, Corpus) else {
        n: "extension column" for t in cast(Sequence[pa.Table], source)
        for n in extensions_in(t.column_names)}
    found: set[str] = set()
    largest = dict.fromkeys((c for c, _, _ in CELL_ID), 0)
    for table in _tables(source, ["hit_subsystem", *largest], verify=False):
        values = pc.unique(pc.list_flatten(table.column("hit_subsystem"))).to_pylist()
        if None in values:
            raise NpfmError(str(out_path), "hits without a subsystem", "fill hit_subsystem")
        found |= set(values)
        for column in largest:
            low, high = pc.min_max(pc.list_flatten(table.column(column))).values()
            if low.as_py() is not None and low.as_py() < 0:
                raise NpfmError(f"{out_path} {column}", f"negative value {low.as_py()} cannot "
                                "go into the unsigned cellID", "give non-negative ids")
            largest[column] = max(largest[column], high.as_py() or 0)
    layout = cell_id_layout(largest, str(out_path))
    mapping = dict(collections) if collections is not None else \
        {f"{s}Hits": s for s in vocabulary.names("subsystems") if s in found}
    by_subsystem = {s: c for c, s in mapping.items()}
    if len(by_subsystem) != len(mapping) or not found <= by_subsystem.keys():
        raise NpfmError(str(out_path), f"collections {mapping} do not give one collection "
                        f"per subsystem {sorted(found)}", "map each subsystem once")
    meta = {"layout": "EDM4hep 1.0 members under podio TTree branch names; no podio_metadata",
            "units": {"length": "mm", "time": "ns", "energy": "GeV"},
            "cellID": ",".join(f"{c.removeprefix('hit_')}:{s}:{w}" for c, s, w in layout),
            "collections": {particles: {"type": "edm4hep::MCParticle",
                                        "collectionID": collection_id(particles)}} | {
                c: {"type": "edm4hep::SimTrackerHit", "collectionID": collection_id(c),
                    "subsystem": s} for c, s in mapping.items()} | _user_data(
                extensions, particles, mapping)}
    totals = dict.fromkeys(("events", "particles", "hits"), 0)
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        with uproot.recreate(partial) as f:
            f[METADATA_KEY] = json.dumps(meta)
            tree = None
            for table in _tables(source, _EXPORT_COLUMNS + sorted(extensions), verify=True):
                arrays = _to_edm4hep(table, by_subsystem, particles, layout)
                if tree is None:
                    tree = f.mktree("events", {k: v.type.content for k, v in arrays.items()},
                                    field_name=lambda outer, inner: f"{outer}.{inner}",
                                    counter_name=lambda counted: f"{counted}_size")
                tree.extend(arrays)
                totals["events"] += table.num_rows
                totals["particles"] += int(ak.sum(ak.num(arrays[particles])))
                totals["hits"] += sum(int(ak.sum(ak.num(arrays[c]))) for c in mapping)
                if progress:
                    progress(table.num_rows)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if not totals["events"]:
        partial.unlink()
        raise NpfmError(str(out_path), "no events to write", "give a corpus with events")
    partial.replace(out_path)
    return totals


def _user_data(extensions: dict[str, str], particles: str, mapping: Mapping[str, str]
               ) -> dict[str, dict[str, str]]:
    """Metadata entries of the user-data collections that carry the extensions."""
    out = {}
    for name, doc in extensions.items():
        group, short = name.split("_ext_", 1)
        for of in [particles] if group == "particle" else list(mapping):
            out[f"{of}_ext_{short}"] = {"type": "podio::UserDataCollection<int64_t>",
                                        "elementsOf": of, "column": name, "description": doc}
    return out


_EXPORT_COLUMNS = ["run", "event", "hit_x", "hit_y", "hit_z", "hit_t", "hit_edep",
                   "hit_subsystem", "hit_layer", "hit_module", "hit_cell_row", "hit_cell_col",
                   "hit_particle", "particle_pdg", "particle_charge", "particle_px",
                   "particle_py", "particle_pz", "particle_vx", "particle_vy", "particle_vz",
                   "particle_vt", "particle_parent", "particle_primary"]
