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

#: The most characters of a bad value that an error message repeats.
ECHO_CHARS = 80

#: numpy dtype of each Arrow element type of the schema (avoids importing pandas).
_NUMPY_TYPES: dict[pa.DataType, type] = {
    pa.float32(): np.float32, pa.float64(): np.float64, pa.int8(): np.int8,
    pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64, pa.bool_(): np.bool_,
}


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
    element = col.type.value_type if pa.types.is_list(col.type) else col.type
    try:
        if col.level == "event":
            return pa.array(values, type=col.arrow_type)
        return _list_array(values, col.type)
    except OverflowError:
        raise NpfmError(f"{source} column {col.name}", f"value out of the {element} range "
                        f"{_range(element)}", "check the source value (a damaged or "
                        "mistyped number?)") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        problem = " ".join(str(exc).split())
        if len(problem) > ECHO_CHARS:
            problem = problem[:ECHO_CHARS] + "…"
        raise NpfmError(f"{source} column {col.name}", f"cannot store values as {col.type}: "
                        f"{problem}", "pass numbers/strings of the documented type") from None


def _range(element: pa.DataType) -> str:
    """The representable values of a numeric Arrow type, e.g. ``[-32768, 32767]``."""
    dtype = _NUMPY_TYPES.get(element)
    if dtype is None or dtype is np.bool_:
        return ""
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    return f"[{info.min:g}, {info.max:g}]" if isinstance(info, np.finfo) else \
        f"[{info.min}, {info.max}]"


def _list_array(values: list[Any], element: pa.DataType) -> pa.Array:
    """ListArray of ``element`` from per-event arrays; ``None`` gives a null list.

    Per-event arrays are concatenated once and converted in one call (one Python step
    per event, not per element).
    """
    mask = np.array([v is None for v in values], dtype=bool)
    present = [v for v in values if v is not None]
    if pa.types.is_list(element):  # per-element counts: 2-D arrays (n, n_subsystems)
        mats = [_matrix(v) for v in present]
        lengths = [m.shape[0] for m in mats]
        widths = np.array([m.shape[1] for m in mats for _ in range(m.shape[0])], np.int64)
        inner_offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)
        flat_values = _flat_values([m.reshape(-1) for m in mats], element.value_type)
        flat = pa.ListArray.from_arrays(pa.array(inner_offsets), flat_values)
    else:
        arrays = [np.asarray(v) for v in present]
        lengths = [len(a) for a in arrays]
        flat = _flat_values(arrays, element)
    sizes = np.zeros(len(values), dtype=np.int64)
    sizes[~mask] = lengths
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, flat, mask=pa.array(mask) if mask.any() else None)


def _matrix(value: Any) -> np.ndarray:
    """A (n, k) array; an empty value is (0, 0)."""
    m = np.asarray(value)
    return m if m.ndim == 2 else m.reshape(len(m), -1) if m.size else np.zeros((len(m), 0))


def _flat_values(arrays: list[np.ndarray], element: pa.DataType) -> pa.Array:
    if not arrays:
        return pa.array([], type=element)
    flat = np.concatenate(arrays)
    if flat.dtype.kind == "U":  # numpy strings: Arrow converts them without Python objects
        return pa.array(flat, type=element)
    if flat.dtype == object or pa.types.is_string(element):  # None elements, mixed
        return pa.array(flat.tolist(), type=element)
    dtype = _NUMPY_TYPES[element]
    if flat.dtype != dtype and flat.dtype.kind in "iuf" and np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        with np.errstate(invalid="ignore"):
            outside = ~((flat >= info.min) & (flat <= info.max))  # NaN, inf too
        if outside.any():  # a silent wrap-around otherwise
            raise OverflowError(f"{flat[outside][0]} outside {dtype.__name__}")
    with np.errstate(over="ignore"):  # float32 overflow gives inf: the value checks see it
        return pa.array(flat.astype(dtype, copy=False), type=element)
