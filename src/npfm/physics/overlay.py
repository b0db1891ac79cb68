"""Beam-spot smearing and pileup overlay of ``GeneratedEvent`` collisions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from npfm.physics.record import GeneratedEvent


@dataclass(frozen=True)
class BeamSpot:
    """Gaussian spread of the collision point: sigmas in cm (x, y, z) and ns (t)."""

    sigma_x: float = 0.0
    sigma_y: float = 0.0
    sigma_z: float = 0.0
    sigma_t: float = 0.0

    def smear(self, event: GeneratedEvent, rng: np.random.Generator) -> GeneratedEvent:
        """Shift the whole collision (every vertex and info vertex_x/y/z) by one draw."""
        dx, dy, dz, dt = rng.normal(0.0, [self.sigma_x, self.sigma_y, self.sigma_z,
                                          self.sigma_t])
        info = dict(event.info)
        for key, shift in (("vertex_x", dx), ("vertex_y", dy), ("vertex_z", dz)):
            info[key] = float(info.get(key, 0.0) + shift)
        return replace(event, vx=event.vx + dx, vy=event.vy + dy, vz=event.vz + dz,
                       vt=event.vt + dt, info=info)


def overlay(event: GeneratedEvent, others: Sequence[GeneratedEvent]) -> GeneratedEvent:
    """Append the particles of ``others`` to ``event``; parents are re-indexed.

    ``info`` stays that of ``event`` (the triggered collision); the record has no
    per-particle collision tag, and ``primary`` refers to each particle's own collision.
    """
    if not others:
        return event
    events = [event, *others]
    offsets = np.cumsum([0] + [len(e) for e in events[:-1]])
    parent = np.concatenate([np.where(e.parent >= 0, e.parent + off, -1)
                             for e, off in zip(events, offsets, strict=True)])

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(e, name) for e in events])

    return GeneratedEvent(
        pdg=cat("pdg"), charge=cat("charge"), px=cat("px"), py=cat("py"), pz=cat("pz"),
        energy=cat("energy"), mass=cat("mass"), vx=cat("vx"), vy=cat("vy"), vz=cat("vz"),
        vt=cat("vt"), parent=parent.astype(np.int32), primary=cat("primary"),
        final=cat("final"), info=event.info)


def with_pileup(events: Iterator[GeneratedEvent], pileup: Iterator[GeneratedEvent] | None,
                mean: float, beam_spot: BeamSpot, rng: np.random.Generator,
                ) -> Iterator[GeneratedEvent]:
    """Smear each event and overlay Poisson(``mean``) smeared collisions from ``pileup``."""
    for event in events:
        event = beam_spot.smear(event, rng)
        extra = [] if pileup is None else [beam_spot.smear(next(pileup), rng)
                                           for _ in range(rng.poisson(mean))]
        yield overlay(event, extra)
