"""Pythia 8 -> ``GeneratedEvent``: a quiet, seeded generator and the record conversion.

Pythia units (manual 8.317, "Particle Properties"): energies, momenta and masses in GeV;
space-time coordinates in mm, times in mm/c. Here positions become cm and times ns.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pythia8mc

from npfm.physics.record import GeneratedEvent
from npfm.physics.record_view import RECORD

#: Largest seed for which Pythia gives a unique, reproducible sequence; 0 would seed from
#: the clock (Pythia 8.317 manual, "Random-Number Seed", ``Random:seed``).
MAX_SEED = 900_000_000
_MM_PER_CM = 10.0
_MM_PER_NS = 299.792458  # c in mm/ns (exact, SI definition of the metre)
#: Particles with nominal c*tau0 above this (mm) have displaced decays: their decay
#: products and all descendants are not primary. Pythia 8.317 particle data: the
#: longest-lived non-weak decayer is the pi0 (c*tau0 = 2.55e-5 mm), the shortest-lived weak
#: decayer the Omega_c0 (c*tau0 = 0.021 mm); 1e-3 mm separates them.
DISPLACED_TAU0_MM = 1e-3
#: Pythia status codes 91-98: products of a decay (manual 8.317, "Particle Properties";
#: 99, a Bose-Einstein momentum shift, is not a decay).
_DECAY_STATUS = (91, 98)
_QUIET = (
    "Print:quiet = on", "Next:numberCount = 0", "Init:showChangedSettings = off",
    "Init:showProcesses = off", "Init:showChangedParticleData = off",
)
_MAX_FAILURES = 10  # consecutive failed Pythia::next() calls before giving up


def check_seed(seed: int) -> int:
    """Validate a Pythia seed: an integer in [1, MAX_SEED]."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) \
            or not 1 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [1, {MAX_SEED}] (0 would make Pythia "
                         f"seed from the clock), got {seed!r}")
    return int(seed)


def derived_seed(seed: int, stream: int) -> int:
    """Seed in [1, MAX_SEED] for an independent random stream derived from ``seed``."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0]
    return 1 + int(state % MAX_SEED)


class PythiaGenerator:
    """An initialised, quiet Pythia instance with a fixed seed."""

    def __init__(self, settings: Iterable[str], seed: int) -> None:
        self.seed = check_seed(seed)
        self.pythia = pythia8mc.Pythia("", False)
        lines = [*_QUIET, *settings, "Random:setSeed = on", f"Random:seed = {self.seed}"]
        for line in lines:
            if not self.pythia.readString(line):
                raise ValueError(f"Pythia rejected the setting {line!r}")
        if not self.pythia.init():
            raise RuntimeError(f"Pythia initialisation failed for settings {lines}")

    def next(self) -> Any:
        """Generate the next event; returns the Pythia event record."""
        for _ in range(_MAX_FAILURES):
            if self.pythia.next():
                return self.pythia.event
        raise RuntimeError(f"Pythia failed {_MAX_FAILURES} times in a row")

    def events(self) -> Iterator[Any]:
        """Endless stream of Pythia event records (each valid until the next one)."""
        while True:
            yield self.next()

    def version(self) -> str:
        """Version of the linked Pythia library, e.g. ``"8.317"``."""
        return f"{self.pythia.settings.parm('Pythia:versionNumber'):.3f}"


def beam_info(record: np.ndarray) -> dict[str, Any]:
    """``info`` beam fields and sqrt_s (GeV, per nucleon) from the beams (entries 1 and 2)
    of a ``RECORD`` array.

    Nuclear beams (PDG code 10LZZZAAAI) are scaled to one nucleon.
    """
    return dict(_beam_info(record[1:3].tobytes()))


@functools.lru_cache(maxsize=64)
def _beam_info(beams: bytes) -> tuple[tuple[str, Any], ...]:
    record = np.frombuffer(beams, RECORD)
    info: dict[str, Any] = {}
    p4 = np.zeros(4)
    for i in (0, 1):
        pdg = int(record["id"][i])
        nucleons = (pdg // 10) % 1000 if pdg > 1_000_000_000 else 1
        beam = np.array([float(record[name][i]) for name in ("e", "px", "py", "pz")]
                        ) / nucleons
        p4 += beam
        info[f"beam{i + 1}_pdg"], info[f"beam{i + 1}_energy"] = pdg, round(float(beam[0]), 6)
    info["sqrt_s"] = round(float(np.sqrt(p4[0] ** 2 - p4[1:] @ p4[1:])), 6)
    return tuple(info.items())


def convert(record: np.ndarray, info: dict[str, Any]) -> GeneratedEvent:
    """Pythia event record as a ``RECORD`` array (``npfm.physics.record_view``) ->
    ``GeneratedEvent`` with every entry but the system line 0.

    Pythia index i becomes array index i - 1; ``parent`` is the first mother. ``primary``
    is False for decay products of particles with c*tau0 > ``DISPLACED_TAU0_MM`` and for
    all their descendants (the collision itself is at the origin).
    """
    mother = record["mother1"].astype(np.int64)
    status = np.abs(record["status"])
    displaced = ((record["tau0"][mother] > DISPLACED_TAU0_MM) & (status >= _DECAY_STATUS[0])
                 & (status <= _DECAY_STATUS[1]))
    # Propagate down the mother chains (mothers may sit after daughters in Pythia's record).
    while True:
        nxt = displaced | displaced[mother]
        if np.array_equal(nxt, displaced):
            break
        displaced = nxt
    rows, mother, displaced = record[1:], mother[1:], displaced[1:]
    return GeneratedEvent(
        pdg=rows["id"].astype(np.int32), charge=rows["charge"].astype(np.float32),
        px=rows["px"].copy(), py=rows["py"].copy(), pz=rows["pz"].copy(),
        energy=rows["e"].copy(), mass=rows["m"].copy(),
        vx=rows["x"] / _MM_PER_CM, vy=rows["y"] / _MM_PER_CM, vz=rows["z"] / _MM_PER_CM,
        vt=rows["t"] / _MM_PER_NS, parent=(mother - 1).astype(np.int32),
        primary=~displaced, final=rows["status"] > 0, info=info)
