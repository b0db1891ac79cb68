"""Hand-made generator records for the detector-simulation tests (no Pythia)."""

from __future__ import annotations

from typing import Any

import numpy as np

from npfm.physics.record import GeneratedEvent

#: (mass GeV, charge) by PDG id (PDG 2024 masses).
SPECIES = {
    211: (0.13957039, 1), -211: (0.13957039, -1), 321: (0.493677, 1), -321: (0.493677, -1),
    2212: (0.93827208816, 1), -2212: (0.93827208816, -1), 11: (0.51099895e-3, -1),
    -11: (0.51099895e-3, 1), 13: (0.1056583755, -1), -13: (0.1056583755, 1), 22: (0.0, 0),
    2112: (0.93956542052, 0), 130: (0.497611, 0), 310: (0.497611, 0), 3122: (1.115683, 0),
    -3122: (1.115683, 0), 12: (0.0, 0),
}


def make_event(pdg: Any, pt: Any, eta: Any = 0.0, phi: Any = 0.0,
               vertex: tuple[float, float, float] = (0.0, 0.0, 0.0),
               info: dict[str, Any] | None = None) -> GeneratedEvent:
    """Final, primary particles of the given species and kinematics (broadcast)."""
    pdg, pt, eta, phi = (np.atleast_1d(a) for a in np.broadcast_arrays(
        np.asarray(pdg), np.asarray(pt, float), np.asarray(eta, float), np.asarray(phi, float)))
    pdg = pdg.astype(np.int32)
    mass = np.array([SPECIES[int(c)][0] for c in pdg])
    charge = np.array([SPECIES[int(c)][1] for c in pdg], np.float32)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    n = len(pdg)
    return GeneratedEvent(
        pdg=pdg, charge=charge, px=px, py=py, pz=pz,
        energy=np.sqrt(px ** 2 + py ** 2 + pz ** 2 + mass ** 2), mass=mass,
        vx=np.full(n, vertex[0]), vy=np.full(n, vertex[1]), vz=np.full(n, vertex[2]),
        vt=np.zeros(n), parent=np.full(n, -1, np.int32), primary=np.ones(n, bool),
        final=np.ones(n, bool), info=info or {})


def mixed_event(rng: np.random.Generator, n: int = 50) -> GeneratedEvent:
    """A random ~n-particle event of many species, with a few low-pT particles."""
    pdg = rng.choice([211, -211, 211, -211, 321, -321, 2212, -2212, 11, -11, 13, 22, 22,
                      2112, 130, 310, 3122, 12], n)
    pt = rng.exponential(0.5, n) + 0.02
    return make_event(pdg, pt, rng.uniform(-1.2, 1.2, n), rng.uniform(-np.pi, np.pi, n),
                      vertex=(0.01, -0.02, 1.5),
                      info={"process": "test", "vertex_x": 0.01, "vertex_y": -0.02,
                            "vertex_z": 1.5})
