"""Typed, validating access to the mappings of a detector geometry YAML file.

Every check raises ``GeometryError`` naming the file and the dotted key path (e.g.
``sphenix.yaml: layers[1].efficiency``) with a fix; the format itself is described in
``npfm.detectors.geometry``. Used by the geometry parser and by the calorimeter, imaging
and waveform sections it delegates to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from npfm.events import vocabulary
from npfm.events.errors import NpfmError


class GeometryError(NpfmError):
    """A geometry file that fails validation (names the file and key)."""


class GeometryReader:
    """Typed access to one YAML mapping, with errors naming the file and key."""

    def __init__(self, path: str, raw: Any, key: str = "") -> None:
        if not isinstance(raw, Mapping):
            raise GeometryError(f"{path}: {key}" if key else path, "not a mapping",
                                "write key: value pairs (see npfm.detectors.geometry)")
        self.path, self.raw, self.key = path, raw, key

    def _join(self, key: str) -> str:
        return f"{self.key}.{key}" if self.key else key

    def fail(self, key: str, problem: str, fix: str) -> GeometryError:
        return GeometryError(f"{self.path}: {self._join(key)}", problem, fix)

    def get(self, key: str) -> Any:
        if key not in self.raw:
            raise self.fail(key, "missing key", "add it (see npfm.detectors.geometry)")
        return self.raw[key]

    def sub(self, key: str) -> GeometryReader:
        return GeometryReader(self.path, self.get(key), self._join(key))

    def entries(self, key: str) -> list[GeometryReader]:
        """Readers of the mappings listed under ``key`` (absent: none)."""
        items = self.raw.get(key, [])
        if not isinstance(items, list):
            raise self.fail(key, "expected a list", "list one mapping per entry")
        return [GeometryReader(self.path, v, f"{self._join(key)}[{i}]")
                for i, v in enumerate(items)]

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(key, f"expected text, found {value!r}", "give a string")
        return str(value)

    def numbers(self, key: str, n: int | None = None, low: float = 0.0, strict: bool = True,
                high: float = np.inf) -> npt.NDArray[np.float64]:
        """One value or a list (of ``n`` values, a scalar repeated) in (low|[low, high]."""
        value = self.get(key)
        values = value if isinstance(value, list) else [value]
        if n is not None and len(values) not in (1, n):
            raise self.fail(key, f"{len(values)} values for {n} layers",
                            "give one value, or one per layer")
        if not values or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                 for v in values):
            raise self.fail(key, f"expected number(s), found {value!r}", "give numbers")
        arr = np.asarray(values, dtype=np.float64)
        bad = (arr <= low if strict else arr < low) | (arr > high) | ~np.isfinite(arr)
        if bad.any():
            rule = "positive" if strict and low == 0 and high == np.inf else \
                f"in {'(' if strict else '['}{low:g}, {high:g}]"
            raise self.fail(key, f"value {arr[bad][0]:g} is not {rule}", f"give a {rule} value")
        return arr if n is None else np.broadcast_to(arr, (n,)).copy()

    def number(self, key: str, low: float = 0.0, strict: bool = True,
               high: float = np.inf) -> float:
        if isinstance(self.get(key), list):
            raise self.fail(key, "expected one number, found a list", "give a single value")
        return float(self.numbers(key, None, low, strict, high)[0])

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.raw) - allowed)
        if unknown:
            raise self.fail(unknown[0], "unknown key", f"use only {', '.join(sorted(allowed))}")

    def detector_entry(self, keys: set[str], sources: set[str], kind: str) -> str:
        """Check an entry's keys and sources; its subsystem (a vocabulary name)."""
        self.check_keys(keys)
        self.check_sources(sources)
        name = self.text("subsystem")
        if name not in vocabulary.names("subsystems"):
            raise self.fail("subsystem", f"unknown subsystem {name!r}", "add it to "
                            f"npfm/events/vocabulary.yaml (kind: {kind})")
        return name

    def check_sources(self, sources: set[str]) -> None:
        refs = self.get("source")
        missing = [r for r in (refs if isinstance(refs, list) else [refs]) if r not in sources]
        if missing:
            raise self.fail("source", f"unknown source key {missing[0]!r}",
                            "list it under sources:")
