"""Helix fits of a track's hits (cm) in a solenoid: circle in (x, y), line in (s, z).

The circle is the algebraic least-squares fit (Kasa, IEEE Trans. Instrum. Meas. 25
(1976) 8); the dip from a straight-line fit of z against the transverse arc length from
the beam line, s = 2 R asin(r / 2R); pT = 0.3 B R (GeV, T, m).
"""

from __future__ import annotations

import numpy as np

from npfm.detectors.helix import GEV_PER_T_CM


def circle_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Centre (cm) and radius (cm) of the least-squares algebraic circle through (x, y)."""
    a = np.column_stack([x, y, np.ones_like(x)])
    (bx, by, c), *_ = np.linalg.lstsq(a, x ** 2 + y ** 2, rcond=None)
    cx, cy = bx / 2, by / 2
    return float(cx), float(cy), float(np.sqrt(max(c + cx ** 2 + cy ** 2, 0.0)))


def arc_length(r: np.ndarray, radius: float) -> np.ndarray:
    """Transverse arc length (cm) from the beam line to radius ``r`` on a circle of
    ``radius`` through the beam line (``r`` itself for a straight track)."""
    return 2 * radius * np.arcsin(np.clip(r / (2 * radius), 0, 1)) if radius > 0 else r


def helix_fit(x: np.ndarray, y: np.ndarray, z: np.ndarray
              ) -> tuple[float, float, float, float, float]:
    """(cx, cy, R, tan_dip, z0): circle centre and radius (cm), and z = z0 + tan_dip s."""
    cx, cy, radius = circle_fit(x, y)
    s = arc_length(np.hypot(x, y), radius)
    if np.ptp(s) > 0:
        tan_dip, z0 = np.polyfit(s, z, 1)
    else:
        tan_dip, z0 = np.nan, np.nan
    return cx, cy, radius, float(tan_dip), float(z0)


def fitted_momentum(x: np.ndarray, y: np.ndarray, z: np.ndarray, field_tesla: float
                    ) -> tuple[float, float, float]:
    """(pT, p) in GeV and |tan dip| of a track from the beam line, from its hits (cm)."""
    if len(x) < 3 or field_tesla <= 0:
        return np.nan, np.nan, np.nan
    _, _, radius, tan_dip, _ = helix_fit(x, y, z)
    pt = GEV_PER_T_CM * field_tesla * radius
    return pt, pt * float(np.hypot(1.0, tan_dip)), abs(tan_dip)
