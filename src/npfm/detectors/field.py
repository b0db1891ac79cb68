"""Field regions of the fast simulation: a hard-edged solenoid.

A geometry may give ``field_half_length_cm`` L: the axial field ``field_tesla`` then fills
|z| < L only, and tracks run straight beyond (e.g. CLAS12's forward drift chambers, whose
toroidal field is not modelled). Propagation steps end on the two planes |z| = L
(material-free passive disks added by the loader), so the field is constant along each
step. The helix code needs a non-zero curvature: outside the solenoid a residual
``RESIDUAL_TESLA`` stands in for no field (sagitta < 10 um over 5 m for pT > 0.1 GeV).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Field (T) standing in for "no field" outside a hard-edged solenoid.
RESIDUAL_TESLA = 1e-6
#: Radius (cm) of the field-boundary disks: beyond any tracking detector.
_BOUNDARY_RADIUS_CM = 1e4


def field_along(field_tesla: float, half_length: float, z: npt.NDArray[np.float64],
                pz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Axial field (T) for the step of each particle starting at ``z`` (cm) with
    longitudinal momentum ``pz``: inside the solenoid, or leaving a boundary plane
    inwards, ``field_tesla``; otherwise ``RESIDUAL_TESLA``."""
    ahead = z + np.sign(pz) * 1e-6  # a particle on a boundary plane: the side it moves to
    return np.where(np.abs(ahead) < half_length, field_tesla, RESIDUAL_TESLA)


def boundary_disks(half_length: float) -> dict[str, Any]:
    """Layer-table columns of the two material-free disks at z = -L and +L (cm)."""
    z = np.array([-half_length, half_length])
    zeros, ones = np.zeros(2), np.ones(2)
    return {
        "radius": zeros, "half_length": zeros, "is_disk": np.ones(2, bool), "z": z,
        "r_min": zeros, "r_max": np.full(2, _BOUNDARY_RADIUS_CM), "x_over_x0": zeros,
        "material_thickness": zeros, "z_over_a": ones * 0.5, "density": ones,
        "mean_excitation_mev": ones * 1e-4, "x0_g_cm2": ones, "collision_min_mev": zeros,
        "collision_max_mev": zeros, "collision_exponent": zeros,
        "sensitive": np.zeros(2, bool),
    }
