"""Truncated-mean dE/dx of tracks from stored hits (``hit_edep``), as a TPC measures it.

``hit_edep`` is the energy deposited over the particle's path through the pad row: the
row length (the layer's ``sensitive_thickness_cm``) over the cosine of the incidence
angle, so it grows with the dip angle and, for curved tracks, with the crossing angle in
the transverse plane. A TPC divides each cluster charge by that path (known from the
track fit) and averages the lowest ``fraction`` of the samples (the truncated mean cuts
the Landau tail). Here the path comes from the truth momentum at production, for a track
from the beam line: 1 / (sin theta cos psi) per unit row length, sin psi = r / 2R,
R = pT / (0.3 B).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from npfm.detectors.helix import GEV_PER_T_CM
from npfm.detectors.tables import Geometry

#: Fraction of the lowest samples kept by the truncated mean (ALICE and sPHENIX-like TPCs
#: keep 60-70 %; approx.).
TRUNCATION = 0.7
#: Smallest cos psi used for the path correction (grazing crossings of loopers).
_COS_MIN = 0.2


def row_lengths(geometry: Geometry, subsystem: str = "TPC") -> npt.NDArray[np.float64]:
    """Sensitive thickness (cm) of each layer of ``subsystem``, indexed by ``hit_layer``."""
    lay = geometry.layers
    rows = np.flatnonzero(lay.subsystem == geometry.subsystems.index(subsystem))
    out = np.zeros(int(lay.layer[rows].max()) + 1)
    out[lay.layer[rows]] = lay.thickness[rows]
    return out


def path_factor(r: npt.ArrayLike, pt: npt.ArrayLike, p: npt.ArrayLike,
                field_tesla: float) -> npt.NDArray[np.float64]:
    """Path per unit radial thickness, 1 / (sin theta cos psi), at radius ``r`` (cm) of a
    track of transverse and total momentum ``pt``, ``p`` (GeV) from the beam line."""
    r, pt, p = (np.asarray(a, np.float64) for a in (r, pt, p))
    radius = pt / (GEV_PER_T_CM * field_tesla)  # cm
    sin_psi = np.minimum(r / (2.0 * radius), 1.0)
    cos_psi = np.maximum(np.sqrt(1.0 - sin_psi ** 2), _COS_MIN)
    return p / pt / cos_psi


def truncated_mean(values: npt.ArrayLike, fraction: float = TRUNCATION) -> float:
    """Mean of the lowest ``fraction`` of ``values`` (at least one); NaN if empty."""
    v = np.sort(np.asarray(values, np.float64))
    if len(v) == 0:
        return float("nan")
    return float(v[: max(int(fraction * len(v)), 1)].mean())


def event_dedx(event: Mapping[str, Any], geometry: Geometry, *, subsystem: str = "TPC",
               fraction: float = TRUNCATION, min_hits: int = 10
               ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Truncated-mean dE/dx (keV/cm) of every truth particle of one event (an event-model
    mapping: ``hit_*`` and ``particle_*`` columns) from its ``subsystem`` hits, and the
    number of those hits; NaN for particles with fewer than ``min_hits``."""
    hits_particle = np.asarray(event["hit_particle"], np.int64)
    sub = np.asarray(event["hit_subsystem"]) == subsystem
    mine = sub & (hits_particle >= 0)
    k = hits_particle[mine]
    px, py, pz = (np.asarray(event[f"particle_{c}"], np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    p = np.sqrt(pt ** 2 + pz ** 2)
    r = np.hypot(np.asarray(event["hit_x"], np.float64)[mine],
                 np.asarray(event["hit_y"], np.float64)[mine])
    length = row_lengths(geometry, subsystem)[np.asarray(event["hit_layer"], np.int64)[mine]]
    with np.errstate(divide="ignore", invalid="ignore"):
        dedx = np.asarray(event["hit_edep"], np.float64)[mine] * 1e6 / (
            length * path_factor(r, pt[k], p[k], geometry.field_tesla))
    n = len(px)
    counts = np.bincount(k, minlength=n)
    out = np.full(n, np.nan)
    order = np.argsort(k, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(counts)))
    for i in np.flatnonzero(counts >= min_hits):
        out[i] = truncated_mean(dedx[order[bounds[i]:bounds[i + 1]]], fraction)
    return out, counts


def allison_cobb(n_samples: npt.ArrayLike, sample_cm: npt.ArrayLike,
                 pressure_atm: float = 1.0) -> npt.NDArray[np.float64]:
    """Empirical truncated-mean dE/dx resolution of argon-based gas detectors,
    0.41 N^-0.43 (x P)^-0.32 with x in cm and P in atm (W. W. M. Allison and J. H. Cobb,
    Ann. Rev. Nucl. Part. Sci. 30 (1980) 253)."""
    n, x = np.asarray(n_samples, np.float64), np.asarray(sample_cm, np.float64)
    return 0.41 * n ** -0.43 * (x * pressure_atm) ** -0.32
