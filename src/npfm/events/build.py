"""Build event tables (one Arrow row per event) from Python mappings of columns.

Each event is a mapping from column name (see ``schema.COLUMNS``) to a value: a scalar
for event columns, an array-like for list columns (a 2-D ``(n, n_subsystems)`` array
for ``*_nhits``), or ``None`` where the quantity was not measured.

Extension columns (``hit_ext_<name>``, ``particle_ext_<name>``: whole numbers, one per
hit or particle) are further keys; the reserved key ``extensions`` maps each of them to
its description (required, the same in every event that gives it). An event without an
extension that others have gets a null list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from npfm.events.errors import NpfmError
from npfm.events.schema import (
    BY_NAME,
    COLUMNS,
    EXTENSIONS_KEY,
    Column,
    arrow_schema,
    extension_column,
    is_extension,
)

#: The most characters of a bad value that an error message repeats.
ECHO_CHARS = 80

#: numpy dtype of each Arrow element type of the schema (avoids importing pandas).
_NUMPY_TYPES: dict[pa.DataType, type] = {
    pa.float32(): np.float32, pa.float64(): np.float64, pa.int8(): np.int8,
    pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64, pa.bool_(): np.bool_,
}


def events_to_table(events: Sequence[Mapping[str, Any]], source: str = "events") -> pa.Table:
    """Arrow table with the schema layout, extension columns last; unknown keys are an
    error."""
    described: dict[str, str] = {}
    for i, ev in enumerate(events):
        unknown = {k for k in set(ev) - BY_NAME.keys() - {EXTENSIONS_KEY}
                   if not is_extension(k)}
        if unknown:
            raise NpfmError(f"{source} row {i}", f"unknown field(s) {sorted(unknown)}",
                            "use the column names of docs/event-model.md (extension "
                            "columns: hit_ext_<name>, particle_ext_<name>, name in a-z0-9_)")
        _describe(ev, described, f"{source} row {i}")
    extensions = [extension_column(n, described[n]) for n in sorted(described)]
    for ext in extensions:
        for i, ev in enumerate(events):
            _check_integers(ev.get(ext.name), f"{source} row {i} column {ext.name}")
    arrays = [_column(col, [ev.get(col.name) for ev in events], source)
              for col in (*COLUMNS, *extensions)]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(extensions=described))


def _describe(event: Mapping[str, Any], described: dict[str, str], where: str) -> None:
    """Collect the descriptions of the event's extension columns into ``described``."""
    docs = event.get(EXTENSIONS_KEY) or {}
    for name in (k for k in event if is_extension(k)):
        doc = docs.get(name) if isinstance(docs, Mapping) else None
        if not isinstance(doc, str) or not doc.strip():
            raise NpfmError(f"{where} column {name}", "extension column without a "
                            "description", f"describe it in the event's '{EXTENSIONS_KEY}' "
                            f"mapping, e.g. {{'{name}': 'what the number means'}}")
        if described.setdefault(name, doc) != doc:
            raise NpfmError(f"{where} column {name}", "described differently in two events",
                            "give one description per extension column")


def _check_integers(value: Any, where: str) -> None:
    """An extension value: whole numbers (an integer array), or None."""
    if value is None:
        return
    array = np.asarray(value)
    if array.size and array.dtype.kind not in "iub":
        raise NpfmError(where, f"values of type {array.dtype} are not whole numbers",
                        "extension columns hold integers (int64); convert or drop the column")


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
