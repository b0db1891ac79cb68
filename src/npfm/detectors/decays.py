"""Truth particles of a batch of events, and in-flight decays of K0S and Lambda.

Generators leave K0S and Lambda (c tau > 1 cm) undecayed. Here each one gets a decay
length drawn from exp(c tau beta gamma); inside the tracking volume it decays isotropically
in its rest frame into K0S -> pi+ pi- / pi0 pi0 or Lambda -> p pi- / n pi0 (charge
conjugates for anti-Lambda), and each pi0 at once into two photons. Daughters are appended
with their parent's index, production vertex and time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from npfm.detectors.helix import C_CM_NS
from npfm.physics.record import GeneratedEvent

Array = npt.NDArray[np.float64]

#: Masses in GeV (PDG 2024, Phys. Rev. D 110 (2024) 030001).
MASS_GEV = {211: 0.13957039, 111: 0.1349768, 2212: 0.93827208816, 2112: 0.93956542052,
            22: 0.0}
_CHARGE = {211: 1.0, 2212: 1.0, 2112: 0.0, 111: 0.0, 22: 0.0}
#: c tau (cm) and (branching fraction, daughters) of the decays simulated here (PDG 2024:
#: K0S c tau 2.6844 cm, B(pi+ pi-) 69.20 %, B(pi0 pi0) 30.69 %; Lambda c tau 7.89 cm,
#: B(p pi-) 64.1 %, B(n pi0) 35.9 %). Rarer modes are folded in proportionally.
DECAYS: dict[int, tuple[float, tuple[tuple[float, tuple[int, int]], ...]]] = {
    310: (2.6844, ((0.6920, (211, -211)), (0.3069, (111, 111)))),
    3122: (7.89, ((0.641, (2212, -211)), (0.359, (2112, 111)))),
    -3122: (7.89, ((0.641, (-2212, 211)), (0.359, (-2112, 111)))),
}


@dataclass
class Particles:
    """Truth particles of a batch of events (``event``: position of the event in the
    batch; ``parent``: index into these arrays, -1 for none)."""

    pdg: npt.NDArray[np.int64]
    charge: Array
    px: Array
    py: Array
    pz: Array
    energy: Array
    mass: Array
    vx: Array
    vy: Array
    vz: Array
    vt: Array
    parent: npt.NDArray[np.int64]
    primary: npt.NDArray[np.bool_]
    final: npt.NDArray[np.bool_]
    event: npt.NDArray[np.int64]

    @classmethod
    def from_events(cls, events: list[GeneratedEvent]) -> Particles:
        """Concatenate generator records; parents become batch indices."""
        offsets = np.cumsum([0] + [len(e) for e in events])[:-1]
        cols: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "event":
                cols[f.name] = np.repeat(np.arange(len(events)), [len(e) for e in events])
                continue
            parts = [np.asarray(getattr(e, f.name)) for e in events]
            if f.name == "parent":
                parts = [np.where(p >= 0, p + o, -1) for p, o in zip(parts, offsets, strict=True)]
            dtype = {"pdg": np.int64, "parent": np.int64, "primary": bool, "final": bool}
            cols[f.name] = np.concatenate(parts).astype(dtype.get(f.name, np.float64))
        return cls(**cols)

    def __len__(self) -> int:
        return len(self.pdg)

    def extended(self, other: Particles) -> Particles:
        """These particles followed by ``other`` (whose parents already index the union)."""
        return Particles(**{f.name: np.concatenate((getattr(self, f.name),
                                                    getattr(other, f.name)))
                            for f in fields(self)})

    def grouped(self, n_events: int) -> tuple[Particles, npt.NDArray[np.int64]]:
        """Stably reordered so that each event's particles are contiguous, and the start
        offset of each of the ``n_events`` events in the new order."""
        order = np.argsort(self.event, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        moved = Particles(**{f.name: getattr(self, f.name)[order] for f in fields(self)})
        moved.parent = np.where(moved.parent >= 0, inverse[np.maximum(moved.parent, 0)], -1)
        return moved, np.searchsorted(moved.event, np.arange(n_events))


def _lookup(table: dict[int, float], codes: npt.NDArray[np.int64]) -> Array:
    """``table[|code|]`` for each code."""
    keys = np.array(sorted(table))
    values = np.array([table[k] for k in keys])
    return values[np.searchsorted(keys, np.abs(codes))]


def _two_body(parent: Particles, sel: npt.NDArray[np.int64], d1: npt.NDArray[np.int64],
              d2: npt.NDArray[np.int64], vertex: Sequence[Array],
              rng: np.random.Generator) -> Particles:
    """Isotropic two-body decays of ``parent[sel]`` at ``vertex`` (x, y, z, t)."""
    big_m = parent.mass[sel]
    m1, m2 = _lookup(MASS_GEV, d1), _lookup(MASS_GEV, d2)
    # rest-frame momentum from the Kallen function
    pstar = np.sqrt(np.maximum((big_m ** 2 - (m1 + m2) ** 2) * (big_m ** 2 - (m1 - m2) ** 2),
                               0.0)) / (2.0 * big_m)
    cos = rng.uniform(-1.0, 1.0, len(sel))
    phi = rng.uniform(0.0, 2.0 * np.pi, len(sel))
    sin = np.sqrt(1.0 - cos * cos)
    star = np.stack((sin * np.cos(phi), sin * np.sin(phi), cos)) * pstar
    beta = np.stack((parent.px[sel], parent.py[sel], parent.pz[sel])) / parent.energy[sel]
    gamma = parent.energy[sel] / big_m
    out = []
    for sign, mass in ((1.0, m1), (-1.0, m2)):
        p = sign * star
        e = np.sqrt(pstar ** 2 + mass ** 2)
        # Lorentz boost: p' = p + beta [gamma^2/(gamma+1) beta.p + gamma E]
        lab = p + beta * (gamma ** 2 / (gamma + 1.0) * (beta * p).sum(0) + gamma * e)
        out.append((lab, np.sqrt((lab ** 2).sum(0) + mass ** 2), mass))
    pdg = np.concatenate((d1, d2))
    lab = np.concatenate((out[0][0], out[1][0]), axis=1)
    n2 = 2 * len(sel)
    return Particles(
        pdg=pdg, charge=np.sign(pdg) * _lookup(_CHARGE, pdg),
        px=lab[0], py=lab[1], pz=lab[2], energy=np.concatenate((out[0][1], out[1][1])),
        mass=np.concatenate((m1, m2)), vx=np.tile(vertex[0], 2), vy=np.tile(vertex[1], 2),
        vz=np.tile(vertex[2], 2), vt=np.tile(vertex[3], 2), parent=np.tile(sel, 2),
        primary=np.zeros(n2, bool), final=np.ones(n2, bool), event=np.tile(parent.event[sel], 2))


def decay_in_flight(particles: Particles, r_max: float, z_max: float,
                    rng: np.random.Generator) -> Particles:
    """Particles with the K0S / Lambda that decay inside |z| < z_max, r < r_max (cm)
    marked non-final and their daughters (and pi0 -> gamma gamma photons) appended."""
    out = particles
    for code, (ctau, modes) in DECAYS.items():
        sel = np.flatnonzero(out.final & (out.pdg == code))
        if sel.size == 0:
            continue
        p = np.sqrt(out.px[sel] ** 2 + out.py[sel] ** 2 + out.pz[sel] ** 2)
        length = rng.exponential(ctau * p / out.mass[sel])  # c tau beta gamma
        vertex = [v[sel] + length * c[sel] / p for v, c in
                  ((out.vx, out.px), (out.vy, out.py), (out.vz, out.pz))]
        inside = (np.hypot(vertex[0], vertex[1]) < r_max) & (np.abs(vertex[2]) < z_max)
        sel = sel[inside]
        if sel.size == 0:
            continue
        at = [v[inside] for v in vertex] + \
            [out.vt[sel] + length[inside] * out.energy[sel] / (p[inside] * C_CM_NS)]
        fractions = np.array([f for f, _ in modes])
        daughters = np.array([d for _, d in modes])[
            rng.choice(len(modes), size=sel.size, p=fractions / fractions.sum())]
        final = out.final.copy()
        final[sel] = False
        out = replace(out, final=final).extended(_two_body(out, sel, daughters[:, 0],
                                                                   daughters[:, 1], at, rng))
    pi0 = np.flatnonzero(out.final & (out.pdg == 111))
    if pi0.size:  # pi0 c tau = 25 nm (PDG): decays at its production vertex
        final = out.final.copy()
        final[pi0] = False
        photons = np.full(pi0.size, 22)
        at = [out.vx[pi0], out.vy[pi0], out.vz[pi0], out.vt[pi0]]
        out = replace(out, final=final).extended(_two_body(out, pi0, photons, photons, at, rng))
    return out
