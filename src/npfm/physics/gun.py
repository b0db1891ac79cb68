"""Single-particle gun: ``count`` particles of one species per event, from one vertex.

``pdg`` is one PDG id, or a list of them: each event's species is then drawn uniformly
from the list (e.g. [11, -11, 211, -211] for an electron/pion sample with balanced
classes).

|p| is uniform in ``p_range`` (GeV); the direction is uniform in eta over ``eta_range``
or isotropic (uniform in cos theta) over ``theta_range`` (rad), and uniform in phi over
``phi_range`` (rad). Mass and charge come from Pythia's particle data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

import numpy as np
import pythia8mc

import npfm
from npfm.physics.record import GeneratedEvent

FACILITIES = ("RHIC", "LEP", "HERA", "EIC", "LHC", "CEBAF")  # the event model's facility column
_DEFAULT_ETA = (-1.0, 1.0)  # used when neither eta_range nor theta_range is given


@cache
def _particle_data() -> Any:
    return pythia8mc.Pythia("", False).particleData


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], n)


def _pair(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf) -> tuple:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"gun option {name} must be a pair of numbers, got {value!r}") from None
    if not lo <= a <= b <= hi:
        raise ValueError(f"gun option {name} = {value!r} must satisfy {lo} <= min <= max <= {hi}")
    return a, b


def _check(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, normalised gun options."""
    o = dict(options)
    species = o["pdg"] if isinstance(o["pdg"], list | tuple) and o["pdg"] else [o["pdg"]]
    for pdg in species:
        if isinstance(pdg, bool) or not isinstance(pdg, int | np.integer) \
                or not _particle_data().isParticle(int(pdg)):
            raise ValueError(f"gun option pdg = {pdg!r} is not a particle known to Pythia")
    o["pdg"] = int(species[0]) if len(species) == 1 else tuple(int(p) for p in species)
    o["p_range"] = _pair("p_range", o["p_range"], 0.0)
    o["phi_range"] = _pair("phi_range", o["phi_range"])
    if o["eta_range"] is not None and o["theta_range"] is not None:
        raise ValueError("gun options eta_range and theta_range exclude each other")
    if o["theta_range"] is not None:
        o["theta_range"] = _pair("theta_range", o["theta_range"], 0.0, math.pi)
    else:
        o["eta_range"] = _pair("eta_range", o["eta_range"] or _DEFAULT_ETA)
    count = o["count"]
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise ValueError(f"gun option count must be a positive integer, got {count!r}")
    o["count"] = int(count)
    try:
        o["vertex"] = tuple(float(v) for v in o["vertex"])
    except (TypeError, ValueError):
        o["vertex"] = ()
    if len(o["vertex"]) != 3:
        raise ValueError(f"gun option vertex must be (x, y, z) in cm, got {options['vertex']!r}")
    if o["facility"] is not None and o["facility"] not in FACILITIES:
        raise ValueError(f"gun option facility must be None or one of {FACILITIES}, "
                         f"got {o['facility']!r}")
    return o


class GunConfig:
    """The particle gun as a named configuration."""

    name = "gun"
    shard_events = 1000  # events per shard of npfm simulate by default
    description = "single-particle gun (species, |p|, eta or theta, phi, count, vertex)"
    options: Mapping[str, Any] = MappingProxyType({
        "pdg": 211, "p_range": (0.5, 5.0), "eta_range": None, "theta_range": None,
        "phi_range": (0.0, 2.0 * math.pi), "count": 1, "vertex": (0.0, 0.0, 0.0),
        "facility": None,
    })

    def defaults(self) -> dict[str, Any]:
        """Option defaults."""
        return dict(self.options)

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validated, normalised options (all keys of ``defaults()`` present)."""
        return _check(options)

    def source(self, seed: int, options: Mapping[str, Any]) -> Iterator[GeneratedEvent]:
        """Endless stream of gun events for validated ``options``."""
        rng = np.random.default_rng(seed)
        n = options["count"]
        species = options["pdg"] if isinstance(options["pdg"], tuple) else (options["pdg"],)
        vertex = options["vertex"]
        info = {"generator": "npfm-gun", "generator_version": npfm.__version__,
                "generator_seed": seed, "process": "gun", "vertex_x": vertex[0],
                "vertex_y": vertex[1], "vertex_z": vertex[2]}
        if options["facility"] is not None:
            info["facility"] = options["facility"]
        while True:
            pdg = species[rng.integers(len(species))] if len(species) > 1 else species[0]
            mass, charge = _particle_data().m0(pdg), _particle_data().charge(pdg)
            p = _uniform(rng, options["p_range"], n)
            phi = _uniform(rng, options["phi_range"], n)
            if options["theta_range"] is not None:
                lo, hi = options["theta_range"]
                theta = np.arccos(_uniform(rng, (math.cos(hi), math.cos(lo)), n))
            else:
                theta = 2.0 * np.arctan(np.exp(-_uniform(rng, options["eta_range"], n)))
            yield GeneratedEvent(
                pdg=np.full(n, pdg, np.int32), charge=np.full(n, charge, np.float32),
                px=p * np.sin(theta) * np.cos(phi), py=p * np.sin(theta) * np.sin(phi),
                pz=p * np.cos(theta), energy=np.sqrt(p**2 + mass**2), mass=np.full(n, mass),
                vx=np.full(n, vertex[0]), vy=np.full(n, vertex[1]), vz=np.full(n, vertex[2]),
                vt=np.zeros(n), parent=np.full(n, -1, np.int32), primary=np.ones(n, bool),
                final=np.ones(n, bool), info=dict(info))
