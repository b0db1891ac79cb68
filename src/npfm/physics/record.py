"""Generator-level record of one event: the interface from physics/ to detectors/.

Units: momentum and energy GeV, position cm, time ns, charge in units of e.
Every array has one entry per particle, in generator order; ``parent`` indexes into
the same arrays (-1: none). ``final`` marks the particles the detector simulation must
propagate (stable, or long-lived with c*tau > 1 cm, which the generator leaves
undecayed); intermediate particles are kept for the truth history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: Event-level keys a generator may set in ``GeneratedEvent.info``; all are event-model
#: columns (see docs/event-model.md).
INFO_KEYS = frozenset({
    "facility", "beam1_pdg", "beam2_pdg", "beam1_energy", "beam2_energy", "sqrt_s", "process",
    "generator", "generator_version", "generator_tune", "generator_seed", "vertex_x",
    "vertex_y", "vertex_z", "truth_x", "truth_q2", "truth_y", "truth_scattered_lepton",
    "truth_quark_flavour",
})


@dataclass
class GeneratedEvent:
    """Particles of one generated event (pileup already overlaid, if any)."""

    pdg: npt.NDArray[np.int32]
    charge: npt.NDArray[np.float32]
    px: npt.NDArray[np.float64]
    py: npt.NDArray[np.float64]
    pz: npt.NDArray[np.float64]
    energy: npt.NDArray[np.float64]
    mass: npt.NDArray[np.float64]
    vx: npt.NDArray[np.float64]
    vy: npt.NDArray[np.float64]
    vz: npt.NDArray[np.float64]
    vt: npt.NDArray[np.float64]
    parent: npt.NDArray[np.int32]
    primary: npt.NDArray[np.bool_]
    final: npt.NDArray[np.bool_]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.pdg)
        for name in ("charge", "px", "py", "pz", "energy", "mass", "vx", "vy", "vz", "vt",
                     "parent", "primary", "final"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"GeneratedEvent.{name} has {len(getattr(self, name))} "
                                 f"entries, pdg has {n}")
        unknown = set(self.info) - INFO_KEYS
        if unknown:
            raise ValueError(f"GeneratedEvent.info has unknown keys {sorted(unknown)}")

    def __len__(self) -> int:
        return len(self.pdg)
