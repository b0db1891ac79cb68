"""Parametrised shower profiles, vectorised over showers: longitudinal depth and lateral
radius of energy spots (each carrying an equal share of the shower's energy).

Electromagnetic: G. Grindhammer and S. Peters, "The parameterized simulation of
electromagnetic showers in homogeneous and sampling calorimeters", arXiv:hep-ex/0001020
(homogeneous-media parameters; values as in Geant4 GFlash, GVFlashHomoShowerTuning).
Each shower draws correlated log-normal (T, alpha) of a gamma-distribution profile in
radiation lengths; spots are spread radially with the two-component (core, tail) profile
f(r) = 2 r R^2 / (r^2 + R^2)^2 in Moliere radii.

Hadronic (a simple, documented parametrisation): the first interaction at an exponential
depth (mean 1 lambda_I); then a gamma profile in lambda_I whose maximum lies at
t_max = 0.2 ln(E/GeV) + 0.7 and whose tail falls with lambda_att = lambda_I (E/GeV)^0.13
(C.W. Fabjan and F. Gianotti, Rev. Mod. Phys. 75 (2003) 1243); the lateral profile has the
same form with R = lambda_I / sqrt(19), i.e. 95 % of the energy within one lambda_I (ibid.).
The electromagnetic fraction f_em = 1 - (E / 1 GeV)^(0.83 - 1) (D.E. Groom, NIM A 572
(2007) 633) sets the response on the electromagnetic scale, f_em + (1 - f_em) h/e.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
from scipy.special import gammainc, gammaincinv

from npfm.detectors import calo_kernels, kernels

Array = npt.NDArray[np.float64]

#: Grindhammer-Peters, homogeneous media: <ln T> = ln(ln y + T1), <ln alpha> =
#: ln(A1 + (A2 + A3 / Z) ln y), sigma = 1 / (S1 + S2 ln y), rho = R1 + R2 ln y.
GP_T1, GP_A1, GP_A2, GP_A3 = -0.812, 0.81, 0.458, 2.26
GP_SIG_T, GP_SIG_A, GP_RHO = (-1.4, 1.26), (-0.58, 0.86), (0.705, -0.023)
#: Average profile (fit to the mean of many showers): T = ln y - 0.858,
#: alpha = 0.21 + (0.492 + 2.38 / Z) ln y.
GP_AVG_T, GP_AVG_A = -0.858, (0.21, 0.492, 2.38)
#: Radial: R_C = z1 + z2 tau, R_T = k1 (exp(k3 (tau - k2)) + exp(k4 (tau - k2))),
#: p = p1 exp((p2 - tau)/p3 - exp((p2 - tau)/p3)), tau = t / T (Z, ln E/GeV terms below).
GP_RC = (0.0251, 0.00319, 0.1162, -0.000381)
GP_RT = (0.659, -0.00309, 0.645, -2.59, 0.3585, 0.0412)
GP_P = (2.632, -0.00094, 0.401, 0.00187, 1.313, -0.0686)
#: Lowest ln y used (about 60 MeV in tungsten): below it the fluctuation fits diverge.
MIN_LN_Y = 2.0
#: Largest cumulative probability drawn for a radius (cuts the 1/r^3 tail at ~30 R).
MAX_RADIAL_U = 0.999
#: Hadronic showers (Fabjan and Gianotti 2003; Groom 2007), see the module docstring.
HAD_TMAX, HAD_ATT_EXP, HAD_R95 = (0.2, 0.7), 0.13, 1.0 / np.sqrt(19.0)
FEM_E0_GEV, FEM_M = 1.0, 0.83
#: Shapes at which the gamma quantiles are tabulated (clipped outside).
ALPHA_GRID = np.linspace(1.0, 30.0, 581)


def gp_average(energy: Array, critical: float, z: float) -> tuple[Array, Array]:
    """(alpha, beta) of Grindhammer-Peters' average longitudinal profile (beta per X0)."""
    ln_y = np.maximum(np.log(energy / critical), MIN_LN_Y)
    t_max = ln_y + GP_AVG_T
    alpha = GP_AVG_A[0] + (GP_AVG_A[1] + GP_AVG_A[2] / z) * ln_y
    return alpha, (alpha - 1.0) / t_max


def containment(alpha: Array, beta: Array, depth: float) -> Array:
    """Fraction of a gamma profile within ``depth`` (same unit as 1/beta)."""
    return np.asarray(gammainc(alpha, beta * depth))


def em_spots(energy: Array, critical: float, z: float, n_spots: int,
             rng: np.random.Generator) -> tuple[Array, Array]:
    """Depths (X0) and radii (Moliere radii) of ``n_spots`` spots per shower, shower-major
    order (spots of shower i at i * n_spots ...)."""
    depth, scale = em_profile(energy, critical, z, n_spots, rng)
    return depth, lateral_radius(scale, rng)


def em_profile(energy: Array, critical: float, z: float, n_spots: int,
               rng: np.random.Generator) -> tuple[Array, Array]:
    """Depths (X0) of the spots as in ``em_spots``, and the scale R (Moliere radii) of the
    lateral profile each spot draws its radius from (core or tail)."""
    ln_y = np.maximum(np.log(energy / critical), MIN_LN_Y)
    z1, z2 = rng.standard_normal((2, len(energy)))
    rho = GP_RHO[0] + GP_RHO[1] * ln_y
    log_t = np.log(ln_y + GP_T1) + z1 / (GP_SIG_T[0] + GP_SIG_T[1] * ln_y)
    log_a = np.log(GP_A1 + (GP_A2 + GP_A3 / z) * ln_y) + \
        (rho * z1 + np.sqrt(1.0 - rho * rho) * z2) / (GP_SIG_A[0] + GP_SIG_A[1] * ln_y)
    t_max, alpha = np.exp(log_t), np.maximum(np.exp(log_a), 1.05)
    beta = (alpha - 1.0) / t_max
    depth = _stratified_gamma(alpha, beta, n_spots)
    tau = depth / np.repeat(t_max, n_spots)
    ln_e = np.repeat(np.log(energy), n_spots)
    r_core = GP_RC[0] + GP_RC[1] * ln_e + (GP_RC[2] + GP_RC[3] * z) * tau
    k4 = GP_RT[4] + GP_RT[5] * ln_e
    r_tail = (GP_RT[0] + GP_RT[1] * z) * (np.exp(GP_RT[3] * (tau - GP_RT[2]))
                                          + np.exp(k4 * (tau - GP_RT[2])))
    arg = (GP_P[2] + GP_P[3] * z - tau) / (GP_P[4] + GP_P[5] * ln_e)
    p_core = np.clip((GP_P[0] + GP_P[1] * z) * np.exp(arg - np.exp(arg)), 0.0, 1.0)
    return depth, np.where(rng.random(len(tau)) < p_core, r_core, r_tail)


def hadron_spots(energy: Array, n_spots: int, rng: np.random.Generator
                 ) -> tuple[Array, Array, Array]:
    """First-interaction depth per shower, and depths and radii of the spots (all in
    interaction lengths), shower-major order."""
    e = np.maximum(energy, 0.1)
    first = rng.exponential(1.0, len(e))
    beta = 1.0 / e ** HAD_ATT_EXP
    alpha = 1.0 + beta * np.maximum(HAD_TMAX[0] * np.log(e) + HAD_TMAX[1], 0.1)
    depth = np.repeat(first, n_spots) + _stratified_gamma(alpha, beta, n_spots)
    return first, depth, lateral_radius(np.full(len(depth), HAD_R95), rng)


def em_fraction(energy: Array) -> Array:
    """Mean electromagnetic fraction of a hadron shower of ``energy`` GeV."""
    return np.clip(1.0 - (np.maximum(energy, FEM_E0_GEV) / FEM_E0_GEV) ** (FEM_M - 1.0),
                   0.0, 1.0)


@cache
def _quantiles(n_spots: int) -> Array:
    """Gamma quantiles at the stratum midpoints (j + 1/2) / n_spots, one row per shape on
    ``ALPHA_GRID``."""
    q = (np.arange(n_spots) + 0.5) / n_spots
    return np.asarray(gammaincinv(ALPHA_GRID[:, None], q[None, :]))


def _stratified_gamma(alpha: Array, beta: Array, n_spots: int) -> Array:
    """Spot depths of each shower's gamma profile, one per quantile stratum (interpolated
    in the shape): the energy fraction in any depth range then follows the profile to
    1/n_spots, without the binomial noise of independent draws."""
    pos = np.interp(alpha, ALPHA_GRID, np.arange(len(ALPHA_GRID)))
    lo = np.minimum(pos.astype(np.int64), len(ALPHA_GRID) - 2)
    table = _quantiles(n_spots)
    if kernels.compiled():
        return calo_kernels.stratified(table, lo, pos - lo, beta)
    w = (pos - lo)[:, None]
    return np.asarray(((1.0 - w) * table[lo] + w * table[lo + 1]) / beta[:, None]).ravel()


def lateral_radius(scale: Array, rng: np.random.Generator) -> Array:
    """Radii drawn from f(r) = 2 r R^2 / (r^2 + R^2)^2 (CDF r^2 / (r^2 + R^2))."""
    u = rng.random(len(scale)) * MAX_RADIAL_U
    return scale * np.sqrt(u / (1.0 - u))
