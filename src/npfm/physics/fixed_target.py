"""Fixed-target DIS at CEBAF for CLAS12: electrons (+z) on nucleons at rest.

Pythia 8.317 with ``Beams:frameType = 2`` and ``Beams:eB = 0`` (below its mass: the
target is at rest; manual, "Beam Parameters"), neutral-current DIS as in ``configs._DIS``.
``PhaseSpace:mHatMin = 0`` is needed: the default 4 GeV minimum of the hard-process mass
forces x > 0.77 at sqrt(s) = 4.56 GeV, where every event fails in the beam remnants.
Pythia keeps pT-hat above ``PhaseSpace:pTHatMinDiverge``, here its minimum 0.5 GeV: events
with Q^2 (1 - y) < 0.25 GeV^2 (e.g. y > 0.75 at Q^2 = 1 GeV^2) are not generated.
Events are kept above ``w_min`` (GeV, W^2 = M^2 + Q^2 (1/x - 1) of the hard process);
the vertex is uniform along the target cell (``target_centre_cm``, ``target_length_cm``;
default the 5 cm CLAS12 liquid target centred at z = -3 cm) on the beam line.

e+d: Pythia has no DIS off a deuteron, so each event is e+p or e+n (isospin mix), drawn
with probability proportional to each nucleon's Pythia cross section times its
acceptance of the W cut, estimated from ``_WARMUP`` events; Fermi motion, binding and
nuclear effects are neglected. The struck nucleon is the second particle of the record;
the event's beam 2 is the deuteron at rest (energy per nucleon, as for nuclear beams).

Polarisation: Pythia does not simulate polarised DIS. ``beam_polarisation`` (longitudinal,
of the electron beam) and ``target_polarisation`` (fractions in [-1, 1]; default None, not
given) are recorded with the other physics options in the corpus provenance (prov.json),
and are not simulated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from npfm.physics.configs import TUNES, PythiaConfig
from npfm.physics.pythia_source import PythiaGenerator, derived_seed
from npfm.physics.record import GeneratedEvent
from npfm.physics.record_view import ParticleReader
from npfm.physics.truth import dis_kinematics

_SETTINGS = (
    "Beams:frameType = 2", "Beams:idA = 11", "Beams:idB = {nucleon}",
    "Beams:eA = {beam_energy}", "Beams:eB = 0.", "PhaseSpace:mHatMin = 0.",
    "PhaseSpace:pTHatMinDiverge = 0.5",
    "WeakBosonExchange:ff2ff(t:gmZ) = on", "PhaseSpace:Q2Min = {q2_min}",
    "SpaceShower:dipoleRecoil = on", "SpaceShower:pTmaxMatch = 2", "PDF:lepton = off",
    "TimeShower:QEDshowerByL = off",
)
#: Defaults: CLAS12 run group A (10.6 GeV, 5 cm LH2 cell at z = -3 cm; see clas12.yaml),
#: the usual CLAS12 DIS cuts Q^2 > 1 GeV^2 and W > 2 GeV; polarisations are metadata only.
_OPTIONS = MappingProxyType({
    "q2_min": 1.0, "w_min": 2.0, "beam_energy": 10.6, "target_centre_cm": -3.0,
    "target_length_cm": 5.0, "beam_polarisation": None, "target_polarisation": None,
})
_WARMUP = 2000  # events per nucleon estimating the e+d mix
_DEUTERON, _PROTON, _NEUTRON = 1000010020, 2212, 2112
_STREAM_TARGET = 7  # random stream (from the seed) of the vertex and nucleon draws


def _number(options: Mapping[str, Any], key: str, low: float, high: float = np.inf) -> float:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"option {key} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FixedTargetConfig(PythiaConfig):
    """Electron DIS on a target at rest; ``nucleons``: the struck nucleons (a mix when
    several); ``target``: the PDG id recorded as beam 2."""

    target: int = _PROTON
    nucleons: tuple[int, ...] = (_PROTON,)

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        o = super().check(options)
        o["w_min"] = _number(o, "w_min", 0.0)
        o["beam_energy"] = _number(o, "beam_energy", 1e-3)
        o["target_centre_cm"] = _number(o, "target_centre_cm", -np.inf)
        o["target_length_cm"] = _number(o, "target_length_cm", 0.0)
        for key in ("beam_polarisation", "target_polarisation"):  # None: not given
            o[key] = None if o[key] is None else _number(o, key, -1.0, 1.0)
        return o

    def pythia_settings(self, options: Mapping[str, Any], nucleon: int = _PROTON
                        ) -> list[str]:
        """All Pythia settings for validated ``options`` and the struck ``nucleon``."""
        return super().pythia_settings({**options, "nucleon": nucleon})

    def source(self, seed: int, options: Mapping[str, Any]) -> Iterator[GeneratedEvent]:
        """Endless stream of events above ``w_min`` with vertices in the target cell."""
        gens = [PythiaGenerator(self.pythia_settings(options, n),
                                seed if len(self.nucleons) == 1 else derived_seed(seed, 10 + k))
                for k, n in enumerate(self.nucleons)]
        info = {"facility": self.facility, "process": self.process, "generator": "Pythia",
                "generator_version": gens[0].version(),
                "generator_tune": TUNES[options.get("tune", "monash")][1],
                "generator_seed": seed, "vertex_x": 0.0, "vertex_y": 0.0}
        rng = np.random.default_rng(derived_seed(seed, _STREAM_TARGET))
        reader = ParticleReader()
        streams = [self._accepted(g, reader, info, options["w_min"]) for g in gens]
        weights = np.ones(1)
        if len(gens) > 1:  # the mix: cross section x W-cut acceptance, after a warm-up
            for stream in streams:
                for _ in range(_WARMUP):
                    next(stream)
            weights = np.array([i.sigmaGen() / i.nAccepted()
                                for i in (g.pythia.infoPython() for g in gens)])
        weights = weights / weights.sum()
        half = 0.5 * options["target_length_cm"]
        while True:
            event = next(streams[int(rng.choice(len(streams), p=weights))])
            dz = options["target_centre_cm"] + rng.uniform(-half, half)
            yield replace(event, vz=event.vz + dz, info={**event.info, "vertex_z": dz})

    def _accepted(self, gen: PythiaGenerator, reader: ParticleReader, info: dict[str, Any],
                  w_min: float) -> Iterator[GeneratedEvent]:
        """Events of one nucleon above the W cut, with the target recorded as beam 2."""
        for event in gen.events():
            truth = dis_kinematics(event, reader(event))
            mass = event[2].m()
            if mass * mass + truth["truth_q2"] * (1.0 / truth["truth_x"] - 1.0) < w_min ** 2:
                continue
            generated = self.to_event(event, reader, info)
            if self.target != generated.info["beam2_pdg"]:
                generated = replace(generated, info={**generated.info,
                                                     **self._target_info(gen, event)})
            yield generated

    def _target_info(self, gen: PythiaGenerator, event: Any) -> dict[str, Any]:
        """Beam 2 as the target nucleus at rest: energy and sqrt(s) per nucleon (GeV)."""
        data = gen.pythia.particleData
        per_nucleon = data.m0(self.target) / ((self.target // 10) % 1000)
        beam = event[1]
        s = beam.m() ** 2 + per_nucleon ** 2 + 2.0 * beam.e() * per_nucleon
        return {"beam2_pdg": self.target, "beam2_energy": round(per_nucleon, 6),
                "sqrt_s": round(float(np.sqrt(s)), 6)}


FIXED_TARGET_CONFIGS: Mapping[str, FixedTargetConfig] = MappingProxyType({c.name: c for c in (
    FixedTargetConfig(
        "clas12_ep", "CLAS12 e+p DIS, e- 10.6 GeV on a proton at rest (LH2), Q2 > 1, W > 2",
        "CEBAF", "ep-NC-DIS", _SETTINGS, _OPTIONS, dis_kinematics),
    FixedTargetConfig(
        "clas12_ed", "CLAS12 e+d DIS as an e+p / e+n mix (no Fermi motion), e- 10.6 GeV on "
        "LD2 at rest, Q2 > 1, W > 2", "CEBAF", "ed-NC-DIS", _SETTINGS, _OPTIONS,
        dis_kinematics, target=_DEUTERON, nucleons=(_PROTON, _NEUTRON)),
)})
