"""Heavy-ion collisions with Pythia 8.317's Angantyr model, with a centrality selection.

Angantyr (C. Bierlich, G. Gustafson, L. Lönnblad, H. Shah, JHEP 10 (2018) 134,
arXiv:1806.10820; Pythia 8.317 manual, "Heavy Ion Collisions") stacks nucleon-nucleon
sub-collisions; ``setups/InitDefaultAngantyr.cmnd`` (shipped with Pythia, grid for 20 GeV -
20 PeV) replaces the ~25 s fit of its nucleon-fluctuation model at start-up.

Centrality: option ``b_max_fm`` (fm; default 0, minimum bias) keeps impact parameters
b <= b_max, sampled uniformly in the transverse plane (density ~ b db, i.e. geometric),
through the manual's ``HeavyIon:bWidth`` = b_max, ``HeavyIon:bWidthCut`` = 1 and
``HeavyIon:forceUnitWeight = on`` (``ImpactParameterGenerator::generate`` then draws
b = bWidth * bWidthCut * sqrt(U), every event with unit weight; a bWidthCut left at its
default 3 would be replaced by sqrt(-2 ln 0.01) for backward compatibility, hence 1 here).
``CENTRAL_B_MAX_FM`` gives the 0-5 % class of each system.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from npfm.physics.configs import PythiaConfig
from npfm.physics.record import GeneratedEvent

_ANGANTYR = ("HeavyIon:mode = 1", "include = setups/InitDefaultAngantyr.cmnd")


def geometric_b_max(fraction: float, sigma_inel_b: float) -> float:
    """b (fm) bounding the ``fraction`` most central collisions in the geometric (sharp
    cut-off) approximation c = pi b^2 / sigma_inel (W. Broniowski, W. Florkowski, Phys.
    Rev. C 65 (2002) 024905); ``sigma_inel_b`` in barn (1 b = 100 fm^2)."""
    return math.sqrt(fraction * sigma_inel_b * 100.0 / math.pi)


#: b_max (fm) of the 0-5 % most central collisions from the geometric relation: Pb+Pb
#: 5.02 TeV with the Monte Carlo Glauber sigma_inel = 7.67 b of C. Loizides, J. Kamin,
#: D. d'Enterria, Phys. Rev. C 97 (2018) 054910 (-> 3.49 fm; ALICE's Glauber fit gives
#: 0-3.50 fm for 0-5 % at 2.76 TeV, Phys. Rev. C 88 (2013) 044909); Au+Au 200 GeV with
#: sigma_inel = 6.85 b, approx. (Glauber with sigma_NN = 42 mb; not checked against a
#: table here) -> 3.30 fm. The central dN_ch/deta test checks both against data.
CENTRAL_B_MAX_FM: Mapping[str, float] = MappingProxyType({
    "pbpb5020": round(geometric_b_max(0.05, 7.67), 2),
    "auau200": round(geometric_b_max(0.05, 6.85), 2),
})


@dataclass(frozen=True)
class HeavyIonConfig(PythiaConfig):
    """An Angantyr configuration with the ``b_max_fm`` centrality option. Its shards are
    small by default: a simulated central event holds 0.25 (Au+Au, sPHENIX) to 0.37 GB
    (Pb+Pb, ALICE) until its shard is written (docs/performance.md)."""

    def defaults(self) -> dict[str, Any]:
        return {**super().defaults(), "b_max_fm": 0.0}

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        o = super().check(options)
        b = o["b_max_fm"]
        if isinstance(b, bool) or not isinstance(b, int | float) or not b >= 0:
            raise ValueError(f"option b_max_fm must be a non-negative number (fm; 0: minimum "
                             f"bias), got {b!r}")
        o["b_max_fm"] = float(b)
        return o

    def pythia_settings(self, options: Mapping[str, Any]) -> list[str]:
        settings = super().pythia_settings(options)
        if options["b_max_fm"] > 0:
            settings += [f"HeavyIon:bWidth = {options['b_max_fm']}",
                         "HeavyIon:bWidthCut = 1.0", "HeavyIon:forceUnitWeight = on"]
        return settings


HEAVY_ION_CONFIGS: Mapping[str, HeavyIonConfig] = MappingProxyType({c.name: c for c in (
    HeavyIonConfig(
        "auau200", "Au+Au at sqrt(s_NN) = 200 GeV, Pythia Angantyr (b_max_fm: centrality)",
        "RHIC", "AuAu200-minbias",
        ("Beams:idA = 1000791970", "Beams:idB = 1000791970", "Beams:eCM = 200.",
         *_ANGANTYR), shard_events=20),
    HeavyIonConfig(
        "pbpb5020", "Pb+Pb at sqrt(s_NN) = 5.02 TeV, Pythia Angantyr (b_max_fm: centrality)",
        "LHC", "PbPb5020-minbias",
        ("Beams:idA = 1000822080", "Beams:idB = 1000822080", "Beams:eCM = 5020.",
         *_ANGANTYR), shard_events=10),
)})


#: Published dN_ch/deta at mid-rapidity of the 0-5 % most central collisions (value, error):
#: Pb+Pb 5.02 TeV, ALICE, Phys. Rev. Lett. 116 (2016) 222302 (|eta| < 0.5); Au+Au 200 GeV,
#: PHENIX, Phys. Rev. C 71 (2005) 034908, Table (dN_ch/deta at eta = 0).
CENTRAL_DNDETA: Mapping[str, tuple[float, float]] = MappingProxyType({
    "pbpb5020": (1943.0, 54.0), "auau200": (687.0, 37.0),
})


def dndeta_mid(event: GeneratedEvent, eta_max: float = 0.5) -> float:
    """Final-state charged particles per unit pseudorapidity in |eta| < ``eta_max``.

    With the default ``long_lived_decays = False`` (c tau > 1 cm undecayed), the final
    charged particles are the primaries of ALICE's definition (charged, c tau > 1 cm, weak
    decay products excluded; ALICE-PUBLIC-2017-005)."""
    charged = event.final & (event.charge != 0)
    pt = np.hypot(event.px[charged], event.py[charged])
    eta = np.arcsinh(event.pz[charged] / np.maximum(pt, 1e-12))
    return float((np.abs(eta) < eta_max).sum() / (2 * eta_max))
