"""Schema and value checks of event tables; each failure is a one-line NpfmError.

Checks, all vectorised over the table:
- the schema version (1, 2 or 3), and every column of that version present with its type;
  from version 3, extension columns (``hit_ext_<name>``, ``particle_ext_<name>``) of
  type list<int64>; any other column is refused;
- required event fields non-null, vocabulary fields within their vocabulary;
- within an event, all non-null lists of a group (hits, particles, objects) have the
  group's length, and anchors (e.g. hit x, y, z) are present whenever the group is;
- floating-point values finite (null is allowed, NaN and inf are not);
- indices in range: hit_particle and particle_parent in [-1, n_particles),
  PID class in its vocabulary, per-subsystem counts as long as ``subsystems``;
- calorimeter cells, truth contributions and waveforms: ``npfm.events.checks_cells``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from npfm.events import vocabulary
from npfm.events.checks_cells import check_cells
from npfm.events.errors import NpfmError, locate
from npfm.events.schema import (
    ANCHORS,
    COLUMNS,
    EXTENSION_PATTERN,
    EXTENSION_SINCE,
    GROUPS,
    READABLE_VERSIONS,
    SCHEMA_METADATA_KEY,
    Column,
    columns_of,
    extension_column,
    extensions_in,
    group_columns,
)

_SINGULAR = {"subsystems": "subsystem", "data_levels": "data level", "splits": "split",
             "object_types": "object type", "pid_classes": "PID class"}
_REBUILD = "rebuild the corpus with this npfm version (npfm validate names every bad shard)"


def readable_versions() -> str:
    """The schema versions this npfm reads, for messages: ``1 or 2 or 3``."""
    return " or ".join(map(str, READABLE_VERSIONS))


def check_schema(schema: pa.Schema, where: str) -> int:
    """Schema version and column names/types (extra columns are rejected too); returns
    the version."""
    meta = schema.metadata or {}
    found = meta.get(SCHEMA_METADATA_KEY)
    if found is None:
        raise NpfmError(where, "no npfm schema version in the Parquet metadata",
                        "write shards with npfm (CorpusWriter) so that they carry it")
    version = next((v for v in READABLE_VERSIONS if found == str(v).encode()), None)
    if version is None:
        raise NpfmError(where, f"schema version {found.decode(errors='replace')} but this "
                        f"npfm reads version {readable_versions()}", "use the npfm release "
                        "that wrote the corpus, or rebuild it with this one")
    expected = columns_of(version)
    for col in expected:
        idx = schema.get_field_index(col.name)
        if idx < 0:
            raise NpfmError(locate(where, column=col.name), "column missing", _REBUILD)
        if not _plain(schema.field(idx).type).equals(col.arrow_type):
            raise NpfmError(locate(where, column=col.name), f"type {schema.field(idx).type}, "
                            f"expected {col.arrow_type}", _REBUILD)
    extra = set(schema.names) - {c.name for c in expected}
    if version >= EXTENSION_SINCE:
        for name in extensions_in(list(extra)):
            extra.discard(name)
            found = _plain(schema.field(name).type)
            if not found.equals(extension_column(name).arrow_type):
                raise NpfmError(locate(where, column=name), f"extension column of type "
                                f"{found}, expected list<int64>", "store whole numbers")
    if extra:
        fix = _REBUILD if version >= EXTENSION_SINCE else \
            "extension columns need schema 3: rebuild the corpus with this npfm version"
        raise NpfmError(where, f"unexpected column(s) {sorted(extra)[:5]}", fix + (
            f" (extension columns are named {EXTENSION_PATTERN.pattern})"
            if version >= EXTENSION_SINCE else ""))
    return version


def _plain(t: pa.DataType) -> pa.DataType:
    """The type with dictionary encoding (a storage detail) replaced by its values."""
    if pa.types.is_dictionary(t):
        return t.value_type
    if pa.types.is_list(t):
        return pa.list_(_plain(t.value_type))
    return t


def check_table(table: pa.Table, where: str, row_offset: int = 0) -> None:
    """All value checks on a table whose schema already passed ``check_schema``.

    A table of some columns only (a reader's selection) gets every check those columns
    allow: the loaders run this on each row group they read, so training and tasks refuse
    what ``npfm validate`` refuses.
    """
    arrays = {name: _one_array(table.column(name)) for name in table.column_names}
    for col in COLUMNS:
        if col.name not in arrays:
            continue
        arr = arrays[col.name]
        if col.required and arr.null_count:
            row = _first(np.asarray(arr.is_null()))
            raise NpfmError(locate(where, row + row_offset, col.name), "required value is null",
                            "fill it in the source (see docs/event-model.md)")
        _check_finite(col, arr, where, row_offset)
        _check_vocabulary(col, arr, where, row_offset)
    sizes = {g: _check_group(arrays, table.num_rows, g, where, row_offset) for g in GROUPS}
    bounded = ANCHORS["particle"][0] in arrays
    _check_indices(arrays, sizes["particle"] if bounded else None, where, row_offset)
    check_cells(arrays, sizes, bounded, where, row_offset)


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (a row group read is one chunk: no copy then)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def flat_with_rows(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Innermost values and the event row of each value."""
    rows = np.arange(len(arr))
    while pa.types.is_list(arr.type):
        parents = np.asarray(pc.list_parent_indices(arr))
        rows, arr = rows[parents], pc.list_flatten(arr)
    return arr, rows


def _flat(arr: pa.Array) -> pa.Array:
    """Innermost values (rows are found only for a failure: ``flat_with_rows``)."""
    while pa.types.is_list(arr.type):
        arr = pc.list_flatten(arr)
    return arr


def _check_finite(col: Column, arr: pa.Array, where: str, off: int) -> None:
    values = _flat(arr)
    if not pa.types.is_floating(values.type) or len(values) == 0:
        return
    if pc.all(pc.is_finite(values)).as_py() is not False:  # True, or null when all null
        return
    values, rows = flat_with_rows(arr)
    bad = np.asarray(pc.invert(pc.is_finite(values)).fill_null(False))
    i = _first(bad)
    raise NpfmError(locate(where, int(rows[i]) + off, col.name),
                    f"non-finite value {values[i].as_py()}",
                    "store unmeasured values as null, not NaN or inf")


def _check_vocabulary(col: Column, arr: pa.Array, where: str, off: int) -> None:
    if col.vocabulary is None:
        return
    values = _flat(arr)
    allowed = vocabulary.names(col.vocabulary)
    if pa.types.is_dictionary(values.type):  # as readers load vocabulary strings
        if pc.all(pc.is_in(values.dictionary, pa.array(allowed))).as_py() is not False:
            return
        values = values.dictionary_decode()
    if pa.types.is_string(values.type):
        unknown = pc.and_(pc.invert(pc.is_in(values, pa.array(allowed))), pc.is_valid(values))
        bad = np.asarray(unknown.fill_null(False))
    else:
        ints = np.asarray(values.fill_null(0), dtype=np.int64)
        bad = (ints < 0) | (ints >= len(allowed))
    if bad.any():
        i = _first(bad)
        what = _SINGULAR[col.vocabulary]
        rows = flat_with_rows(arr)[1]
        raise NpfmError(locate(where, int(rows[i]) + off, col.name),
                        f"unknown {what} {values[i].as_py()!r}",
                        f"use one of {', '.join(allowed)} (add new names to "
                        "npfm/events/vocabulary.yaml)")


def _lengths(arr: pa.Array) -> np.ndarray:
    """List length per row, -1 for a null list."""
    return np.asarray(pc.list_value_length(arr).fill_null(-1), dtype=np.int64)


def _same_layout(arr: pa.Array, anchor: pa.Array) -> bool:
    """Fast path: no null lists and the same list offsets as the anchor column."""
    return (arr.null_count == 0 and anchor.null_count == 0 and arr.offset == anchor.offset
            and arr.offsets.equals(anchor.offsets))


def _check_group(arrays: dict[str, pa.Array], n_rows: int, group: str, where: str, off: int
                 ) -> np.ndarray:
    """Validate list lengths of one group; returns its size per event (0 if absent)."""
    anchor = ANCHORS[group][0]
    if anchor not in arrays:
        return np.zeros(n_rows, dtype=np.int64)
    first = arrays[anchor]
    size = _lengths(first)
    extensions = [extension_column(n) for n in extensions_in(list(arrays))
                  if n.startswith(f"{group}_ext_")]
    for col in (*group_columns(group), *extensions):
        if col.name not in arrays:
            continue
        arr = arrays[col.name]
        if _same_layout(arr, first):
            continue
        n = _lengths(arr)
        if col.name in ANCHORS[group]:
            bad = (n < 0) != (size < 0)
            problem, fix = f"is null where {anchor} is not (or the reverse)", \
                f"{', '.join(ANCHORS[group])} must all be given whenever {group}s are"
        else:
            bad = (n >= 0) & (n != size)
            problem, fix = f"{group} list length differs from {anchor}", \
                f"give one value per {group}, or null for the whole event"
        if bad.any():
            row = _first(bad)
            raise NpfmError(locate(where, row + off, col.name),
                            f"{problem} ({n[row]} vs {size[row]})", fix)
    _check_counts(arrays, group, where, off)
    return np.maximum(size, 0)


def _check_counts(arrays: dict[str, pa.Array], group: str, where: str, off: int) -> None:
    name = f"{group}_nhits"
    if name not in arrays or "subsystems" not in arrays:
        return
    counts = arrays[name]
    inner = pc.list_flatten(counts)
    k = _lengths(inner)
    n_sub = _lengths(arrays["subsystems"])
    rows = np.asarray(pc.list_parent_indices(counts))
    bad = (k >= 0) & (k != n_sub[rows])
    if bad.any():
        row = int(rows[_first(bad)])
        raise NpfmError(locate(where, row + off, name),
                        "per-subsystem counts do not match the `subsystems` list",
                        "give one count per entry of `subsystems`")


def _check_indices(arrays: dict[str, pa.Array], n_particles: np.ndarray | None, where: str,
                   off: int) -> None:
    """Index columns in range; the upper bound only where the particle lists were read."""
    for name, bounded in (("hit_particle", True), ("particle_parent", True),
                          ("hit_track_id", False)):
        if name not in arrays:
            continue
        bounded = bounded and n_particles is not None
        arr = arrays[name]
        values = _flat(arr)
        if len(values) == 0:
            continue
        idx = np.asarray(values.fill_null(-1), dtype=np.int64)
        bad = idx < -1
        if bounded:
            assert n_particles is not None
            bad |= idx >= np.repeat(n_particles, np.maximum(_lengths(arr), 0))
        if bad.any():
            i = _first(bad)
            rows = flat_with_rows(arr)[1]
            upper = n_particles[rows[i]] if bounded and n_particles is not None else "inf"
            raise NpfmError(locate(where, int(rows[i]) + off, name),
                            f"index {idx[i]} outside [-1, {upper})",
                            "indices refer to the event's particle lists; -1 marks noise")
