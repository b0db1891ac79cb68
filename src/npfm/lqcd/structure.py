"""Ensemble summaries of nucleon correlators: effective mass, isovector charges and the
vector form-factor ratio at non-zero momentum, with jackknife errors (lattice units).

Isovector (u - d, connected) ratios at zero momentum transfer, formed from the ensemble
(and jackknife) averages of C3 and C2 and plateau-fitted over 1 <= tau <= t_s - 1
(``npfm.lqcd.fits``):

- ``gV_conserved``: conserved J_4, P+; equals 1 exactly for the charge (Ward identity),
  up to states wrapping around the time boundary;
- ``gV_local``: local V_4, P+; equals 1 / Z_V (Z_V: renormalisation of the local current,
  e.g. Z_V = 1 + a m0 + O(g^2) for free Wilson quarks at rest);
- ``gA_local``: local A_3, P_3, divided by i; bare, multiply by Z_A for g_A.

At lattice momenta q = 2 pi n / L (sink at rest) ``V4_q<nx><ny><nz>`` is the ratio of the local V_4,
proportional to the electric form factor G_E(Q^2) (bare, kinematic factor
sqrt(2 E_p / (E_p + m)) not divided out). C2 at p = -q is taken as C2 at +q (equal in the
ensemble average by parity).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npfm.lqcd import fits
from npfm.lqcd.baryons import NucleonData, momentum_key

ZERO = momentum_key((0, 0, 0))


def _isovector(data: list[NucleonData], key: str, t_sink: int) -> np.ndarray:
    """C3_u - C3_d [n, t_s + 1] for ``key`` = projector/current/{flavour}/momentum."""
    return np.stack([d.three_point[key.format(flavour="u")][: t_sink + 1]
                     - d.three_point[key.format(flavour="d")][: t_sink + 1] for d in data])


def nucleon_summary(data: list[NucleonData], t_sink: int,
                    momenta: tuple[tuple[int, int, int], ...]
                    ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """(summary for measurements.json, per-configuration arrays to export, plot inputs)."""
    c2 = {n: np.stack([d.two_point[f"P+/{momentum_key(n)}"].real for d in data])
          for n in momenta}
    rest = c2[(0, 0, 0)]
    mass_fit = fits.effective_mass_fit(rest)
    m_eff, m_err = fits.jackknife(rest, fits.log_mass)
    numerators = {
        "gV_conserved": _isovector(data, f"P+/J4/{{flavour}}/{ZERO}", t_sink).real,
        "gV_local": _isovector(data, f"P+/V4/{{flavour}}/{ZERO}", t_sink).real,
        "gA_local": (_isovector(data, f"P3/A3/{{flavour}}/{ZERO}", t_sink) / 1j).real}
    for n in momenta[1:]:
        key = f"P+/V4/{{flavour}}/{momentum_key(n)}"
        numerators[f"V4_q{''.join(map(str, n))}"] = _isovector(data, key, t_sink).real
    ratios, plateaus = {}, {}
    for name, c3 in numerators.items():
        n = next((m for m in momenta if name == f"V4_q{''.join(map(str, m))}"), (0, 0, 0))
        full, jack = fits.ratio_samples(c3, rest, c2[n], t_sink)
        fit = fits.plateau_fit(full, jack, t_sink)
        ratio_err = fits.spread(jack) if len(jack) > 1 else np.full_like(full, np.nan)
        ratios[name] = {"ratio": full.tolist(), "ratio_error": fits.finite(ratio_err),
                        "plateau": None if fit is None else
                        {k: v for k, v in fit.items() if not k.startswith("ratio")}}
        if fit is not None:
            plateaus[name] = fit
    summary = {
        "t_sink": t_sink, "momenta_2pi_over_L": [list(n) for n in momenta],
        "correlator": rest.mean(axis=0).tolist(),
        "effective_mass": fits.finite(m_eff), "effective_mass_error": fits.finite(m_err),
        "mass_fit": mass_fit, "fit_range_criterion": {
            "max_relative_error": fits.MAX_REL_ERROR, "min_points": fits.MIN_POINTS,
            "max_chi2_dof": fits.MAX_CHI2},
        "ratios": ratios,
        "notes": "isovector connected; bare local currents; lattice units"}
    arrays = {"nucleon": rest,
              **{f"nucleon_q{''.join(map(str, n))}": c2[n] for n in momenta[1:]},
              **{f"nucleon_3pt_{k}": v for k, v in numerators.items()}}
    half = rest.shape[1] // 2  # beyond T/2 backward-moving states dominate
    plot = {"mass": (m_eff[:half], m_err[:half], mass_fit),
            "ratios": {k: v for k, v in plateaus.items() if "_q" not in k}}
    return summary, arrays, plot
