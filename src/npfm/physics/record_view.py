"""A Pythia event record as one NumPy structured array, read in bulk.

pythia8mc's bindings cost about 0.3 us per accessor call and per particle object, so
reading 15 fields of 100 particles one by one costs more than generating the event.
``Pythia8::Event`` keeps its particles in a contiguous ``std::vector<Pythia8::Particle>``
(``event[i]`` is a reference into it), so the whole record is one copy of
``size * itemsize`` bytes from the address of ``event[0]``. ``PARTICLE`` is the layout of
``Pythia8::Particle`` in pythia8mc 8.317 on x86-64 (Pythia 8.317 ``Basics.h`` and
``Event.h``: a vtable pointer, eight ints, the Vec4 momentum, mass, scale, polarisation,
a bool, the Vec4 production vertex, ...). ``ParticleReader`` checks that layout against
the accessors on its first event, and one particle of every event; where it does not
hold, it reads through the accessors (``accessor_particles``), which give the same array.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

_FIELDS = (("id", "<i4", 8), ("status", "<i4", 12), ("mother1", "<i4", 16),
           ("px", "<f8", 40), ("py", "<f8", 48), ("pz", "<f8", 56), ("e", "<f8", 64),
           ("m", "<f8", 72), ("x", "<f8", 104), ("y", "<f8", 112), ("z", "<f8", 120),
           ("t", "<f8", 128))
#: ``Pythia8::Particle`` in memory (bytes); x, y, z, t: production vertex (mm, mm/c).
PARTICLE = np.dtype({"names": [f[0] for f in _FIELDS], "formats": [f[1] for f in _FIELDS],
                     "offsets": [f[2] for f in _FIELDS], "itemsize": 168})
#: The record handed to the conversion: ``PARTICLE``'s fields, packed, plus the particle
#: data of each species: charge (e) and nominal proper lifetime c*tau0 (mm).
RECORD = np.dtype([(f[0], f[1]) for f in _FIELDS] + [("charge", "<f8"), ("tau0", "<f8")])
#: Offset of the C++ object pointer in a pybind11 instance (after the Python object
#: header; "simple" holder layout).
_VALUE_POINTER = 16
_ACCESSORS = ("id", "status", "mother1", "px", "py", "pz", "e", "m", "xProd", "yProd",
              "zProd", "tProd")


def _address(obj: Any) -> int:
    return ctypes.c_void_p.from_address(id(obj) + _VALUE_POINTER).value or 0


def accessor_particles(event: Any) -> np.ndarray:
    """The ``PARTICLE`` fields of every entry, one accessor call each (the reference)."""
    rows = [tuple(getattr(p, name)() for name in _ACCESSORS) for p in event.particles()]
    return np.array(rows, dtype=RECORD[[f[0] for f in _FIELDS]])


def bulk_particles(event: Any) -> np.ndarray:
    """The ``PARTICLE`` fields of every entry, in one copy of the particle vector."""
    n = event.size()
    data = ctypes.string_at(_address(event[0]), n * PARTICLE.itemsize) if n else b""
    return np.frombuffer(data, PARTICLE, n)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return all(np.array_equal(a[name], b[name]) for name in a.dtype.names or ())


def _layout_holds(event: Any) -> bool:
    """Whether ``PARTICLE`` is the memory layout of ``event``'s particles."""
    n = event.size()
    if n < 2 or _address(event[1]) - _address(event[0]) != PARTICLE.itemsize:
        return False
    return _same(accessor_particles(event), bulk_particles(event))


class ParticleReader:
    """Reads Pythia event records of one generator as ``RECORD`` arrays.

    ``bulk``: None checks the layout on the first event; False always uses accessors.
    Charge and c*tau0 are cached per PDG id (Pythia's particle data of the generator,
    read from the first particle of each species).
    """

    def __init__(self, bulk: bool | None = None) -> None:
        self.bulk = bulk
        self._ids = np.zeros(0, np.int32)  # known PDG ids, sorted
        self._data = np.zeros((0, 2), np.float64)  # their charge and c*tau0

    def __call__(self, event: Any) -> np.ndarray:
        if self.bulk is None:
            self.bulk = _layout_holds(event)
        if self.bulk:
            fields = bulk_particles(event)
            last = event[event.size() - 1]
            if (last.id(), last.px(), last.tProd()) != tuple(fields[-1][["id", "px", "t"]]):
                raise RuntimeError("Pythia event record changed layout between events")
        else:
            fields = accessor_particles(event)
        out = np.empty(len(fields), RECORD)
        for name in fields.dtype.names or ():
            out[name] = fields[name]
        rows = self._lookup(event, fields["id"])  # may extend self._data
        data = self._data[rows]
        out["charge"], out["tau0"] = data[:, 0], data[:, 1]
        return out

    def _lookup(self, event: Any, ids: np.ndarray) -> np.ndarray:
        """Rows of ``self._data`` for ``ids``, adding new species from ``event``."""
        pos = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        if len(self._ids) and np.array_equal(self._ids[pos], ids):
            return pos
        new, first = np.unique(ids, return_index=True)
        keep = ~np.isin(new, self._ids)
        rows = [(event[i].charge(), event[i].tau0()) for i in first[keep].tolist()]
        self._ids = np.concatenate((self._ids, new[keep]))
        self._data = np.concatenate((self._data, np.array(rows, np.float64).reshape(-1, 2)))
        order = np.argsort(self._ids)
        self._ids, self._data = self._ids[order], self._data[order]
        return np.searchsorted(self._ids, ids)
