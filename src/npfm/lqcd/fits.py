"""Jackknife fits: effective masses with an automatic fit range, and plateaus of the ratio of
three- to two-point functions. Lattice units.

Ratio (sink momentum 0, source momentum p = -q; Hägler, Phys. Rept. 490 (2010) 49;
Göckeler et al., Phys. Rev. D 71 (2005) 034508):

    R(tau) = C3(tau) / C2(t_s; 0) * sqrt[ C2(t_s - tau; p) C2(tau; 0) C2(t_s; 0)
                                       / (C2(t_s - tau; 0) C2(tau; p) C2(t_s; p)) ],

which is C3(tau) / C2(t_s) at q = 0 and tends to the matrix element for
0 << tau << t_s; it is formed from ensemble averages (and jackknife samples) of C3 and
C2. Fits are uncorrelated constant fits, weights 1/sigma^2 from the full sample's
jackknife errors, repeated on every jackknife sample for the error (Efron,
SIAM 1982; e.g. Gattringer and Lang 2010, sect. 4.5); chi^2/dof is the uncorrelated one.

Fit-range criterion of effective-mass fits: t_max is the last t < T/2 at which the
correlators C(t), C(t+1) both have a relative jackknife error below ``MAX_REL_ERROR``;
t_min is the smallest t with at least ``MIN_POINTS`` points up to t_max whose fit has
chi^2/dof <= ``MAX_CHI2``; if no start qualifies, the latest start is used and flagged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MAX_REL_ERROR = 0.25
MIN_POINTS = 2
MAX_CHI2 = 1.5


def leave_one_out(samples: np.ndarray) -> np.ndarray:
    """Jackknife means [n, ...] of samples [n, ...], each leaving one configuration out."""
    n = samples.shape[0]
    return (samples.sum(axis=0) - samples) / (n - 1)


def jackknife(samples: np.ndarray, func: Callable[[np.ndarray], np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Jackknife mean and error of func(mean over configurations), samples [n, ...]."""
    full = np.asarray(func(samples.mean(axis=0)))
    if samples.shape[0] < 2:
        return full, np.full_like(full, np.nan, dtype=float)
    return full, spread(np.stack([func(s) for s in leave_one_out(samples)]))


def finite(values: np.ndarray) -> list[float | None]:
    """JSON-ready list: NaN and infinities as None."""
    return [float(v) if np.isfinite(v) else None for v in values]


def spread(jack: np.ndarray) -> np.ndarray:
    """Jackknife error from leave-one-out estimates [n, ...]; NaN samples are skipped (NaN
    where all are)."""
    n = jack.shape[0]
    finite = np.isfinite(jack)
    count = finite.sum(axis=0)
    values = np.where(finite, jack, 0.0)
    mean = values.sum(axis=0) / np.maximum(count, 1)
    err = np.sqrt((n - 1) / n * np.sum(np.where(finite, values - mean, 0.0) ** 2, axis=0))
    return np.where(count > 0, err, np.nan)


def log_mass(corr: np.ndarray) -> np.ndarray:
    """Exponential effective mass ln(C(t) / C(t+1)); NaN where C is not positive."""
    c = np.asarray(corr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((c[:-1] > 0) & (c[1:] > 0), np.log(c[:-1] / c[1:]), np.nan)


def ratio(c3: np.ndarray, c2_sink: np.ndarray, c2_src: np.ndarray, t_sink: int) -> np.ndarray:
    """R(tau), tau = 0 .. t_s, of one sample's C3 and C2 (real parts, source at 0)."""
    tau = np.arange(t_sink + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = (c2_src[t_sink - tau] * c2_sink[tau] * c2_sink[t_sink]
                / (c2_sink[t_sink - tau] * c2_src[tau] * c2_src[t_sink]))
        return c3[: t_sink + 1] / c2_sink[t_sink] * np.sqrt(np.abs(root))


def constant_fit(values: np.ndarray, jack: np.ndarray, sigma: np.ndarray
                 ) -> tuple[float, float, float]:
    """Weighted mean of ``values`` with weights 1/sigma^2; error from the jackknife samples
    ``jack`` [n, points]; returns (value, error, chi^2/dof)."""
    w = 1.0 / sigma ** 2
    value = float(np.sum(w * values) / np.sum(w))
    err = float(spread(np.sum(w * jack, axis=1) / np.sum(w)))
    dof = max(len(values) - 1, 1)
    return value, err, float(np.sum(w * (values - value) ** 2) / dof)


def effective_mass_fit(samples: np.ndarray) -> dict[str, Any] | None:
    """Fit a constant to ln(C(t)/C(t+1)) of correlators [n, T] over the automatic range."""
    if samples.shape[0] < 2:
        return None
    mean, err = jackknife(samples, lambda c: c)
    m_eff, m_err = jackknife(samples, log_mass)
    jack = np.stack([log_mass(s) for s in leave_one_out(samples)])
    half = samples.shape[1] // 2
    good = [t for t in range(half) if mean[t] > 0 and mean[t + 1] > 0
            and err[t] < MAX_REL_ERROR * mean[t] and err[t + 1] < MAX_REL_ERROR * mean[t + 1]
            and np.isfinite(m_eff[t]) and m_err[t] > 0 and np.all(np.isfinite(jack[:, t]))]
    t_max = next((t for t in range(len(good)) if good[t] != t), len(good)) - 1
    if t_max + 1 < MIN_POINTS:
        return None
    fits = []
    for t_min in range(0, t_max + 2 - MIN_POINTS):
        sl = slice(t_min, t_max + 1)
        fits.append((t_min, *constant_fit(m_eff[sl], jack[:, sl], m_err[sl])))
    accepted = [f for f in fits if f[3] <= MAX_CHI2]
    t_min, value, error, chi2 = accepted[0] if accepted else fits[-1]
    return {"mass": value, "error": error, "t_min": t_min, "t_max": t_max,
            "chi2_dof": chi2, "accepted": bool(accepted)}


def ratio_samples(c3: np.ndarray, c2_sink: np.ndarray, c2_src: np.ndarray, t_sink: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """R(tau) of the ensemble means and of every jackknife sample, from C3 [n, >= t_s + 1]
    and C2 [n, T] per configuration (the ratio is formed from averaged correlators)."""
    n3, n2 = t_sink + 1, c2_sink.shape[1]
    samples = np.concatenate([c3[:, :n3], c2_sink, c2_src], axis=1)

    def func(s: np.ndarray) -> np.ndarray:
        return ratio(s[:n3], s[n3:n3 + n2], s[n3 + n2:], t_sink)
    jack = (np.stack([func(s) for s in leave_one_out(samples)]) if len(samples) > 1
            else np.empty((0, n3)))
    return func(samples.mean(axis=0)), jack


def plateau_fit(full: np.ndarray, jack: np.ndarray, t_sink: int, cut: int = 1
                ) -> dict[str, Any] | None:
    """Constant fit to a ratio R(tau) (``full``, with jackknife samples ``jack`` [n, t_s + 1])
    over cut <= tau <= t_s - cut."""
    if jack.shape[0] < 2 or t_sink - 2 * cut < 0:
        return None
    sl = slice(cut, t_sink - cut + 1)
    err = spread(jack)
    sigma = np.where(err[sl] > 0, err[sl], np.abs(full[sl]) * 1e-12 + 1e-300)
    value, error, chi2 = constant_fit(full[sl], jack[:, sl], sigma)
    return {"value": value, "error": error, "tau_min": cut, "tau_max": t_sink - cut,
            "chi2_dof": chi2, "ratio": full.tolist(), "ratio_error": err.tolist()}


def plot_report(masses: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any] | None]],
                ratios: dict[str, dict[str, Any]], path: Path) -> None:
    """Effective masses with their fit bands (left) and ratios with plateau bands (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (mean, err, fit) in masses.items():
        line = left.errorbar(np.arange(len(mean)), mean, yerr=err, marker="o", capsize=3,
                             label=name)
        if fit is not None:
            t = [fit["t_min"], fit["t_max"]]
            left.fill_between(t, fit["mass"] - fit["error"], fit["mass"] + fit["error"],
                              color=line[0].get_color(), alpha=0.3)
    left.set(xlabel="t (lattice units)", ylabel="a m_eff")
    left.legend()
    for name, fit in ratios.items():
        tau = np.arange(len(fit["ratio"]))
        line = right.errorbar(tau, fit["ratio"], yerr=fit["ratio_error"], marker="s",
                              capsize=3, label=name)
        right.fill_between([fit["tau_min"], fit["tau_max"]], fit["value"] - fit["error"],
                           fit["value"] + fit["error"], color=line[0].get_color(), alpha=0.3)
    right.set(xlabel="current insertion tau (lattice units)", ylabel="R(tau)")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
