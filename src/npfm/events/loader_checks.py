"""One pass per column for the loader: list columns to flat numpy values, value-checked.

``convert_checked`` turns each list column of a row group into the loader's flat arrays
(float32 with NaN for nulls; int64 with ``IGNORE_INDEX`` for nulls; vocabulary strings as
their codes) and, on the same buffers, proves cheaply that ``check_table`` would pass:

- floats: the sum of the values is finite (a NaN or inf anywhere makes it non-finite);
- vocabularies: every dictionary string known, integer codes within the vocabulary;
- indices (``hit_particle``, ``particle_parent``, ``hit_track_id``): minimum >= -1, and
  ``particle_parent`` below the event's particle count when particles are loaded;
- list lengths: the anchor's offsets (or, with null lists, per-event lengths);
- event columns: no nulls, no floats, no vocabulary.

Whatever the proof does not cover (null elements, hit indices bounded by particle lists,
the cell-truth, waveform and sample groups of ``checks_cells``, nested lists, other
groups' columns, event-level floats and vocabularies) leaves the table unproven: the
loader then runs ``check_table``, whose one-line ``NpfmError`` names file, row, column and
fix, exactly as ``npfm validate`` does. A proven table passes ``check_table`` by
construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from npfm.events import vocabulary
from npfm.events.schema import ANCHORS, column

IGNORE_INDEX = -100
#: Index columns: values >= -1 (-1 marks noise); the first two are bounded by the event's
#: particles where the particle lists were read, which only ``check_table`` checks.
_INDICES = {"hit_particle": True, "particle_parent": True, "hit_track_id": False}
#: Groups none of whose columns ``check_cells`` inspects.
_PROVABLE = ("hit", "particle", "object", "cell")


@dataclass
class Converted:
    """Flat values of a row group's list columns and what the fast checks proved."""

    counts: np.ndarray  # elements per event (the anchor's list lengths, null as 0)
    fields: dict[str, np.ndarray]
    proven: bool  # every value check of ``check_table`` passes
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (vocabulary, name)


def one_array(col: pa.ChunkedArray) -> pa.Array:
    """The column as one array (a row group read is one chunk: no copy then)."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _lengths(arr: pa.Array) -> np.ndarray:
    """List length per row, -1 for a null list."""
    return np.asarray(pc.list_value_length(arr).fill_null(-1), dtype=np.int64)


def convert_checked(table: pa.Table, group: str) -> Converted:
    """Flat loader arrays of every ``group`` list column of ``table``, and the proof."""
    arrays = {name: one_array(table.column(name)) for name in table.column_names}
    anchor = arrays[ANCHORS[group][0]]
    size = _lengths(anchor)
    counts = np.maximum(size, 0)
    out = Converted(counts, {}, proven=group in _PROVABLE)
    particles_read = ANCHORS["particle"][0] in arrays
    for name, arr in arrays.items():
        col = column(name)
        if col.level == "event":
            out.proven &= (arr.null_count == 0 and col.vocabulary is None
                           and (pa.types.is_integer(arr.type) or pa.types.is_string(arr.type)
                                or pa.types.is_boolean(arr.type)))
            continue
        if col.level != group or not pa.types.is_list(arr.type):
            out.proven = False
            continue
        out.proven &= not (col.required and arr.null_count) and _same_lengths(
            arr, anchor, size, name in ANCHORS[group])
        values, ok = flat_values(arr, counts, col.vocabulary, name in _INDICES, out.unknown)
        if ok and _INDICES.get(name, False) and particles_read:
            # within the particle group, each value's bound is its own event's count
            ok = group == "particle" and bool((values < np.repeat(counts, counts)).all())
        out.fields[name] = values
        out.proven &= ok
    return out


def _same_lengths(arr: pa.Array, anchor: pa.Array, size: np.ndarray, is_anchor: bool) -> bool:
    """List lengths as ``check_table`` requires: anchors null together, other lists null
    or as long as the anchor's."""
    if arr.null_count == 0 and anchor.null_count == 0 and arr.offset == anchor.offset \
            and arr.offsets.equals(anchor.offsets):
        return True
    n = _lengths(arr)
    if is_anchor:
        return bool(((n < 0) == (size < 0)).all())
    return bool(((n < 0) | (n == size)).all())


def flat_values(arr: pa.ListArray, counts: np.ndarray, vocab: str | None, index: bool,
                unknown: list[tuple[str, str]]) -> tuple[np.ndarray, bool]:
    """Per-element values of a list column (null lists and elements filled) and whether
    they pass the value checks; unknown dictionary names are added to ``unknown``."""
    values = arr.flatten()
    ok = values.null_count == 0
    kind = values.type
    fill: Any
    if pa.types.is_dictionary(kind):
        assert vocab is not None, "only vocabulary columns are read dictionary-encoded"
        names = values.dictionary.to_pylist()
        known = vocabulary.names(vocab)
        lost = [(vocab, str(s)) for s in names if s not in known]
        unknown += lost
        ok &= not lost
        lut = np.array([vocabulary.code(vocab, s) if s in known else IGNORE_INDEX
                        for s in names] or [0], dtype=np.int64)
        flat = lut[_numpy(values.indices, 0)]
        fill = IGNORE_INDEX
    elif pa.types.is_floating(kind):
        raw = _numpy(values, np.nan)
        ok &= bool(np.isfinite(raw.sum()))
        flat = raw if raw.dtype == np.float32 else raw.astype(np.float32)
        fill = np.nan
    else:
        raw = _numpy(values, IGNORE_INDEX)
        if len(raw) and (vocab is not None or index):
            low, high = (0, len(vocabulary.names(vocab))) if vocab is not None else (-1, None)
            ok &= bool(raw.min() >= low) and (high is None or bool(raw.max() < high))
        flat = raw.astype(np.int64)
        fill = IGNORE_INDEX
    total = int(counts.sum())
    if len(flat) == total:
        return flat, ok
    filled = np.full(total, fill, dtype=flat.dtype)
    present = np.repeat(~np.asarray(arr.is_null()), counts)
    if int(present.sum()) != len(flat):  # lengths differ from the anchor's: check_table says
        return filled, False
    filled[present] = flat
    return filled, ok


def _numpy(values: pa.Array, fill: float) -> np.ndarray:
    """Numpy values (a zero-copy view where arrow allows), nulls filled with ``fill``."""
    if values.null_count:
        if pa.types.is_boolean(values.type):
            values = values.cast(pa.int8())
        values = values.fill_null(fill)
    return values.to_numpy(zero_copy_only=False)
