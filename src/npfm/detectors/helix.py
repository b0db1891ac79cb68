"""Helices in a uniform solenoidal field along +z (lengths cm, momenta GeV, field T).

A particle of charge q (e) and transverse momentum pT moves on a circle of signed
curvature kappa = -q B k / pT (1/cm, positive = counter-clockwise seen from +z); positions
are parameterised by the transverse arc length s (cm), and the turning angle is kappa s.
All functions take and return NumPy arrays (broadcasting).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from npfm.detectors import kernels

Array = npt.NDArray[np.float64]

#: Speed of light in cm/ns (exact: SI definition of the metre).
C_CM_NS = 29.9792458
#: pT [GeV] = 0.299792458 B [T] R [m] for unit charge (Lorentz force with the exact SI c);
#: per cm of radius: 0.299792458e-2 GeV / (T cm).
GEV_PER_T_CM = 0.299792458e-2


def curvature(charge: Array, pt: Array, field_tesla: float | Array) -> Array:
    """Signed curvature (1/cm); the radius is 1/|kappa| = pT / (0.2998 B |q|) * 100 cm."""
    return -GEV_PER_T_CM * field_tesla * charge / pt


def cylinder_crossing(x: Array, y: Array, px: Array, py: Array, kappa: Array, radius: Array,
                      tol: float = 1e-6) -> Array:
    """Smallest transverse arc length s > ``tol`` at which the helix reaches ``radius``.

    Exact: with u = pT/|pT|, n its left normal, a = P.u, b = P.n, D = r^2 - |P|^2 and
    v = tan(kappa s / 2) 2 / kappa, the crossing condition is the quadratic
    (1 + kappa b - kappa^2 D / 4) v^2 + 2 a v - D = 0, solved in a cancellation-free form
    (stable for kappa -> 0). Solutions repeat every turn (2 pi / |kappa|). Returns inf
    where the circle never reaches ``radius`` (or ``radius`` is NaN).
    """
    if kernels.compiled() and np.ndim(radius) == 2 and np.ndim(x) == 1:  # (m, n) radii
        args, disc = kernels.crossing_arguments(x, y, px, py, kappa, radius)
        return kernels.crossing_lengths(np.arctan2(args[0], args[1]), disc, kappa, tol)
    with np.errstate(invalid="ignore", divide="ignore"):
        pt = np.hypot(px, py)
        a = (x * px + y * py) / pt
        b = (y * px - x * py) / pt
        delta = radius * radius - (x * x + y * y)
        quad = 1.0 + kappa * b - 0.25 * kappa * kappa * delta
        disc = a * a + quad * delta
        q = -(a + np.copysign(np.sqrt(disc), a))
        # roots v1 = q / quad and v2 = -delta / q, as angles t = atan(kappa v / 2)
        period = 2.0 * np.pi / np.abs(kappa)
        two_over_kappa = 2.0 / kappa
        s1 = np.mod(np.arctan2(kappa * q, 2.0 * quad) * two_over_kappa, period)
        s2 = np.mod(np.arctan2(-kappa * delta, 2.0 * q) * two_over_kappa, period)
        s1 += period * (s1 <= tol)
        s2 += period * (s2 <= tol)
        s = np.minimum(s1, s2)
        s[~(disc >= 0.0)] = np.inf
    return s


def advance(x: Array, y: Array, z: Array, px: Array, py: Array, pz: Array, kappa: Array,
            s: Array) -> tuple[Array, Array, Array, Array, Array]:
    """Position and transverse momentum after a transverse arc length ``s`` (may be < 0;
    kappa != 0). Returns x, y, z, px, py (pz is unchanged)."""
    pt = np.hypot(px, py)
    psi = kappa * s
    c, sn, half = np.cos(psi), np.sin(psi), np.sin(0.5 * psi)
    along = sn / kappa / pt  # sin(psi) / kappa, per unit of pT
    across = 2.0 * half * half / kappa / pt  # (1 - cos psi) / kappa, per unit of pT
    return (x + along * px - across * py, y + along * py + across * px, z + s * pz / pt,
            c * px - sn * py, sn * px + c * py)


def perigee(x: Array, y: Array, z: Array, px: Array, py: Array, pz: Array, kappa: Array,
            bx: Array | float = 0.0, by: Array | float = 0.0) -> tuple[Array, Array]:
    """Transverse and longitudinal impact parameters (d0, z0) in cm w.r.t. the beam line
    through (bx, by) parallel to z.

    The point of closest approach satisfies a cos(psi) + (b + 1/kappa) sin(psi) = 0, i.e.
    psi = atan2(-a kappa, 1 + b kappa). d0 is signed like (r x p)_z there; z0 is its z.
    """
    x, y = x - bx, y - by
    pt = np.hypot(px, py)
    ux, uy = px / pt, py / pt
    a, b = x * ux + y * uy, y * ux - x * uy
    s = np.arctan2(-a * kappa, 1.0 + b * kappa) / kappa
    x0, y0, z0, px0, py0 = advance(x, y, z, px, py, pz, kappa, s)
    return (x0 * py0 - y0 * px0) / pt, z0
