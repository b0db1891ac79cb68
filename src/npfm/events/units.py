"""Units of the event model: length cm, time ns, energy/momentum GeV, field tesla.

``to_canonical(values, "mm")`` converts to the model's unit of the same dimension.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from npfm.events.errors import NpfmError

#: Factor to the canonical unit, and the dimension, of each accepted unit name.
UNITS: dict[str, tuple[float, str]] = {
    "um": (1e-4, "length"), "mm": (0.1, "length"), "cm": (1.0, "length"), "m": (100.0, "length"),
    "ps": (1e-3, "time"), "ns": (1.0, "time"), "us": (1e3, "time"), "ms": (1e6, "time"),
    "eV": (1e-9, "energy"), "keV": (1e-6, "energy"), "MeV": (1e-3, "energy"),
    "GeV": (1.0, "energy"), "TeV": (1e3, "energy"),
    "T": (1.0, "field"), "kG": (0.1, "field"), "G": (1e-4, "field"),
}
CANONICAL = {"length": "cm", "time": "ns", "energy": "GeV", "field": "T"}


def factor(unit: str, dimension: str | None = None) -> float:
    """Multiplier from ``unit`` to the canonical unit; checks the dimension if given."""
    if unit not in UNITS:
        raise NpfmError(f"unit {unit!r}", "unknown unit", f"use one of {', '.join(UNITS)}")
    scale, dim = UNITS[unit]
    if dimension is not None and dim != dimension:
        raise NpfmError(f"unit {unit!r}", f"is a {dim} unit where a {dimension} unit is needed",
                        f"give a {dimension} unit such as {CANONICAL[dimension]}")
    return scale


def to_canonical(values: npt.ArrayLike, unit: str, dimension: str | None = None
                 ) -> npt.NDArray[np.float64]:
    """``values`` in ``unit`` converted to the canonical unit (cm, ns, GeV or T)."""
    return np.asarray(values, dtype=np.float64) * factor(unit, dimension)
