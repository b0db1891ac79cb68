"""Build event tables (one Arrow row per event) from Python mappings of columns.

Each event is a mapping from column name (see ``schema.COLUMNS``) to a value: a scalar
for event columns, an array-like for list columns (a 2-D ``(n, n_subsystems)`` array
for ``*_nhits``), or ``None`` where the quantity was not measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from npfm.events.errors import NpfmError
from npfm.events.schema import BY_NAME, COLUMNS, Column, arrow_schema


def events_to_table(events: Sequence[Mapping[str, Any]], source: str = "events") -> pa.Table:
    """Arrow table with the schema-v1 layout; unknown keys are an error."""
    for i, ev in enumerate(events):
        unknown = set(ev) - BY_NAME.keys()
        if unknown:
            raise NpfmError(f"{source} row {i}", f"unknown field(s) {sorted(unknown)}",
                            "use the column names of docs/event-model.md")
    arrays = [_column(col, [ev.get(col.name) for ev in events], source) for col in COLUMNS]
    return pa.Table.from_arrays(arrays, schema=arrow_schema())


def _column(col: Column, values: list[Any], source: str) -> pa.Array:
    try:
        if col.level == "event":
            return pa.array(values, type=col.arrow_type)
        return _list_array(values, col.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise NpfmError(f"{source} column {col.name}", f"cannot store values as {col.type}: "
                        f"{exc}", "pass numbers/strings of the documented type") from exc


def _list_array(values: list[Any], element: pa.DataType) -> pa.Array:
    """ListArray of ``element`` from per-event arrays; ``None`` gives a null list."""
    mask = np.array([v is None for v in values], dtype=bool)
    parts = [_as_element_array(v, element) for v in values if v is not None]
    lengths = np.zeros(len(values), dtype=np.int32)
    lengths[~mask] = [len(p) for p in parts]
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    flat = pa.concat_arrays(parts) if parts else pa.array([], type=element)
    return pa.ListArray.from_arrays(offsets, flat, mask=pa.array(mask) if mask.any() else None)


def _as_element_array(value: Any, element: pa.DataType) -> pa.Array:
    if pa.types.is_list(element):  # per-element counts: a 2-D array (n, n_subsystems)
        rows = [None if r is None else np.asarray(r) for r in value]
        return _list_array(rows, element.value_type)
    arr = np.asarray(value)
    if arr.dtype == object or pa.types.is_string(element):
        return pa.array(list(arr.tolist()), type=element)  # may hold None elements
    return pa.array(arr.astype(element.to_pandas_dtype(), copy=False), type=element)
