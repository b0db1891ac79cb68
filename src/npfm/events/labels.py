"""Derived per-hit labels in the FM4NPP scheme (arXiv 2508.14087, section on labels).

PID: 0 other, 1 pi+-, 2 K+-, 3 p/pbar, 4 e+-. Noise: the hit's particle has transverse
momentum below 0.06 GeV. Both are constant along a truth track.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: FM4NPP low-momentum threshold, GeV/c.
NOISE_PT_GEV = 0.06

_PID_BY_ABS_PDG = {211: 1, 321: 2, 2212: 3, 11: 4}


def pid_class(pdg: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """FM4NPP PID class of each PDG id."""
    apdg = np.abs(np.asarray(pdg, dtype=np.int64))
    out = np.zeros(apdg.shape, dtype=np.int8)
    for code, cls in _PID_BY_ABS_PDG.items():
        out[apdg == code] = cls
    return out


def low_pt_noise(px: npt.ArrayLike, py: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True where the transverse momentum (GeV) is below ``NOISE_PT_GEV``."""
    return np.hypot(np.asarray(px, np.float64), np.asarray(py, np.float64)) < NOISE_PT_GEV


def hit_labels(hit_particle: npt.ArrayLike, particle_pdg: npt.ArrayLike,
               particle_px: npt.ArrayLike, particle_py: npt.ArrayLike
               ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """PID class and noise tag of each hit, from its truth particle (-1 = noise hit).

    Noise hits (particle -1) get PID class 0 and noise tag True.
    """
    idx = np.asarray(hit_particle, dtype=np.int64)
    real = idx >= 0
    pid = np.zeros(idx.shape, dtype=np.int8)
    noise = np.ones(idx.shape, dtype=bool)
    pid[real] = pid_class(np.asarray(particle_pdg)[idx[real]])
    noise[real] = low_pt_noise(np.asarray(particle_px)[idx[real]],
                               np.asarray(particle_py)[idx[real]])
    return pid, noise
