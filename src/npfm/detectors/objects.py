"""Reconstructed objects: smeared charged tracks and calorimeter neutrals.

- Charged final particles with at least ``min_hits`` hits become tracks: pT smeared with
  sigma(pT)/pT = a pT (+) b (+) c/pT (direction kept), d0 / z0 (perigee of the true
  helix w.r.t. the beam line through the event vertex; z0 is the absolute z there)
  smeared with a (+) b / (p sin^(3/2) theta). Type electron / muon / charged_track from
  the truth species; mass hypothesis e, mu or pi (as in ALEPH energy-flow objects).
- Final photons (em calorimeter) and neutral hadrons (hadron calorimeter, if the geometry
  has one) within |eta| < eta_max: energy smeared with stochastic/sqrt(E) (+) constant,
  massless, along the true direction; d0 / z0 null. Neutrinos leave nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from npfm.detectors.decays import MASS_GEV, Particles
from npfm.detectors.helix import curvature, perigee
from npfm.detectors.tables import Geometry

Array = npt.NDArray[np.float64]
#: Lepton masses in GeV (PDG 2024).
_ELECTRON, _MUON = 0.51099895e-3, 0.1056583755
_NEUTRINOS = (12, 14, 16)


def _resolution(energy: Array, calo: tuple[float, float, float]) -> Array:
    return np.sqrt(calo[1] ** 2 / energy + calo[2] ** 2)


def reconstruct(particles: Particles, nhits: npt.NDArray[np.int64], geometry: Geometry,
                beam_x: Array, beam_y: Array, rng: np.random.Generator, smear: bool = True
                ) -> tuple[dict[str, Any], npt.NDArray[np.int64]]:
    """Object columns (``object_*``) of a batch and the particle index of each object.

    ``nhits`` is (particles, subsystems); ``beam_x/y`` give the beam line per particle.
    """
    res = geometry.resolution
    pt = np.hypot(particles.px, particles.py)
    p = np.hypot(pt, particles.pz)
    apdg = np.abs(particles.pdg)
    charged = particles.final & (particles.charge != 0) & (nhits.sum(axis=1) >= res.min_hits)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(particles.pz / pt)
    neutral = particles.final & (particles.charge == 0) & ~np.isin(apdg, _NEUTRINOS)

    def seen(calo: tuple[float, float, float] | None) -> npt.NDArray[np.bool_]:
        return neutral & (np.abs(eta) < calo[0]) if calo is not None else np.zeros_like(neutral)

    photon, hadron = seen(res.em) & (apdg == 22), seen(res.hadron) & (apdg != 22)
    index = np.flatnonzero(charged | photon | hadron)
    trk = charged[index]
    gauss = rng.standard_normal((3, len(index))) if smear else np.zeros((3, len(index)))

    pt_i, p_i, pz_i = pt[index], p[index], particles.pz[index]
    sigma_pt = np.sqrt((res.pt_a * pt_i) ** 2 + res.pt_b ** 2 + (res.pt_c / pt_i) ** 2)
    energy = particles.energy[index]
    calo_sigma = np.zeros(len(index))
    for mask, calo in ((photon[index], res.em), (hadron[index], res.hadron)):
        if calo is not None and mask.any():
            calo_sigma[mask] = _resolution(energy[mask], calo)
    scale = np.where(trk, np.abs(1.0 + sigma_pt * gauss[0]),
                     np.maximum(energy * (1.0 + calo_sigma * gauss[0]), 0.0) / p_i)

    kappa = curvature(particles.charge[index], pt_i, geometry.field_tesla)
    with np.errstate(divide="ignore", invalid="ignore"):
        d0, z0 = perigee(particles.vx[index], particles.vy[index], particles.vz[index],
                         particles.px[index], particles.py[index], pz_i, kappa,
                         beam_x[index], beam_y[index])
    sin_theta = pt_i / p_i
    weight = 1.0 / (p_i * sin_theta ** 1.5)
    d0 = d0 + np.hypot(res.d0_a, res.d0_b * weight) * gauss[1]
    z0 = z0 + np.hypot(res.z0_a, res.z0_b * weight) * gauss[2]

    kind = np.where(apdg[index] == 11, "electron",
                    np.where(apdg[index] == 13, "muon", "charged_track"))
    kind = np.where(trk, kind, np.where(photon[index], "photon", "neutral_hadron"))
    mass = np.select([~trk, apdg[index] == 11, apdg[index] == 13],
                     [0.0, _ELECTRON, _MUON], MASS_GEV[211])
    nulls = np.full(len(index), None, dtype=object)
    columns = {
        "object_px": particles.px[index] * scale, "object_py": particles.py[index] * scale,
        "object_pz": pz_i * scale, "object_mass": mass,
        "object_charge": particles.charge[index], "object_type": kind,
        "object_d0": np.where(trk, d0, nulls), "object_z0": np.where(trk, z0, nulls),
        "object_nhits": np.where(trk[:, None], nhits[index], 0),
    }
    return columns, index
