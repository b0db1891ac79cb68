"""Named Pythia 8 configurations, as data: settings, options and event-level truth.

Beam 1 (Pythia beam A) travels to +z. Unless a config says otherwise the tune is
Pythia 8.317's default Monash 2013 (Tune:pp = 14, Tune:ee = 7; P. Skands, S. Carrazza,
J. Rojo, Eur. Phys. J. C74 (2014) 3024, arXiv:1404.5630).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from npfm.physics.pythia_source import PythiaGenerator, beam_info, convert
from npfm.physics.record import GeneratedEvent
from npfm.physics.record_view import ParticleReader
from npfm.physics.truth import dis_kinematics, quark_flavour

#: Tune name -> (Pythia settings, label for info["generator_tune"]).
TUNES: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType({
    "monash": ((), "Monash 2013 (Tune:pp = 14, Tune:ee = 7)"),
    # M. Rosales Aguilar et al., Phys. Rev. D 105 (2022) 016011, arXiv:2110.09447; the
    # settings file ships with Pythia 8.317 (share/Pythia8/tunes/Detroit2021.cmnd).
    "detroit": (("include = tunes/Detroit2021.cmnd",), "Detroit 2021"),
})
#: Leave particles with c*tau0 > 10 mm undecayed for the detector simulation (Pythia 8.317
#: manual, "Particle Decays": tau0Max is in mm/c). Without these lines Pythia decays all
#: particles with c*tau0 < 1000 mm ("Particle Data Scheme", mayDecay), i.e. also K0S,
#: Lambda, Sigma+-, Xi and Omega: the LEP convention for charged multiplicities.
LONG_LIVED_STABLE = ("ParticleDecays:limitTau0 = on", "ParticleDecays:tau0Max = 10.")
_EE = ("Beams:idA = 11", "Beams:idB = -11")  # e- to +z, as in the LEP experiments' frames
_Z_TO_QUARKS = ("WeakSingleBoson:ffbar2gmZ = on", "23:onMode = off", "23:onIfAny = 1 2 3 4 5")
# Neutral-current DIS as in Pythia 8.317's DIS example main341 (formerly main36).
_DIS = (
    "Beams:frameType = 2", "Beams:idA = 2212", "Beams:idB = {lepton_pdg}",
    "WeakBosonExchange:ff2ff(t:gmZ) = on", "PhaseSpace:Q2Min = {q2_min}",
    "SpaceShower:dipoleRecoil = on", "SpaceShower:pTmaxMatch = 2", "PDF:lepton = off",
    "TimeShower:QEDshowerByL = off",
)
_DIS_OPTIONS = MappingProxyType({"q2_min": 10.0, "lepton_pdg": 11})


@dataclass(frozen=True)
class PythiaConfig:
    """A Pythia 8 configuration; ``{name}`` in a setting is filled from the options."""

    name: str
    description: str
    facility: str
    process: str
    settings: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)  # config-specific defaults
    #: (Pythia event, its ``RECORD`` array) -> event-level truth for ``info``
    truth: Callable[[Any, Any], dict[str, Any]] | None = None
    #: events per shard of ``npfm simulate`` by default (a worker holds one shard)
    shard_events: int = 1000

    def defaults(self) -> dict[str, Any]:
        """Option defaults: ``long_lived_decays`` plus the config-specific ones."""
        return {"long_lived_decays": False, **self.options}

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validated, normalised options (all keys of ``defaults()`` present)."""
        o = dict(options)
        if not isinstance(o["long_lived_decays"], bool):
            raise ValueError(f"option long_lived_decays must be a bool, got "
                             f"{o['long_lived_decays']!r}")
        if "tune" in o and o["tune"] not in TUNES:
            raise ValueError(f"option tune must be one of {sorted(TUNES)}, got {o['tune']!r}")
        if "lepton_pdg" in o and o["lepton_pdg"] not in (11, -11):
            raise ValueError(f"option lepton_pdg must be 11 or -11, got {o['lepton_pdg']!r}")
        if "q2_min" in o:
            q2 = o["q2_min"]
            if isinstance(q2, bool) or not isinstance(q2, int | float) or not q2 > 0:
                raise ValueError(f"option q2_min must be a positive number (GeV^2), got {q2!r}")
            o["q2_min"] = float(q2)
        return o

    def pythia_settings(self, options: Mapping[str, Any]) -> list[str]:
        """All Pythia settings for validated ``options`` (seed and printing excluded)."""
        tune_settings, _ = TUNES[options.get("tune", "monash")]
        decays = () if options["long_lived_decays"] else LONG_LIVED_STABLE
        return [s.format(**options) for s in self.settings] + [*tune_settings, *decays]

    def source(self, seed: int, options: Mapping[str, Any]) -> Iterator[GeneratedEvent]:
        """Endless stream of events for validated ``options``; the collision is at 0."""
        gen = PythiaGenerator(self.pythia_settings(options), seed)
        info = {"facility": self.facility, "process": self.process, "generator": "Pythia",
                "generator_version": gen.version(),
                "generator_tune": TUNES[options.get("tune", "monash")][1],
                "generator_seed": seed,
                "vertex_x": 0.0, "vertex_y": 0.0, "vertex_z": 0.0}
        reader = ParticleReader()
        for event in gen.events():
            yield self.to_event(event, reader, info)

    def to_event(self, event: Any, reader: ParticleReader, info: dict[str, Any]
                 ) -> GeneratedEvent:
        """A Pythia event record -> ``GeneratedEvent``; ``info``: the generator's fields."""
        record = reader(event)
        truth = self.truth(event, record) if self.truth else {}
        return convert(record, {**info, **beam_info(record), **truth})


PYTHIA_CONFIGS: Mapping[str, PythiaConfig] = MappingProxyType({c.name: c for c in (
    PythiaConfig(
        "pp200", "RHIC/sPHENIX p+p minimum bias, sqrt(s) = 200 GeV", "RHIC", "pp200-minbias",
        # All inelastic processes (non-diffractive + single/double/central diffractive):
        # the unbiased collision sample, and what pileup collisions really are; a
        # detector trigger (e.g. the sPHENIX MBD coincidence) can be applied downstream.
        ("Beams:idA = 2212", "Beams:idB = 2212", "Beams:eCM = 200.",
         "SoftQCD:inelastic = on"),
        # Default Detroit: the RHIC tune used for FM4NPP's TPCpp-10M data (arXiv 2508.14087).
        {"tune": "detroit"}),
    PythiaConfig(
        "ee_z", "e+e- -> gamma*/Z -> hadrons (u,d,s,c,b) at sqrt(s) = 91.2 GeV, no ISR",
        "LEP", "ee-Z", (*_EE, "Beams:eCM = 91.2", "PDF:lepton = off", *_Z_TO_QUARKS),
        truth=quark_flavour),
    PythiaConfig(
        "ee_lep2",
        "e+e- at sqrt(s) = 200 GeV with ISR: gamma*/Z -> q qbar (radiative return "
        "included), W+W- (all decays), ZZ -> 4 quarks",
        # Pythia 8.317 sigma at 200 GeV: q qbar 81 pb, WW 17 pb, ZZ 0.6 pb; 23:onMode also
        # restricts the Z's in ZZ to quarks. truth_quark_flavour only for q qbar events.
        "LEP", "ee-lep2",
        (*_EE, "Beams:eCM = 200.", *_Z_TO_QUARKS, "WeakDoubleBoson:ffbar2WW = on",
         "WeakDoubleBoson:ffbar2gmZgmZ = on"),
        truth=quark_flavour),
    PythiaConfig(
        "ep_hera", "ZEUS neutral-current DIS, p 920 GeV (+z) x e 27.5 GeV (-z)", "HERA",
        "ep-NC-DIS", (*_DIS, "Beams:eA = 920.", "Beams:eB = 27.5"), _DIS_OPTIONS,
        dis_kinematics),
    PythiaConfig(
        "ep_eic", "EIC neutral-current DIS, p 275 GeV (+z) x e 18 GeV (-z), no crossing angle",
        "EIC", "ep-NC-DIS", (*_DIS, "Beams:eA = 275.", "Beams:eB = 18."), _DIS_OPTIONS,
        dis_kinematics),
)})
